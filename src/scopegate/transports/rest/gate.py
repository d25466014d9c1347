"""The front of the HTTP app: each API request's route matched once, garbage credentials
refused cheaply, and the match handed to the API endpoint.

A request to an API route (a V2 method, or a scopegate extension method) that needs
credentials, whose credentials can be refused without I/O (missing or malformed
`authorization` header, a secret that fails its checksum), is answered here: no Starlette
routing, no decoding of the query or body, no response message. The answer is the one the
dispatcher would give (same status body and HTTP code, the same failure throttle). Any
other request to an API route goes straight to the endpoint with its route and the
credentials it read; an unknown `/v2/` path or verb is answered here too. The rest (login,
logout, key roll, the portal, other paths) goes on to Starlette. One consequence: a refused
request is refused before its body is read, so a malformed body behind garbage credentials
gets the 401, not the 400 (gRPC too authenticates before it looks at any field). A request
carrying either credential header more than once is refused here too, on every route (see
credential_headers.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from starlette.requests import Request

from scopegate.contract.catalog import NO_AUTH
from scopegate.contract.status import ApiError
from scopegate.dispatch import Call, Dispatcher
from scopegate.request_ids import PREFIX_HEADER, sanitized_prefix
from scopegate.transports import credential_headers
from scopegate.transports.rest.endpoint import ApiEndpoint, route_path, unrouted
from scopegate.transports.rest.errors import error_response
from scopegate.transports.rest.router import MethodNotAllowedError, Router

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

V2 = "/v2/"
_PREFIX_HEADER = PREFIX_HEADER.encode()
EXTENSIONS = "/scopegate/v1/"
# The verbs API routes answer; others (OPTIONS, ...) go on to Starlette, which answers 405.
API_VERBS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


class RefusalGate:
    def __init__(
        self,
        app: ASGIApp,
        dispatcher: Dispatcher,
        router: Router,
        endpoint: ApiEndpoint,
        passthrough: Collection[str],
    ) -> None:
        self._app = app
        self._dispatcher = dispatcher
        self._router = router
        self._endpoint = endpoint
        self._passthrough = frozenset(passthrough)  # paths other routes own (/v2/login)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Every route: a repeated credential header is refused before anything reads one.
            try:
                authorization, session_token = credential_headers.from_asgi(scope["headers"])
            except ApiError as error:
                await self._refuse(scope, receive, send, error)
                return
            if scope["path"].startswith((V2, EXTENSIONS)) and scope["method"] in API_VERBS:
                path = route_path(scope)
                if path not in self._passthrough and await self._route(
                    scope, receive, send, path, authorization, session_token
                ):
                    return
        await self._app(scope, receive, send)

    async def _route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str,
        authorization: str | None,
        session_token: str | None,
    ) -> bool:
        """Answer an API route; False for a path that is none (Starlette's then)."""
        try:
            match = self._router.match(scope["method"], path)
        except MethodNotAllowedError as exc:
            await unrouted(Request(scope, receive), exc)(scope, receive, send)
            return True
        if match is None:
            if not scope["path"].startswith(V2):
                return False  # other extension routes (roll) are Starlette's
            await unrouted(Request(scope, receive), None)(scope, receive, send)
            return True
        presented = None
        if match.spec.auth_type is not NO_AUTH:
            try:
                presented = self._dispatcher.authenticator.present(authorization, session_token)
            except ApiError as error:
                received = time.perf_counter()
                client = scope.get("client")
                peer = client[0] if client else ""
                refused = await self._dispatcher.auth_failures.refuse(peer, error)
                spec = match.spec
                call = Call(spec, spec.input_type(), None, None, peer, transport="rest")
                call.received = received
                await self._refuse(scope, receive, send, refused, call)
                return True
        response = await self._endpoint.answer(Request(scope, receive), match, presented)
        await response(scope, receive, send)
        return True

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: ApiError, call: Call | None = None
    ) -> None:
        """Answer a refusal of credentials; the observers hear of it when the route is an
        API method's (`call`)."""
        prefix = _prefix(scope["headers"])
        request_id = self._dispatcher.new_request_id(prefix)
        if call is not None:
            call.request_id_prefix = prefix
            self._dispatcher.refused(call, error, request_id, "authentication")
        response = error_response(error, request_id)
        await response(scope, receive, send)


def _prefix(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == _PREFIX_HEADER:
            return sanitized_prefix(value.decode("latin-1"))
    return ""
