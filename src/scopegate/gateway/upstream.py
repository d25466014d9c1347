"""The channel to the upstream (one grpc.aio channel for every forwarded call), its calls by
method path on serialized bytes, and what its failures answer.

Calls carry scopegate's metadata only (the identity, the request id, the assertion), never
the client's; their deadline is the nearer of `--upstream-timeout` and the client's own
(gRPC's deadline, kept in `CLIENT_DEADLINE` by the gRPC transport's forwarded methods).
"""

from __future__ import annotations

import functools
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


# What a failed upstream call answers, by its gRPC status: the Clarifai code, the description,
# what the service that answers the method did, the HTTP status. Never the channel's own
# text: it names the upstream's address.
_FAILURES = {
    grpc.StatusCode.UNAVAILABLE: (
        C.RPC_SERVER_UNAVAILABLE,
        "Service unavailable",
        "cannot be reached; try again later.",
        503,
    ),
    grpc.StatusCode.DEADLINE_EXCEEDED: (
        C.RPC_REQUEST_TIMEOUT,
        "Request timed out",
        "did not answer in time.",
        504,
    ),
    grpc.StatusCode.CANCELLED: (C.RPC_CANCELED, "Request canceled", "canceled the call.", 503),
}
_OTHER_FAILURE = (C.FAILURE, "Upstream failure", "failed (gRPC status {status}).", 502)


def _failure(spec: MethodSpec, status: grpc.StatusCode) -> ApiError:
    code, description, outcome, http_status = _FAILURES.get(status, _OTHER_FAILURE)
    details = f"The service that answers {spec.name} {outcome.format(status=status.name)}"
    return ApiError(code, description, details, http_status=http_status)


def timed_out(spec: MethodSpec) -> ApiError:
    return _failure(spec, grpc.StatusCode.DEADLINE_EXCEEDED)


def upstream_failed(spec: MethodSpec, error: grpc.aio.AioRpcError) -> ApiError:
    """The status a failed upstream call answers with; its own details are logged, not
    answered (they may name internal hosts)."""
    status = error.code()
    if status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return _failure(spec, status)
    if status is grpc.StatusCode.UNIMPLEMENTED:
        return ApiError(
            C.NOT_IMPLEMENTED,
            "Not implemented",
            f"The service behind scopegate does not implement {spec.full_name}.",
        )
    log.warning("upstream %s failed: %s %s", spec.name, status.name, error.details())
    return _failure(spec, status)


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
        self.unary = functools.cache(self.channel.unary_unary)
        self.unary_stream = functools.cache(self.channel.unary_stream)
        self.stream_stream = functools.cache(self.channel.stream_stream)

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

    async def close(self) -> None:
        await self.channel.close()
