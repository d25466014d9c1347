"""Throwaway self-signed certificates for TLS test servers, made with the `openssl` command."""

from __future__ import annotations

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
    names = ",".join(
        f"IP:{host}" if host.replace(".", "").isdigit() or ":" in host else f"DNS:{host}"
        for host in hosts
    )
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
