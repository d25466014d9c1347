"""HTTP forward auth: `/scopegate/v1/authorize` (any verb) on the HTTP port, the
authorization service of nginx (`auth_request`), Traefik (`ForwardAuth`) and Caddy
(`forward_auth`).

The proxy sends the original request's credential headers and names the request itself:
nginx with `X-Original-Method` + `X-Original-URI` (set in its configuration), Traefik and
Caddy with `X-Forwarded-Method` + `X-Forwarded-Uri`. Both forms are read, and where a
request carries both they must agree: a proxy passes on the headers it does not set
itself, so a client could otherwise name, in the form its proxy ignores, a request other
than the one it sends. No body comes with the question (nginx's subrequest has none), so
ids a request carries only in its body are unseen: decided as naming no ids
(decision.py).

Allowed: 200 with the identity headers (gateway/identity.py), for the proxy to copy onto
the request it passes on: every one of them, empty where it does not apply (a NoAuth call
has no caller), since a proxy copying them by name may otherwise write text of its own
(Caddy before 2.10 copies its unresolved placeholder for a header the answer lacks).

Refused: 401 for a missing or invalid credential, 403 for anything else (nginx accepts no
other code from an auth service), with the Clarifai JSON body a direct call would get
(Traefik and Caddy pass it on) and, for a throttled caller, `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from scopegate.access.address_throttle import ThrottledError
from scopegate.contract.status import ApiError, C
from scopegate.gateway.decision import ExternalAuthorizer
from scopegate.gateway.identity import IDENTITY_NAMES, identity_headers
from scopegate.request_ids import PREFIX_HEADER
from scopegate.transports import credential_headers
from scopegate.transports.rest.errors import http_code, status_json

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

AUTHORIZE_PATH = "/scopegate/v1/authorize"
_NAMES = {
    b"x-original-method": 0,
    b"x-forwarded-method": 1,
    b"x-original-uri": 2,
    b"x-forwarded-uri": 3,
    PREFIX_HEADER.encode(): 4,
}
_PREFIX = 4
_JSON = (b"content-type", b"application/json")
_NO_BODY = (b"content-length", b"0")


def _unnamed() -> ApiError:
    return ApiError(
        C.CONN_INVALID_REQUEST,
        "Invalid request",
        "The check names no request: send X-Original-Method and X-Original-URI (nginx "
        "auth_request) or X-Forwarded-Method and X-Forwarded-Uri (Traefik, Caddy).",
    )


def _disagree(what: str) -> ApiError:
    return ApiError(
        C.CONN_INVALID_REQUEST,
        "Invalid request",
        f"X-Original-{what} and X-Forwarded-{what} name different requests; a proxy sets "
        "one of them, so the other came from the client.",
    )


def _original(headers: list[tuple[bytes, bytes]]) -> tuple[str, str, bytes | None]:
    """The original request's (method, URI) and the client's request id prefix; raises
    ApiError."""
    found: list[bytes | None] = [None, None, None, None, None]
    for name, value in headers:
        index = _NAMES.get(name)
        if index == _PREFIX:
            found[index] = value  # only a prefix for the request id: any one will do
        elif index is not None:
            if found[index] is not None and found[index] != value:
                raise _unnamed()  # repeated with different values: which one is meant?
            found[index] = value
    original_method, forwarded_method, original_uri, forwarded_uri, prefix = found
    if original_method and forwarded_method and original_method != forwarded_method:
        raise _disagree("Method")
    if original_uri and forwarded_uri and original_uri != forwarded_uri:
        raise _disagree("URI")
    method = original_method or forwarded_method
    uri = original_uri or forwarded_uri
    if not method or not uri:
        raise _unnamed()
    return method.decode("latin-1").upper(), uri.decode("latin-1"), prefix


class ForwardAuth:
    """ASGI middleware answering `AUTHORIZE_PATH` before anything else on the HTTP port
    (behind TrustedProxies, so the client is the proxy's client when it is trusted)."""

    def __init__(self, app: ASGIApp, authorizer: ExternalAuthorizer) -> None:
        self._app = app
        self._authorizer = authorizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != AUTHORIZE_PATH:
            await self._app(scope, receive, send)
            return
        headers = scope["headers"]
        try:
            method, uri, prefix = _original(headers)
            authorization, session_token = credential_headers.from_asgi(headers)
        except ApiError as error:
            await _refuse(send, error, self._authorizer.new_request_id())
            return
        client = scope.get("client")
        peer = client[0] if client else ""
        verdict = await self._authorizer.decide(
            method,
            uri,
            authorization,
            session_token,
            peer,
            transport="forward_auth",
            request_id_prefix=prefix.decode("latin-1") if prefix else None,
        )
        if verdict.error is not None:
            await _refuse(send, verdict.error, verdict.request_id)
            return
        context = verdict.context
        assert context is not None  # an allow always carries the call's context
        identity = identity_headers(
            context.principal, context.relation, context.scopes, verdict.request_id
        )
        given = dict(identity)
        answer = [(name.encode(), given.pop(name, "").encode()) for name in IDENTITY_NAMES]
        answer.extend((name.encode(), value.encode()) for name, value in given.items())
        answer.append(_NO_BODY)
        await send({"type": "http.response.start", "status": 200, "headers": answer})
        await send({"type": "http.response.body", "body": b""})


async def _refuse(send: Send, error: ApiError, request_id: str) -> None:
    body = status_json(error, request_id)
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if isinstance(error, ThrottledError):
        headers.append((b"retry-after", str(error.retry_after).encode()))
    status = 401 if http_code(error) == 401 else 403
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
