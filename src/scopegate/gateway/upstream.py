"""The channel to the upstream (one grpc.aio channel for every forwarded call), its calls by
method path on serialized bytes, and what its failures answer.

Calls carry scopegate's metadata only (the identity, the request id, the assertion), never
the client's; their deadline is the nearer of `--upstream-timeout` and the client's own
(gRPC's deadline, kept in `CLIENT_DEADLINE` by the gRPC transport's forwarded methods).
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar

import grpc

from scopegate.contract.catalog import MethodSpec
from scopegate.contract.status import ApiError, C
from scopegate.gateway.settings import UpstreamSettings

log = logging.getLogger("scopegate.gateway")

# time.monotonic() by which the client stops waiting, where its transport says (gRPC).
CLIENT_DEADLINE: ContextVar[float | None] = ContextVar("client_deadline", default=None)

MAX_MESSAGE_BYTES = 128 * 1024 * 1024  # as the gRPC transport accepts (transports/grpc.py)
Metadata = list[tuple[str, str]]


def unavailable(spec: MethodSpec) -> ApiError:
    # Never the channel's own text: it names the upstream's address.
    return ApiError(
        C.RPC_SERVER_UNAVAILABLE,
        "Service unavailable",
        f"The service that answers {spec.name} cannot be reached; try again later.",
        http_status=503,
    )


def timed_out(spec: MethodSpec) -> ApiError:
    return ApiError(
        C.RPC_REQUEST_TIMEOUT,
        "Request timed out",
        f"The service that answers {spec.name} did not answer in time.",
        http_status=504,
    )


def upstream_failed(spec: MethodSpec, error: grpc.aio.AioRpcError) -> ApiError:
    """The status a failed upstream call answers with; its own details are logged, not
    answered (they may name internal hosts)."""
    code = error.code()
    if code is grpc.StatusCode.UNAVAILABLE:
        return unavailable(spec)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return timed_out(spec)
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return ApiError(
            C.NOT_IMPLEMENTED,
            "Not implemented",
            f"The service behind scopegate does not implement {spec.full_name}.",
        )
    log.warning("upstream %s failed: %s %s", spec.name, code.name, error.details())
    if code is grpc.StatusCode.CANCELLED:
        return ApiError(
            C.RPC_CANCELED,
            "Request canceled",
            f"The service that answers {spec.name} canceled the call.",
            http_status=503,
        )
    return ApiError(
        C.FAILURE,
        "Upstream failure",
        f"The service that answers {spec.name} failed (gRPC status {code.name}).",
        http_status=502,
    )


class Upstream:
    """One channel, opened lazily by grpc (a down upstream fails calls, not the start)."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # A refused call must not be retried behind the client's back.
            ("grpc.enable_retries", 0),
        ]
        if settings.tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=settings.ca_certificates)
            self.channel = grpc.aio.secure_channel(settings.address, credentials, options)
        else:
            self.channel = grpc.aio.insecure_channel(settings.address, options)
        # Multi-callables by method path, made once: bytes in, bytes out.
        self._unary: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}
        self._unary_stream: dict[str, grpc.aio.UnaryStreamMultiCallable] = {}
        self._stream_stream: dict[str, grpc.aio.StreamStreamMultiCallable] = {}

    def timeout(self, spec: MethodSpec, deadline: float | None = None) -> float:
        """Seconds the call may take: the nearer of the configured bound and the client's
        deadline (`deadline`, else the context's). Raises the timeout when it has passed."""
        timeout = self.settings.timeout
        if deadline is None:
            deadline = CLIENT_DEADLINE.get()
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                raise timed_out(spec)
        return timeout

    def unary(self, path: str) -> grpc.aio.UnaryUnaryMultiCallable:
        call = self._unary.get(path)
        if call is None:
            call = self._unary[path] = self.channel.unary_unary(path)
        return call

    def unary_stream(self, path: str) -> grpc.aio.UnaryStreamMultiCallable:
        call = self._unary_stream.get(path)
        if call is None:
            call = self._unary_stream[path] = self.channel.unary_stream(path)
        return call

    def stream_stream(self, path: str) -> grpc.aio.StreamStreamMultiCallable:
        call = self._stream_stream.get(path)
        if call is None:
            call = self._stream_stream[path] = self.channel.stream_stream(path)
        return call

    async def close(self) -> None:
        await self.channel.close()
