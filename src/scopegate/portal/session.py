"""The browser session: the login session token in a cookie, and CSRF protection.

The cookie holds the very session token `POST /v2/login` answers (HttpOnly, SameSite=Lax,
Path=/portal, and Secure when the portal is served over HTTPS, as `serve --tls-cert` does),
so portal requests authenticate exactly like API calls that send `X-Clarifai-Session-Token`.
Every form carries a CSRF token, HMAC(key derived from the server secret, binding), where
the binding is the session token once signed in, else a random pre-session cookie (for the
login and sign-up forms). A POST is refused when its token does not match or when its
Origin (or Sec-Fetch-Site) names another site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from scopegate.auth.tokens import SecretHasher

BASE = "/portal"
SESSION_COOKIE = "sg_portal_session"
PRESESSION_COOKIE = "sg_portal_pre"
CSRF_FIELD = "csrf_token"
PRESESSION_SECONDS = 24 * 3600


class CsrfSigner:
    """Makes and checks CSRF tokens bound to a session (or pre-session) value."""

    def __init__(self, hasher: SecretHasher) -> None:
        # A key of its own, derived from the server secret: a token is never the stored
        # digest of the session it is bound to.
        self._key = hasher.digest("scopegate/portal/csrf/v1")

    def token(self, binding: str) -> str:
        mac = hmac.digest(self._key, binding.encode("utf-8"), hashlib.sha256)
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def valid(self, binding: str | None, token: str | None) -> bool:
        if not binding or not token:
            return False
        return hmac.compare_digest(self.token(binding), token)


def new_presession() -> str:
    return secrets.token_urlsafe(32)


def same_origin(request: Request) -> bool:
    """False when the browser says the POST comes from another site.

    Browsers send Origin on every form POST; Sec-Fetch-Site is the fallback. A request
    with neither (not a browser) still needs a valid CSRF token.
    """
    origin = request.headers.get("origin")
    if origin:
        # Compare hosts, not schemes: behind a TLS proxy the server sees plain HTTP.
        return origin != "null" and urlsplit(origin).netloc == request.headers.get("host", "")
    site = request.headers.get("sec-fetch-site")
    return site in (None, "same-origin", "none")


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=BASE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=BASE, httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )
