"""Secret format: a type prefix, 178 random bits and a CRC32 checksum, all base62.

    sgp_<30 random base62><6 checksum base62>   personal access token
    sgk_<...>                                   app-specific API key
    sgs_<...>                                   session token

The checksum lets a mistyped or made-up secret be refused without a database query, and
the prefix makes a leaked secret recognisable to secret scanners. Secrets in the original
service's format (32 hex characters) are accepted as `LEGACY` once imported.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import zlib

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_SET = frozenset(BASE62)
_HEX_SET = frozenset("0123456789abcdef")
RANDOM_LENGTH = 30  # 30 * log2(62) ≈ 178.6 bits
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
PREFIX_LENGTH = 4
SECRET_LENGTH = PREFIX_LENGTH + RANDOM_LENGTH + CHECKSUM_LENGTH
LEGACY_LENGTH = 32


class SecretKind(enum.StrEnum):
    PAT = "pat"
    APP_KEY = "app_key"
    SESSION = "session"
    LEGACY = "legacy"  # imported from the original service; its kind lives in the database


PREFIX_BY_KIND = {SecretKind.PAT: "sgp_", SecretKind.APP_KEY: "sgk_", SecretKind.SESSION: "sgs_"}
KIND_BY_PREFIX = {prefix: kind for kind, prefix in PREFIX_BY_KIND.items()}


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate(kind: SecretKind) -> str:
    """A fresh secret of `kind`, to be shown to its owner once and then only hashed."""
    prefix = PREFIX_BY_KIND[kind]
    body = prefix + "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return body + _checksum(body)


def parse(secret: str) -> SecretKind | None:
    """The kind of a well-formed secret, or None for anything that cannot be one of ours."""
    if len(secret) == SECRET_LENGTH:
        kind = KIND_BY_PREFIX.get(secret[:PREFIX_LENGTH])
        if kind is None or not _BASE62_SET.issuperset(secret[PREFIX_LENGTH:]):
            return None
        body, check = secret[:-CHECKSUM_LENGTH], secret[-CHECKSUM_LENGTH:]
        return kind if hmac.compare_digest(_checksum(body), check) else None
    if len(secret) == LEGACY_LENGTH and _HEX_SET.issuperset(secret):
        return SecretKind.LEGACY
    return None


def is_legacy_format(secret: str) -> bool:
    return len(secret) == LEGACY_LENGTH and _HEX_SET.issuperset(secret)


def mask(secret: str) -> str:
    """What lists show instead of a secret: its prefix and last four characters."""
    prefix = secret[:PREFIX_LENGTH] if secret[:PREFIX_LENGTH] in KIND_BY_PREFIX else ""
    return f"{prefix}…{secret[-4:]}"


def new_public_id() -> str:
    """A non-secret identifier for a credential, safe for lists, URLs and logs."""
    return secrets.token_hex(16)


class SecretHasher:
    """Keyed hash (HMAC-SHA-256) of secrets: a stolen database alone reveals none of them.

    Secrets carry ≥160 random bits, so a fast keyed hash is enough; a slow password hash
    would only slow every request down.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the server secret must be at least 32 bytes")
        self._key = key

    def digest(self, secret: str) -> bytes:
        return hmac.digest(self._key, secret.encode("utf-8"), hashlib.sha256)
