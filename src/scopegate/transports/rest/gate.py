"""A thin pure-ASGI layer in front of Starlette: garbage credentials refused cheaply.

A request to a V2 method that needs credentials, whose credentials can be refused without
I/O (missing or malformed `authorization` header, a secret that fails its checksum), is
answered here: no Starlette routing, no request object, no decoding of the query or body,
no response message. The answer is the one the dispatcher would give (same status body
and HTTP code, the same failure throttle), built from a few strings. Any other request to
a catalog route goes straight to the V2 endpoint with its route already matched; the rest
(login, extension routes, the portal, unknown paths) goes on to Starlette. One
consequence: a refused request is refused before its body is read, so a malformed body
behind garbage credentials gets the 401, not the 400 (gRPC too authenticates before it
looks at any field). A request carrying either credential header more than once is refused
here too, on every route (see credential_headers.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from scopegate.access.address_throttle import ThrottledError
from scopegate.contract.catalog import NO_AUTH
from scopegate.contract.status import ApiError, http_status
from scopegate.dispatch import Dispatcher
from scopegate.transports import credential_headers
from scopegate.transports.rest.endpoint import CREDENTIALS, ROUTE_MATCH, route_path
from scopegate.transports.rest.router import MethodNotAllowedError, Router

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]


def status_json(error: ApiError, request_id: str) -> bytes:
    """`{"status": {...}}` as `MessageToDict` writes an error response (fields in number
    order, empty strings left out); a test holds the two equal."""
    status: dict[str, Any] = {"code": error.code}
    if error.description:
        status["description"] = error.description
    if error.details:
        status["details"] = error.details
    if request_id:
        status["req_id"] = request_id
    return json.dumps({"status": status}, separators=(",", ":"), ensure_ascii=False).encode()


class RefusalGate:
    def __init__(
        self,
        app: ASGIApp,
        dispatcher: Dispatcher,
        router: Router,
        passthrough: Collection[str],
        endpoint: Endpoint | None = None,
    ) -> None:
        self._app = app
        self._dispatcher = dispatcher
        self._router = router
        self._passthrough = frozenset(passthrough)  # paths other routes own (/v2/login)
        self._endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Every route: a repeated credential header is refused before anything reads one.
            try:
                authorization, session_token = credential_headers.from_asgi(scope["headers"])
            except ApiError as error:
                await self._answer(send, error)
                return
            if scope["path"].startswith("/v2/"):
                error = await self._refusal(scope, authorization, session_token)
                if error is not None:
                    await self._answer(send, error)
                    return
                if self._endpoint is not None and scope.get(ROUTE_MATCH) is not None:
                    # A catalog route: straight to the V2 endpoint that Starlette's catch-all
                    # route would reach after trying every other route's pattern first.
                    response = await self._endpoint(Request(scope, receive))
                    await response(scope, receive, send)
                    return
        await self._app(scope, receive, send)

    async def _refusal(
        self, scope: Scope, authorization: str | None, session_token: str | None
    ) -> ApiError | None:
        path = route_path(scope)
        if path in self._passthrough:
            return None
        try:
            match = self._router.match(scope["method"], path)
        except MethodNotAllowedError:
            return None
        scope[ROUTE_MATCH] = match  # the endpoint reuses it rather than matching again
        if match is None or match.spec.auth_type is NO_AUTH:
            return None
        try:
            scope[CREDENTIALS] = self._dispatcher.authenticator.present(
                authorization, session_token
            )
            return None
        except ApiError as error:
            refused = error
        client = scope.get("client")
        return await self._dispatcher.auth_failures.refuse(client[0] if client else "", refused)

    async def _answer(self, send: Send, error: ApiError) -> None:
        body = status_json(error, self._dispatcher.new_request_id())
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        if isinstance(error, ThrottledError):
            headers.append((b"retry-after", str(error.retry_after).encode()))
        await send(
            {
                "type": "http.response.start",
                "status": error.http_status or http_status(error.code),
                "headers": headers,
            }
        )
        await send({"type": "http.response.body", "body": body})
