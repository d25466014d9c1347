"""Forwarding an authorized call upstream: the handler the dispatcher runs for every
forwarded method (both transports), and what both it and the gRPC streams share: the ids
rewritten to the authorized target, the metadata, the upstream's answer passed on.

What the upstream receives: the request with `user_app_id` naming the resolved owner and
app (`me` resolved, an API key's app filled in), and scopegate's metadata only (the
identity headers, the request id, the assertion when configured): never the client's
secrets or any header it sent. Ids nested in the request (the upload streams'
`upload_config.user_app_id`) are authorized as if the request had named them, and
rewritten the same way. Other ids in a forwarded body (a workflow node's model, say) are
the upstream's to judge, with the identity it is given.

Over REST, a streaming method is one request and one answer: the request is sent as a
stream of one message (half-closed at once) and the stream's first answer is the answer
(the upstream call is then cancelled); a stream that ends without one answers an empty
message. gRPC clients get the streams themselves (streams.py).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator

import grpc
from clarifai_grpc.grpc.api.status import status_pb2
from google.protobuf.message import DecodeError, Message

from scopegate.auth.policy import Target, resolve_target
from scopegate.context import RequestContext
from scopegate.contract.catalog import MethodSpec
from scopegate.contract.status import ApiError, C
from scopegate.gateway.assertion import AssertionSigner
from scopegate.gateway.identity import ASSERTION, identity_headers
from scopegate.gateway.upstream import Metadata, Upstream, upstream_failed
from scopegate.handlers import Handler

_USER_APP_ID = "clarifai.api.UserAppIDSet"
# The REST transport's ASGI `receive`: what tells a forwarded call its client went away.
HTTP_RECEIVE = "http_receive"
_SUCCESS = (0, C.SUCCESS)  # 0: the upstream set no status; the dispatcher fills it in


class UpstreamAnswer(ApiError):
    """An upstream's answer whose status is not a success: passed on as it is (status
    included, whatever fields it sets), with the HTTP status REST derives from its code."""

    def __init__(self, response: Message) -> None:
        status = response.status
        super().__init__(status.code, status.description, status.details, response=response)
        self._status = status_pb2.Status()
        self._status.CopyFrom(status)

    def fill(self, status: status_pb2.Status, req_id: str) -> None:
        status.CopyFrom(self._status)
        if not status.req_id:
            status.req_id = req_id


@functools.cache
def nested_id_paths(spec: MethodSpec) -> tuple[tuple[str, ...], ...]:
    """Paths (field names) to the UserAppIDSet fields of `spec`'s request other than the
    top-level `user_app_id`, two levels deep at most; repeated fields are walked too."""
    found: list[tuple[str, ...]] = []
    for outer in spec.input_type.DESCRIPTOR.fields:
        if outer.message_type is None or outer.name == "user_app_id":
            continue
        if outer.message_type.full_name == _USER_APP_ID:
            found.append((outer.name,))
            continue
        for inner in outer.message_type.fields:
            if inner.message_type is not None and inner.message_type.full_name == _USER_APP_ID:
                found.append((outer.name, inner.name))
        for inner in outer.message_type.fields:
            if inner.message_type is None or inner.message_type.full_name == _USER_APP_ID:
                continue
            for leaf in inner.message_type.fields:
                if leaf.message_type is not None and leaf.message_type.full_name == _USER_APP_ID:
                    found.append((outer.name, inner.name, leaf.name))
    return tuple(found)


def _walk(message: Message, path: tuple[str, ...]) -> Iterator[Message]:
    """The messages at `path` that are set (repeated fields: each item)."""
    name, rest = path[0], path[1:]
    described = message.DESCRIPTOR.fields_by_name[name]
    if described.is_repeated:
        items = list(getattr(message, name))
    elif message.HasField(name):
        items = [getattr(message, name)]
    else:
        return
    for item in items:
        if rest:
            yield from _walk(item, rest)
        else:
            yield item


def nested_ids(spec: MethodSpec, request: Message) -> list[Message]:
    return [ids for path in nested_id_paths(spec) for ids in _walk(request, path)]


async def authorize_nested(context: RequestContext, nested: list[Message]) -> None:
    """Authorize each nested id set as a named app (a relation lookup may query the
    database: off the loop), then rewrite it to the resolved owner and app."""
    principal = context.principal
    if principal is None:
        return  # a NoAuth method: nothing to authorize, nothing to resolve
    for ids in nested:
        target = resolve_target(principal, ids.user_id, ids.app_id)
        await asyncio.to_thread(context.authorize_app, target.app_id, target.user_id)
        ids.user_id, ids.app_id = target.user_id, target.app_id


def rewrite_ids(spec: MethodSpec, request: Message, target: Target) -> None:
    """The request's own `user_app_id` names the authorized target."""
    if spec.has_user_app_id:
        ids = request.user_app_id
        ids.user_id, ids.app_id = target.user_id, target.app_id


