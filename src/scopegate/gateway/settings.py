"""Forwarding upstream, configured (`scopegate serve --upstream ...`), and which methods it
takes: every V2 method without a local handler, and those `--upstream-method` names."""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from scopegate.contract.catalog import Catalog

DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """A gRPC server implementing clarifai.api.V2 that forwarded calls go to."""

    address: str  # HOST:PORT
    tls: bool = False
    # PEM roots the upstream's certificate must chain to (--upstream-ca), read at start;
    # None with TLS: the system's roots.
    ca_certificates: bytes | None = None
    ca_file: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS  # the longest a forwarded call may take
    # fnmatch patterns of method names forwarded although served here (--upstream-method).
    methods: tuple[str, ...] = ()
    # Sign each forwarded call's identity (x-scopegate-assertion; keys at /.well-known/jwks.json).
    assertion: bool = False
    # The Ed25519 signing key (PEM); None: generated once into the data dir.
    assertion_key_file: Path | None = None


def parse_upstream_address(text: str, source: str) -> str:
    """`HOST:PORT` (an IPv6 host in brackets), checked; the message names `source`."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{source} must be HOST:PORT (e.g. models.internal:50051), not {text!r}")
    return f"{host}:{int(port)}"


def unknown_patterns(patterns: Sequence[str], catalog: Catalog) -> list[str]:
    """The patterns that name no V2 method (a typo would silently forward nothing)."""
    names = list(catalog.methods)
    return [p for p in patterns if not fnmatch.filter(names, p)]


def forwarded_methods(
    catalog: Catalog, local: Collection[str], patterns: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(methods forwarded, methods served here), by name: a method goes upstream when no
    local handler serves it or a pattern names it (case-sensitive, as method names are)."""
    forwarded, served = [], []
    for name in catalog.methods:
        if name not in local or any(fnmatch.fnmatchcase(name, p) for p in patterns):
            forwarded.append(name)
        else:
            served.append(name)
    return forwarded, served
