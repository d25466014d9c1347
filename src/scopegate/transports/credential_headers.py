"""The two headers that carry credentials, read the same way by both transports.

A request may carry each at most once. HTTP readers disagree on repeats (Starlette takes
the first, gRPC's metadata loop the last, a proxy in front may take either), so a repeat
could let one component authorize a credential that another then acts as: refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from scopegate.contract.status import ApiError, C

AUTHORIZATION = "authorization"
SESSION_TOKEN = "x-clarifai-session-token"
_RAW_AUTHORIZATION, _RAW_SESSION_TOKEN = AUTHORIZATION.encode(), SESSION_TOKEN.encode()


def repeated(name: str) -> ApiError:
    return ApiError(
        C.CONN_INVALID_REQUEST,
        "Invalid request",
        f"The request carries the '{name}' header more than once; send it exactly once.",
    )


def from_metadata(metadata: Iterable[tuple[str, str]]) -> tuple[str | None, str | None]:
    """(authorization, session token) from gRPC invocation metadata (names lowercase;
    values are str but for `-bin` names)."""
    authorization = session_token = None
    for name, value in metadata:
        if name == AUTHORIZATION:
            if authorization is not None:
                raise repeated(AUTHORIZATION)
            authorization = value
        elif name == SESSION_TOKEN:
            if session_token is not None:
                raise repeated(SESSION_TOKEN)
            session_token = value
    return authorization, session_token


def from_asgi(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """(authorization, session token) from an ASGI scope's raw headers (names lowercase)."""
    authorization = session_token = None
    for name, value in headers:
        if name == _RAW_AUTHORIZATION:
            if authorization is not None:
                raise repeated(AUTHORIZATION)
            authorization = value.decode("latin-1")
        elif name == _RAW_SESSION_TOKEN:
            if session_token is not None:
                raise repeated(SESSION_TOKEN)
            session_token = value.decode("latin-1")
    return authorization, session_token