class Forwarder:
    def __init__(self, upstream: Upstream, signer: AssertionSigner | None = None) -> None:
        self.upstream = upstream
        self._signer = signer
        self.handler = Handler(self.forward, blocking=False, awaits=True)

    def metadata(self, context: RequestContext) -> Metadata:
        """What the upstream is told: the identity, the request id, the assertion."""
        metadata = identity_headers(
            context.principal, context.relation, context.scopes, context.request_id
        )
        if self._signer is not None:
            token = self._signer.sign(
                context.principal,
                context.relation,
                context.scopes,
                context.request_id,
                context.spec.full_name,
                context.target,
            )
            metadata.append((ASSERTION, token))
        return metadata

    async def prepare(self, context: RequestContext, request: Message) -> Metadata:
        """Authorize nested ids, rewrite the ids, and the metadata to send."""
        spec = context.spec
        if nested_id_paths(spec):
            await authorize_nested(context, nested_ids(spec, request))
        if context.principal is not None:
            rewrite_ids(spec, request, context.target)
        return self.metadata(context)

    async def forward(self, context: RequestContext, request: Message) -> Message:
        """The dispatcher's handler for a forwarded method (an authorized call)."""
        spec = context.spec
        metadata = await self.prepare(context, request)
        timeout = self.upstream.timeout(spec)
        data = request.SerializeToString()
        try:
            if spec.client_streaming or spec.server_streaming:
                answer = await self._first_of_stream(spec, data, metadata, timeout)
            else:
                call = self.upstream.unary(spec.full_name)(data, metadata=metadata, timeout=timeout)
                try:
                    receive = context.extras.get(HTTP_RECEIVE)
                    answer = await (call if receive is None else _unless_gone(call, receive))
                except asyncio.CancelledError:
                    call.cancel()  # the client went away: so does the upstream call
                    raise
        except grpc.aio.AioRpcError as error:
            raise upstream_failed(spec, error) from None
        return parse_answer(spec, answer)

    async def _first_of_stream(
        self, spec: MethodSpec, data: bytes, metadata: Metadata, timeout: float
    ) -> bytes:
        """A stream's first answer, for a REST client's one request."""
        path = spec.full_name
        if spec.client_streaming:
            call = self.upstream.stream_stream(path)(metadata=metadata, timeout=timeout)
            await call.write(data)
            await call.done_writing()
        else:
            call = self.upstream.unary_stream(path)(data, metadata=metadata, timeout=timeout)
        try:
            answer = await call.read()
        finally:
            call.cancel()  # one answer is all a REST client gets; the upstream stops
        return b"" if answer is grpc.aio.EOF else answer


async def _cancel_when_gone(call: grpc.aio.Call, receive) -> None:
    """Cancels `call` once the HTTP client has closed its connection (its body is read
    already, so the next message can only be the disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    call.cancel()


async def _unless_gone(call: grpc.aio.UnaryUnaryCall, receive) -> bytes:
    """The upstream's answer, unless the REST client goes away first: then the upstream
    call is cancelled, and the request ends as cancelled (no one reads the answer; the
    access log and the observers see it). One watcher task: no more per call."""
    watcher = asyncio.ensure_future(_cancel_when_gone(call, receive))
    try:
        return await call
    except asyncio.CancelledError:
        if watcher.done() and not watcher.cancelled():
            raise ApiError(
                C.RPC_CANCELED, "Request canceled", "The client closed its connection."
            ) from None
        raise
    finally:
        watcher.cancel()


def parse_answer(spec: MethodSpec, answer: bytes) -> Message:
    """The upstream's answer as the method's response; a status other than success is
    answered as it is (UpstreamAnswer)."""
    try:
        response = spec.output_type.FromString(answer)
    except DecodeError:
        raise ApiError(
            C.FAILURE,
            "Upstream failure",
            f"The service that answers {spec.name} sent a message that is not a "
            f"{spec.output_type.DESCRIPTOR.full_name}.",
            http_status=502,
        ) from None
    if response.status.code not in _SUCCESS:
        raise UpstreamAnswer(response)
    return response
