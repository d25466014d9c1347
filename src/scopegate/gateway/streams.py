"""gRPC handlers of forwarded methods: streams forwarded as streams, unary calls with the
client's deadline kept for the upstream call.

A stream is authorized on its first message through the dispatcher (the same path, caches,
throttles and observers as any call; its handler only captures the authorized context).
A refusal is answered in band as one message, as for a unary call. Then both directions
are piped as raw bytes, one message at a time: each side writes only when the other has
taken the previous message (HTTP/2 flow control on both connections), so a slow reader
holds the writer back instead of making scopegate buffer. Every later client message is
checked: one naming another target than the first is refused (a stream acts on one app),
nested ids (an upload's config) are authorized as in a unary call. Cancellation by either
side ends both calls; an upstream failure is answered in band as one last message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError, Message

from scopegate.auth.policy import resolve_target
from scopegate.context import RequestContext
from scopegate.contract.catalog import MethodSpec
from scopegate.contract.status import ApiError, C
from scopegate.dispatch import Call, Dispatcher
from scopegate.gateway.forward import Forwarder, authorize_nested, nested_id_paths, nested_ids
from scopegate.gateway.upstream import CLIENT_DEADLINE, Metadata, upstream_failed
from scopegate.handlers import Handler
from scopegate.transports import credential_headers

PeerOf = Callable[[str], str]


def _undecodable(spec: MethodSpec) -> ApiError:
    return ApiError(
        C.CONN_BAD_REQUEST_FORMAT,
        "Bad request format",
        f"A message of the stream is not a valid {spec.input_type.DESCRIPTOR.full_name}.",
    )


def _other_target() -> ApiError:
    return ApiError(
        C.CONN_INVALID_REQUEST,
        "Invalid request",
        "A later message of the stream names other ids than its first; a stream acts on the "
        "app its first message names.",
    )


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


@dataclass(frozen=True, slots=True)
class _Admitted:
    """A stream the dispatcher authorized: its context, its first message as it goes upstream
    (rewritten to the target), the upstream call's metadata and timeout."""

    context: RequestContext
    first: bytes
    metadata: Metadata
    timeout: float


