"""Leaked-secret reports over HTTP (README, "Leaked secrets"): GitHub's secret scanning
partner endpoint and GitLab's token revocation contract. Neither is a Clarifai method nor
authenticated by one of our credentials: GitHub signs its reports (auth/leak_signatures.py),
GitLab sends a bearer token. A report not so authorized does nothing (401). Each secret of
ours is revoked at once by services/leaks.py; the answers say no more than the contracts
ask for.

- POST /scopegate/v1/secret-scanning/github: `[{token, type, url, source}]`, signed; answers
  `[{token_hash, token_type, label}]` with `true_positive` for a secret of ours that was
  valid (and is now revoked), else `false_positive`.
- GET /scopegate/v1/revocation/revocable_token_types: `{"types": [...]}`.
- POST /scopegate/v1/revocation/revoke_tokens: `[{type, token, location}]`; 204, idempotent,
  rate limited per process.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
from collections import deque
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scopegate.access.address_throttle import ThrottledError
from scopegate.auth.leak_signatures import SigningKeys
from scopegate.context import Services
from scopegate.contract.status import ApiError, C
from scopegate.services import leaks
from scopegate.transports.rest.errors import MEDIA_TYPE, encode, error_response

log = logging.getLogger("scopegate.leak_reports")

KEYS_ENV = "SCOPEGATE_SECRET_SCANNING_KEYS"
TOKEN_ENV = "SCOPEGATE_REVOCATION_TOKEN"
GITHUB_PATH = "/scopegate/v1/secret-scanning/github"
TYPES_PATH = "/scopegate/v1/revocation/revocable_token_types"
REVOKE_PATH = "/scopegate/v1/revocation/revoke_tokens"
MAX_BODY_BYTES = 1024 * 1024
MAX_TOKENS = 1000
# GitLab's contract asks for a rate limit: revocation requests per minute, per process.
REVOKE_REQUESTS_PER_MINUTE = 60
TOKEN_TYPES = ("scopegate_personal_access_token", "scopegate_api_key", "scopegate_session_token")


def _unauthorized(details: str) -> ApiError:
    return ApiError(C.CONN_INVALID_REQUEST, "Unauthorized", details, http_status=401)


def _bad(details: str) -> ApiError:
    return ApiError(C.CONN_BAD_REQUEST_FORMAT, "Bad request format", details)


def _json(document: object, status: int = 200) -> Response:
    return Response(encode(document), status, media_type=MEDIA_TYPE)


class _SigningKeyFile:
    """GitHub's keys document, read again whenever the file changes (GitHub rotates keys)."""

    def __init__(self, path: str) -> None:
        self._path = Path(path) if path else None
        self._seen: float | None = None
        self._keys: SigningKeys | None = None

    def current(self) -> SigningKeys | None:
        if self._path is None:
            return None
        try:
            mtime = self._path.stat().st_mtime
        except OSError:
            return None
        if mtime != self._seen:
            self._seen = mtime
            try:
                self._keys = SigningKeys.from_document(self._path.read_text())
            except (OSError, ValueError) as exc:
                log.warning("%s (%s): %s", KEYS_ENV, self._path, exc)
                self._keys = None
        return self._keys


