"""The signed assertion of a forwarded call's identity (`--upstream-assertion`).

An upstream reachable by other paths than scopegate cannot trust `x-scopegate-*` headers
alone: anyone who reaches it could send them. With the assertion, each forwarded call also
carries `x-scopegate-assertion`, a JWT signed with scopegate's Ed25519 key (EdDSA, a `kid`
header, 60 seconds of life) holding the same identity, bound to the method and the target;
the public keys are served at `GET /.well-known/jwks.json`. Signing and the JWK encoding are
PyJWT's (with `cryptography`), not ours.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from scopegate.auth.policy import Relation, Target
from scopegate.auth.principal import Principal
from scopegate.gateway.identity import CREDENTIAL_TYPES, RELATIONS

ISSUER = "scopegate"
LIFETIME_SECONDS = 60
KEY_FILE = "upstream-assertion.pem"
JWKS_PATH = "/.well-known/jwks.json"


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 of the key's required members, in order, without spaces."""
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The signing key in `path` (PEM, PKCS#8), made once (mode 0600) when missing: every
    process serving from one data dir signs with the same key. A new key is written to a
    file of its own and linked into place, so a process starting beside it (serve
    --workers) reads either no file or a whole one."""
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(staging, path)
        except FileExistsError:
            pass  # another process made it first: use that one
        finally:
            staging.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} must hold an Ed25519 private key")
    return loaded


class AssertionSigner:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        public = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
        self.kid = _thumbprint(public)
        self._jwks = json.dumps(
            {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "EdDSA"}]}
        ).encode()
        self._headers = {"kid": self.kid}

    def jwks(self) -> bytes:
        """The JSON Web Key Set an upstream verifies assertions with."""
        return self._jwks

    def sign(
        self,
        principal: Principal | None,
        relation: Relation | None,
        scopes: frozenset[str],
        request_id: str,
        method: str,
        target: Target,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME_SECONDS,
            "jti": request_id,
            "method": method,
            "user_app_id": {"user_id": target.user_id, "app_id": target.app_id},
        }
        if principal is not None:
            claims["sub"] = principal.user_id
            claims["credential"] = principal.credential_id
            claims["credential_type"] = CREDENTIAL_TYPES[principal.kind]
            claims["scopes"] = sorted(scopes)
            if relation in RELATIONS:
                claims["relation"] = RELATIONS[relation]
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers=self._headers)


def with_jwks(app, signer: AssertionSigner):
    """`app` (ASGI) with `GET /.well-known/jwks.json` answered in front of it."""
    body = signer.jwks()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"max-age=300"),
    ]

    async def serve(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == JWKS_PATH:
            if scope["method"] not in ("GET", "HEAD"):
                await send({"type": "http.response.start", "status": 405, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send(
                {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
            )
            return
        await app(scope, receive, send)

    return serve