class StreamForwarding:
    def __init__(self, dispatcher: Dispatcher, forwarder: Forwarder, peer_of: PeerOf) -> None:
        self._dispatcher = dispatcher
        self._forwarder = forwarder
        self._peer_of = peer_of

    def wrap(self, spec: MethodSpec, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The gRPC handler of forwarded method `spec`, given the transport's."""
        if spec.client_streaming:
            return grpc.stream_stream_rpc_method_handler(self._bidi(spec))
        if spec.server_streaming:
            return grpc.unary_stream_rpc_method_handler(self._server_stream(spec))
        inner = handler.unary_unary

        async def unary(request, context):
            token = CLIENT_DEADLINE.set(_deadline(context))
            try:
                return await inner(request, context)
            finally:
                CLIENT_DEADLINE.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            unary, handler.request_deserializer, handler.response_serializer
        )

    async def _admit(
        self, spec: MethodSpec, data: bytes, context: grpc.aio.ServicerContext
    ) -> _Admitted | bytes:
        """A stream authorized on its first message and ready to go upstream, or the in-band
        refusal to answer instead."""
        dispatcher = self._dispatcher
        try:
            request = spec.input_type.FromString(data)
        except DecodeError:
            return _refusal(dispatcher, spec, _undecodable(spec), dispatcher.new_request_id())
        try:
            authorization, session_token = credential_headers.from_metadata(
                context.invocation_metadata() or ()
            )
        except ApiError as error:
            return _refusal(dispatcher, spec, error, dispatcher.new_request_id())
        captured: list[RequestContext] = []

        def capture(ctx: RequestContext, _request: Message) -> Message:
            captured.append(ctx)
            return spec.output_type()

        peer = self._peer_of(context.peer() or "")
        call = Call(
            spec, request, authorization, session_token, peer, handler=Handler(capture, False)
        )
        response, refusal_error = await dispatcher.dispatch(call)
        if refusal_error is not None or not captured:
            return response.SerializeToString()
        authorized = captured[0]
        try:
            metadata = await self._forwarder.prepare(authorized, request)
            timeout = self._forwarder.upstream.timeout(spec, _deadline(context))
        except ApiError as refusal:  # refused by forwarding, or the client's deadline passed
            return _refusal(dispatcher, spec, refusal, authorized.request_id)
        return _Admitted(authorized, request.SerializeToString(), metadata, timeout)

    def _server_stream(self, spec: MethodSpec):
        upstream, dispatcher = self._forwarder.upstream, self._dispatcher

        async def handle(data: bytes, context) -> AsyncIterator[bytes]:
            admitted = await self._admit(spec, data, context)
            if isinstance(admitted, bytes):
                yield admitted
                return
            call = upstream.unary_stream(spec.full_name)(
                admitted.first, metadata=admitted.metadata, timeout=admitted.timeout
            )
            try:
                async for answer in call:
                    yield answer
            except grpc.aio.AioRpcError as failure:
                failed = upstream_failed(spec, failure)
                yield _refusal(dispatcher, spec, failed, admitted.context.request_id)
            finally:
                call.cancel()  # a no-op once it has ended; the client's cancel ends it here

        return handle

    def _bidi(self, spec: MethodSpec):
        upstream = self._forwarder.upstream
        dispatcher = self._dispatcher

        async def handle(requests: AsyncIterator[bytes], context) -> AsyncIterator[bytes]:
            # An empty stream is authorized as an empty request.
            admitted = await self._admit(spec, await anext(aiter(requests), b""), context)
            if isinstance(admitted, bytes):
                yield admitted
                return
            call = upstream.stream_stream(spec.full_name)(
                metadata=admitted.metadata, timeout=admitted.timeout
            )
            refused: list[ApiError] = []
            pump = asyncio.create_task(self._pump(spec, admitted, requests, call, refused))
            try:
                async for answer in call:
                    yield answer
            except grpc.aio.AioRpcError as failure:
                if not refused:
                    refused.append(upstream_failed(spec, failure))
            except asyncio.CancelledError:
                if not refused:
                    raise
            finally:
                call.cancel()
                pump.cancel()
            if refused:
                yield _refusal(dispatcher, spec, refused[0], admitted.context.request_id)

        return handle

    async def _pump(
        self,
        spec: MethodSpec,
        admitted: _Admitted,
        requests: AsyncIterator[bytes],
        call: grpc.aio.StreamStreamCall,
        refused: list[ApiError],
    ) -> None:
        """The client's messages to the upstream, each checked, one write at a time."""
        nested = bool(nested_id_paths(spec))
        try:
            await call.write(admitted.first)
            async for data in requests:
                await call.write(await self._checked(spec, admitted.context, nested, data))
            await call.done_writing()
        except ApiError as error:
            refused.append(error)
            call.cancel()
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
            pass  # the upstream ended the call: the reading side answers

    async def _checked(
        self, spec: MethodSpec, authorized: RequestContext, nested: bool, data: bytes
    ) -> bytes:
        """A later message as it goes upstream: unchanged unless it names ids, which must
        resolve to the stream's target (rewritten to it) or be authorized (nested)."""
        try:
            message = spec.input_type.FromString(data)
        except DecodeError:
            raise _undecodable(spec) from None
        changed = False
        if spec.has_user_app_id and message.HasField("user_app_id"):
            ids = message.user_app_id
            resolved = resolve_target(authorized.principal, ids.user_id, ids.app_id)
            if resolved != authorized.target:
                raise _other_target()
            ids.user_id, ids.app_id = resolved.user_id, resolved.app_id
            changed = True
        if nested:
            found = nested_ids(spec, message)
            if found:
                await authorize_nested(authorized, found)
                changed = True
        return message.SerializeToString() if changed else data


def _refusal(dispatcher: Dispatcher, spec: MethodSpec, error: ApiError, request_id: str) -> bytes:
    return dispatcher.error_response(spec, error, request_id).SerializeToString()
