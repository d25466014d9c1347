"""Another proxy's authorization question: may this HTTP request pass?

Envoy (ext_authz, ext_authz.py) and nginx, Traefik or Caddy (forward auth, forward_auth.py)
describe the request they hold (verb, path with query, credential headers, for Envoy the
body); the answer is the one the request would get if it were sent to scopegate itself.
The request is matched with the REST router over the catalog's bindings (a gRPC-style path,
`/clarifai.api.V2/Method`, by the method's name, its ids read from the body's first gRPC
frame), decoded into the method's request message as REST decodes it, and dispatched as a
`Call` whose handler acts on nothing: authentication, the caches, the throttles, the
policy, the audit and the observers are the direct call's, and the allowed call's
`RequestContext` names who called, the target, the standing and the effective scopes.

Ids a request carries only in a body the proxy does not send (nginx's `auth_request`
subrequest has none) cannot be seen: such a request is decided as naming no ids (an API key
acts on its own app, a PAT on its own account), and what lies behind the proxy must act on
the identity headers, not on ids of its own reading. A body cut short (Envoy's
`allow_partial_message`) is refused: the ids it names may lie past the cut.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from google.protobuf.message import DecodeError, Message

from scopegate.context import RequestContext
from scopegate.contract.catalog import SERVICE_NAME, Catalog, MethodSpec
from scopegate.contract.extensions import EXTENSION_METHODS
from scopegate.contract.status import ApiError, C
from scopegate.dispatch import Call, Dispatcher
from scopegate.handlers import Handler
from scopegate.request_ids import sanitized_prefix
from scopegate.transports.rest.decode import (
    MAX_BODY_BYTES,
    BadRequestError,
    catalog_message,
    parse_json_body,
)
from scopegate.transports.rest.router import MethodNotAllowedError, Router

GRPC_PREFIX = f"/{SERVICE_NAME}/"
# A `.` or `..` path segment, its dots percent-encoded or not (decoded once already).
_DOT_SEGMENT = re.compile(r"(?:^|/)(?:\.|%2e){1,2}(?:/|$)", re.IGNORECASE)
_DECIDED = "gateway.decided"


def _decide_only(context: RequestContext, _request: Message) -> Message:
    """The handler of a decision: it records the allowed call's context and acts on
    nothing; the answer is the method's empty response (the dispatcher sets its status)."""
    context.extras[_DECIDED] = context
    return context.spec.output_type()


DECIDE_ONLY = Handler(_decide_only, blocking=False)


@dataclass(slots=True)
class Verdict:
    """The answer: `error` None and `context` set when the request may pass."""

    error: ApiError | None
    request_id: str
    context: RequestContext | None = None


def _bad_format(details: str) -> ApiError:
    return ApiError(C.CONN_BAD_REQUEST_FORMAT, "Bad request format", details)


def _cut_short() -> ApiError:
    return ApiError(
        C.CONN_INVALID_REQUEST,
        "Invalid request",
        "The proxy sent only part of the request body, so the ids it names cannot be "
        "checked; send the whole body (Envoy: raise with_request_body.max_request_bytes and "
        "set allow_partial_message to false).",
    )


def grpc_message(spec: MethodSpec, body: bytes, encoding: str | None) -> Message | None:
    """The first message of a gRPC request body (a frame: a compressed flag byte, a 4-byte
    big-endian length, the protobuf); None for an empty body. Raises ApiError for a frame
    cut short or bytes that are not the method's message."""
    if not body:
        return None
    if len(body) < 5:
        raise _cut_short()
    length = int.from_bytes(body[1:5], "big")
    payload = body[5 : 5 + length]
    if len(payload) < length:
        raise _cut_short()
    if body[0]:
        if encoding != "gzip":
            raise _bad_format(
                f"The gRPC message is compressed with {encoding or 'an unnamed encoding'}; "
                "scopegate reads uncompressed or gzip messages."
            )
        inflater = zlib.decompressobj(wbits=31)
        try:
            payload = inflater.decompress(payload, MAX_BODY_BYTES)
        except zlib.error:
            raise _bad_format("The gRPC message is not valid gzip.") from None
        if inflater.unconsumed_tail:
            raise _bad_format(f"The gRPC message inflates past {MAX_BODY_BYTES} bytes.")
    try:
        return spec.input_type.FromString(payload)
    except DecodeError:
        raise _bad_format(
            f"The request is not a valid {spec.input_type.DESCRIPTOR.full_name} protobuf message."
        ) from None


class ExternalAuthorizer:
    """Decides proxies' requests on the dispatcher's one path."""

    def __init__(self, dispatcher: Dispatcher, catalog: Catalog) -> None:
        self._dispatcher = dispatcher
        self._methods = catalog.methods
        # The router REST uses, over the same bindings (extension methods included, so that
        # their paths are recognised, and refused: they are scopegate's own, not a
        # platform's, and no proxy forwards them).
        self._router = Router(catalog, EXTENSION_METHODS.values())
        self._extensions = frozenset(id(spec) for spec in EXTENSION_METHODS.values())

    def new_request_id(self) -> str:
        return self._dispatcher.new_request_id()

    async def decide(
        self,
        verb: str,
        uri: str,
        authorization: str | None,
        session_token: str | None,
        peer: str,
        body: bytes | None = None,
        *,
        body_cut: bool = False,
        grpc_encoding: str | None = None,
        transport: str = "",
        request_id_prefix: str | None = None,
    ) -> Verdict:
        """May `verb uri` (path with query, as sent) with these credentials pass? `body`:
        the request's body when the proxy sent it (None: not sent; ids in it are unseen);
        `body_cut`: the proxy says it sent only part of it."""
        dispatcher = self._dispatcher
        # The client's `x-clarifai-request-id-prefix`, as the other transports read it.
        prefix = sanitized_prefix(request_id_prefix)
        try:
            spec, message = self._request(verb, uri, body, body_cut, grpc_encoding)
        except ApiError as refused:
            return Verdict(refused, dispatcher.new_request_id(prefix))
        # `transport` names the proxy's protocol for the observers (the access log, metrics).
        call = Call(
            spec, message, authorization, session_token, peer, DECIDE_ONLY, transport=transport
        )
        call.request_id_prefix = prefix
        response, error = await dispatcher.dispatch(call)
        request_id = response.status.req_id
        if error is not None:
            return Verdict(error, request_id)
        return Verdict(None, request_id, call.extras[_DECIDED])

    def _request(
        self,
        verb: str,
        uri: str,
        body: bytes | None,
        body_cut: bool,
        grpc_encoding: str | None,
    ) -> tuple[MethodSpec, Message]:
        path, _, query = uri.partition("?")
        path = path.partition("#")[0]
        if path.startswith(GRPC_PREFIX):
            spec = self._methods.get(path[len(GRPC_PREFIX) :])
            if spec is None:
                raise _no_route(verb, path)
            if body and body_cut:
                raise _cut_short()
            message = grpc_message(spec, body or b"", grpc_encoding)
            return spec, message if message is not None else spec.input_type()
        verb = "GET" if verb == "HEAD" else verb
        route_path = _route_path(path)
        if _DOT_SEGMENT.search(route_path):
            # What lies behind may resolve `..` and scopegate does not: the two would judge
            # different requests.
            raise _bad_format("The path has a '.' or '..' segment; send it resolved.")
        try:
            # As REST matches: on the decoded path, each segment unquoted once more.
            match = self._router.match(verb, route_path)
        except MethodNotAllowedError as exc:
            raise ApiError(
                C.CONN_METHOD_NOT_ALLOWED,
                "Method not allowed",
                f"{verb} is not allowed here; use {', '.join(exc.allowed)}.",
            ) from None
        if match is None or id(match.spec) in self._extensions:
            raise _no_route(verb, path)
        if body and body_cut:
            raise _cut_short()
        try:
            data = parse_json_body(body) if body else {}
            items = parse_qsl(query, keep_blank_values=True) if query else []
            return match.spec, catalog_message(match, data, items)
        except BadRequestError as exc:
            raise _bad_format(str(exc)) from None


def _route_path(raw: str) -> str:
    """The path as REST matches it (endpoint.route_path): percent-decoded as the HTTP server
    decodes it, with the characters that would end a path escaped again."""
    return unquote(raw).replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def _no_route(verb: str, path: str) -> ApiError:
    return ApiError(
        C.CONN_DOES_NOT_EXIST,
        "Resource does not exist",
        f"No API route for {verb} {path[:200]}.",
    )
