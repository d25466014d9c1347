"""gRPC transport: generic handlers for every V2 method, built from the catalog."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from scopegate.contract.catalog import SERVICE_NAME, Catalog, MethodSpec
from scopegate.contract.status import ApiError, C
from scopegate.dispatch import Call, Dispatcher
from scopegate.request_ids import PREFIX_HEADER, RESPONSE_HEADER, sanitized_prefix
from scopegate.transports import credential_headers
from scopegate.transports.limit_fields import forwarded_client, limit_metadata
from scopegate.transports.rest.forwarded import IPNetwork


class _Undecodable:
    """What the request deserializer hands on for bytes that are not the method's message:
    grpc would otherwise answer UNKNOWN with the exception's repr, not a Clarifai status."""


UNDECODABLE = _Undecodable()
PeerOf = Callable[[str], str]


def _as_is(peer: str) -> str:
    return peer


def _decoder(spec: MethodSpec) -> Callable[[bytes], Message | _Undecodable]:
    parse = spec.input_type.FromString

    def decode(data: bytes) -> Message | _Undecodable:
        try:
            return parse(data)
        except DecodeError:
            return UNDECODABLE

    return decode


def _undecodable(spec: MethodSpec) -> ApiError:
    return ApiError(
        C.CONN_BAD_REQUEST_FORMAT,
        "Bad request format",
        f"The request is not a valid {spec.input_type.DESCRIPTOR.full_name} protobuf "
        "message, or nests deeper than protobuf's recursion limit (input metadata: at "
        "most 20 levels); send one serialized by a client built from the Clarifai API "
        "protos.",
    )


def _prefix(metadata) -> str:
    for name, value in metadata:
        if name == PREFIX_HEADER:
            return sanitized_prefix(value)
    return ""


def _unary_unary(
    dispatcher: Dispatcher, spec: MethodSpec, peer_of: PeerOf, trusted: Sequence[IPNetwork] = ()
) -> Callable:
    async def handle(request, context):
        received = time.perf_counter()
        metadata = context.invocation_metadata() or ()
        call = Call(spec, request, None, None, peer_of(context.peer() or ""), transport="grpc")
        call.request_id_prefix, call.received = _prefix(metadata), received
        if trusted:
            call.peer = forwarded_client(metadata, call.peer, trusted)
        answered = None
        try:
            if request is UNDECODABLE:
                call.request = spec.input_type()
                raise _undecodable(spec)
            call.authorization, call.session_token = credential_headers.from_metadata(metadata)
        except ApiError as error:  # answered in band, like every Clarifai error
            request_id = dispatcher.new_request_id(call.request_id_prefix)
            stage = "request" if request is UNDECODABLE else "authentication"
            dispatcher.refused(call, error, request_id, stage)
            response = dispatcher.error_response(spec, error, request_id)
        else:
            response, answered = await dispatcher.dispatch(call)
        # The id in the initial metadata too, where a client reads it without the message;
        # a limited credential's RateLimit fields beside it.
        await context.send_initial_metadata(
            (
                (RESPONSE_HEADER, response.status.req_id),
                *limit_metadata(call, answered, context),
            )
        )
        return response

    return handle


async def _first(requests: AsyncIterator, spec: MethodSpec):
    async for request in requests:
        return request
    return spec.input_type()


def _method_handler(
    dispatcher: Dispatcher, spec: MethodSpec, peer_of: PeerOf, trusted: Sequence[IPNetwork] = ()
) -> grpc.RpcMethodHandler:
    """Streaming methods are authorized on their first message and answer one response."""
    decode, encode = _decoder(spec), spec.output_type.SerializeToString
    unary = _unary_unary(dispatcher, spec, peer_of, trusted)
    if not spec.client_streaming and not spec.server_streaming:
        return grpc.unary_unary_rpc_method_handler(unary, decode, encode)
    if not spec.client_streaming:

        async def unary_stream(request, context):
            yield await unary(request, context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, decode, encode)

    async def from_stream(requests, context):
        return await unary(await _first(requests, spec), context)

    if not spec.server_streaming:
        return grpc.stream_unary_rpc_method_handler(from_stream, decode, encode)

    async def stream_stream(requests, context):
        yield await from_stream(requests, context)

    return grpc.stream_stream_rpc_method_handler(stream_stream, decode, encode)


def build_grpc_server(
    dispatcher: Dispatcher,
    catalog: Catalog,
    address: str,
    *,
    tls: tuple[bytes, bytes] | None = None,
    options: Sequence[tuple[str, int]] = (),
    peer_of: PeerOf = _as_is,
    reuse_port: bool = False,
    trusted_proxies: Sequence[IPNetwork] = (),
    wrap: Callable[[MethodSpec, grpc.RpcMethodHandler], grpc.RpcMethodHandler] | None = None,
) -> tuple[grpc.aio.Server, int]:
    """The server, and the port it bound (useful when asked for port 0).

    With `tls` (private key, certificate chain), as PEM, the port speaks TLS only.
    `options` are more channel arguments (connection limits: see connections.py).
    `peer_of` names the client behind a peer (one port: the piped connections' real
    clients, see grpc_pipe.py). `reuse_port`: other processes (serve --workers) listen on
    the same port; otherwise a port in use is an error, not shared.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 128 * 1024 * 1024),
            ("grpc.max_send_message_length", 128 * 1024 * 1024),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            *options,
        ]
    )
    handlers = {
        name: _method_handler(dispatcher, spec, peer_of, trusted_proxies)
        for name, spec in catalog.methods.items()
    }
    if wrap is not None:  # forwarded methods' own handlers (gateway/streams.py)
        handlers = {name: wrap(catalog.methods[name], h) for name, h in handlers.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    server.health_servicer = health_servicer  # type: ignore[attr-defined]
    try:
        if tls is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, grpc.ssl_server_credentials([tls]))
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(f"cannot listen for gRPC on {address}: address in use or not available")
    return server, port
