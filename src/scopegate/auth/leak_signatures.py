"""GitHub secret scanning's signatures: ECDSA P-256 over SHA-256 of the raw request body,
base64 of the DER signature in `Github-Public-Key-Signature`, made with the key whose
`key_identifier` is in `Github-Public-Key-Identifier`. The keys come in the document GitHub
publishes them in: `{"public_keys": [{"key_identifier", "key": PEM, "is_current"}]}`.
Pure: no I/O (the caller reads the document)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from types import MappingProxyType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


class SigningKeys:
    """Public keys by identifier; only P-256 keys are accepted."""

    def __init__(self, keys: Mapping[str, ec.EllipticCurvePublicKey]) -> None:
        self._keys = MappingProxyType(dict(keys))

    @property
    def identifiers(self) -> frozenset[str]:
        return frozenset(self._keys)

    @classmethod
    def from_document(cls, text: str) -> SigningKeys:
        """Keys from GitHub's document; ValueError saying what is wrong with it."""
        try:
            listed = json.loads(text)["public_keys"]
        except (ValueError, KeyError, TypeError):
            raise ValueError('expected {"public_keys": [{"key_identifier", "key"}, ...]}') from None
        keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for entry in listed if isinstance(listed, list) else ():
            identifier, pem = entry.get("key_identifier"), entry.get("key")
            if not isinstance(identifier, str) or not isinstance(pem, str):
                raise ValueError("each public key needs a key_identifier and a PEM key")
            key = load_pem_public_key(pem.encode())
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                raise ValueError(f"key {identifier} is not an ECDSA P-256 public key")
            keys[identifier] = key
        if not keys:
            raise ValueError("the document lists no public keys")
        return cls(keys)

    def verify(self, identifier: str | None, signature: str | None, body: bytes) -> bool:
        """Whether `signature` (base64 DER) over `body` is valid for the key `identifier`."""
        key = self._keys.get(identifier or "")
        if key is None or not signature:
            return False
        try:
            der = base64.b64decode(signature, validate=True)
            key.verify(der, body, _ECDSA_SHA256)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True
