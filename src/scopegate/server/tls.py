"""TLS for both ports: the certificate chain and private key given to `scopegate serve`.

The files are read and checked once, before anything listens: both readable, PEM, the key
unencrypted (gRPC takes no passphrase) and the private half of the first certificate's key.
gRPC gets the bytes; uvicorn reads the same files by name. The key never appears in an error
message, a log line or a repr.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    cert_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise ValueError(f"the TLS {what} {path} is empty")
    return data


def _no_passphrase() -> bytes:
    raise ValueError("encrypted")


def load_tls(cert_file: Path | None, key_file: Path | None) -> TlsFiles | None:
    """The checked pair, or None when neither is given; ValueError says what is wrong."""
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise ValueError("--tls-cert and --tls-key go together: give both or neither")
    cert_file = cert_file.expanduser().resolve()
    key_file = key_file.expanduser().resolve()
    chain = _read(cert_file, "certificate")
    key = _read(key_file, "key")
    if b"-----BEGIN CERTIFICATE-----" not in chain:
        raise ValueError(f"the TLS certificate {cert_file} holds no PEM certificate")
    if b"PRIVATE KEY-----" not in key:
        raise ValueError(f"the TLS key {key_file} holds no PEM private key")
    if b"ENCRYPTED" in key:
        raise ValueError(
            f"the TLS key {key_file} is encrypted; give it unencrypted (gRPC takes no passphrase)"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ValueError(
                f"the TLS key {key_file} does not match the certificate {cert_file}"
            ) from None
        detail = exc.reason or "not a valid PEM certificate chain and private key"
        raise ValueError(
            f"cannot use the TLS certificate {cert_file} with the key {key_file}: {detail}"
        ) from None
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"cannot use the TLS certificate {cert_file} with the key {key_file}: {exc}"
        ) from None
    return TlsFiles(cert_file, key_file, chain, key)