class LeakReports:
    def __init__(self, services: Services, keys_path: str = "", revocation_token: str = "") -> None:
        self._services = services
        self._keys = _SigningKeyFile(keys_path)
        self._token = revocation_token.encode()
        self._recent: deque[float] = deque()  # monotonic times of revocation requests

    @classmethod
    def from_environment(cls, services: Services) -> LeakReports:
        return cls(services, os.environ.get(KEYS_ENV, ""), os.environ.get(TOKEN_ENV, ""))

    def routes(self) -> list[Route]:
        return [
            Route(GITHUB_PATH, self.github, methods=["POST"]),
            Route(TYPES_PATH, self.token_types, methods=["GET"]),
            Route(REVOKE_PATH, self.revoke_tokens, methods=["POST"]),
        ]

    # GitHub ---------------------------------------------------------------------------

    async def github(self, request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, ApiError):
            return error_response(body)
        keys = self._keys.current()
        headers = request.headers
        if keys is None or not keys.verify(
            headers.get("github-public-key-identifier"),
            headers.get("github-public-key-signature"),
            body,
        ):
            return error_response(
                _unauthorized("The report is not signed by a configured secret-scanning key.")
            )
        try:
            items = _items(body, ("token", "type"), optional=("url", "source"))
        except ApiError as error:
            return error_response(error)
        found = await asyncio.to_thread(
            self._revoke_all, [(i["token"], i.get("url", "")) for i in items], "github", request
        )
        return _json(
            [
                {
                    "token_hash": hashlib.sha256(item["token"].encode()).hexdigest(),
                    "token_type": item["type"],
                    "label": "true_positive" if revoked else "false_positive",
                }
                for item, revoked in zip(items, found, strict=True)
            ]
        )

    # GitLab ---------------------------------------------------------------------------

    def _bearer_ok(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return (
            bool(self._token)
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), self._token)
        )

    async def token_types(self, request: Request) -> Response:
        if not self._bearer_ok(request):
            return error_response(_unauthorized("Send 'Authorization: Bearer <token>'."))
        return _json({"types": list(TOKEN_TYPES)})

    async def revoke_tokens(self, request: Request) -> Response:
        if not self._bearer_ok(request):
            return error_response(_unauthorized("Send 'Authorization: Bearer <token>'."))
        throttled = self._throttle()
        if throttled is not None:
            return error_response(throttled)
        body = await _body(request)
        if isinstance(body, ApiError):
            return error_response(body)
        try:
            items = _items(body, ("type", "token"), optional=("location",))
        except ApiError as error:
            return error_response(error)
        await asyncio.to_thread(
            self._revoke_all,
            [(i["token"], i.get("location", "")) for i in items],
            "gitlab",
            request,
        )
        return Response(status_code=204)

    def _throttle(self) -> ThrottledError | None:
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 60:
            self._recent.popleft()
        if len(self._recent) >= REVOKE_REQUESTS_PER_MINUTE:
            return ThrottledError(
                60 - (now - self._recent[0]),
                "Too many revocation requests",
                "revocation requests",
            )
        self._recent.append(now)
        return None

    # both -----------------------------------------------------------------------------

    def _revoke_all(self, reported: list[tuple[str, str]], source: str, request: Request):
        """Whether each reported secret was ours and valid; each revoked in its own
        transaction, so one failure leaves the others revoked."""
        peer = request.client.host if request.client else ""
        found = []
        for secret, location in reported:
            with self._services.transaction() as conn:
                revoked = leaks.revoke_leaked(
                    conn,
                    self._services.hasher,
                    secret,
                    source=source,
                    location=location,
                    client_address=peer,
                )
            found.append(revoked is not None)
        return found


async def _body(request: Request) -> bytes | ApiError:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _bad(f"The body exceeds {MAX_BODY_BYTES} bytes.")
    return body


def _items(body: bytes, required: tuple[str, ...], optional: tuple[str, ...]) -> list[dict]:
    """The report's JSON array of objects, each with string fields `required` (and, if
    present, `optional`); ApiError saying what is wrong otherwise."""
    shape = "a JSON array of objects with string fields " + ", ".join(required + optional)
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _bad(f"The body is not JSON: send {shape}.") from None
    if not isinstance(items, list) or len(items) > MAX_TOKENS:
        raise _bad(f"Send {shape}, at most {MAX_TOKENS}.")
    for item in items:
        if (
            not isinstance(item, dict)
            or not all(isinstance(item.get(k), str) for k in required)
            or not all(isinstance(item.get(k, ""), str) for k in optional)
        ):
            raise _bad(f"Send {shape}.")
    return items
