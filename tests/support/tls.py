"""Throwaway self-signed certificates for TLS test servers, made with the `openssl` command."""

from __future__ import annotations

import secrets
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The names test clients connect to; the certificate is valid for both.
HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate (its own root: clients trust this file) and its key."""

    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """An SSL context trusting this certificate only (host names checked)."""
        return ssl.create_default_context(cafile=str(self.cert))


def openssl_missing() -> str | None:
    return None if shutil.which("openssl") else "the openssl command is not installed"


def self_signed(directory: Path, name: str = "server", hosts=HOSTS) -> Certificate:
    """A new P-256 key and a one-day certificate for `hosts` (DNS names and IP addresses)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    names = _san(hosts)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={hosts[0]}",
            "-addext",
            f"subjectAltName={names}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Certificate(cert, key)


def _san(hosts) -> str:
    return ",".join(
        f"IP:{host}" if host.replace(".", "").isdigit() or ":" in host else f"DNS:{host}"
        for host in hosts
    )


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def certificate_authority(directory: Path, name: str = "ca") -> Certificate:
    """A new root CA (P-256, one day): trust its `cert` to trust what `signed_by` makes."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "1", "-subj", f"/CN=scopegate test CA {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    return Certificate(cert, key)


def signed_by(
    ca: Certificate, directory: Path, name: str, hosts, *, expired: bool = False
) -> Certificate:
    """A server certificate for `hosts` signed by `ca`: valid for a day, or, with
    `expired`, one that ended yesterday. `cert` holds the leaf then the CA (the chain a
    server sends)."""
    directory.mkdir(parents=True, exist_ok=True)
    leaf, key, request = (directory / f"{name}.{ext}" for ext in ("leaf", "key", "csr"))
    extensions = directory / f"{name}.ext"
    extensions.write_text(
        f"subjectAltName={_san(hosts)}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-subj", f"/CN={hosts[0]}", "-keyout", str(key), "-out", str(request),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-set_serial", str(int.from_bytes(secrets.token_bytes(8), "big")),
        "-days", "-1" if expired else "1", "-extfile", str(extensions), "-out", str(leaf),
    )  # fmt: skip
    chain = directory / f"{name}.crt"
    chain.write_bytes(leaf.read_bytes() + ca.cert.read_bytes())
    return Certificate(chain, key)


def server_context(certificate: Certificate) -> ssl.SSLContext:
    """A TLS server context presenting `certificate`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificate.cert), str(certificate.key))
    return context
