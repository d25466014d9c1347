"""What the server allows a connection: whose forwarding headers it believes, how long a
client may take to send a request, how many may connect at once.

Settings come from `scopegate serve --trusted-proxy` and the environment:

- SCOPEGATE_TRUSTED_PROXIES: CIDRs, comma-separated (the flag, repeatable, wins). Only a
  peer inside one of them may name the client in `X-Forwarded-For`; by default none may,
  so a local client cannot forge the address that audit entries record and throttles count.
- SCOPEGATE_HTTP_REQUEST_TIMEOUT_SECONDS: a request's line and headers must arrive within
  this long (from the connection, or from the request's first byte), and its body must
  not pause longer; past that the connection is closed (slowloris).
- SCOPEGATE_HTTP_KEEP_ALIVE_SECONDS: an idle keep-alive connection is closed after this.
- SCOPEGATE_HTTP_MAX_CONNECTIONS: beyond this many open connections, requests are answered
  503 at once.
- SCOPEGATE_GRPC_MAX_IDLE_SECONDS: a gRPC connection without a call for this long is
  closed (GOAWAY).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

TRUSTED_PROXIES_ENV = "SCOPEGATE_TRUSTED_PROXIES"
HTTP_REQUEST_TIMEOUT_ENV = "SCOPEGATE_HTTP_REQUEST_TIMEOUT_SECONDS"
HTTP_KEEP_ALIVE_ENV = "SCOPEGATE_HTTP_KEEP_ALIVE_SECONDS"
HTTP_MAX_CONNECTIONS_ENV = "SCOPEGATE_HTTP_MAX_CONNECTIONS"
GRPC_MAX_IDLE_ENV = "SCOPEGATE_GRPC_MAX_IDLE_SECONDS"


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    trusted_proxies: tuple[IPNetwork, ...] = ()
    http_request_timeout: float = 10.0
    http_keep_alive: float = 5.0
    # Below the usual 1024 open files a process may have, with room for the database's.
    http_max_connections: int = 900
    grpc_max_idle: float = 300.0


def parse_networks(values: Iterable[str], source: str) -> tuple[IPNetwork, ...]:
    """CIDRs (`10.0.0.0/8`, `fd00::/8`; a bare address is its own /32 or /128)."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{source}: '{value}' is not an IPv4 or IPv6 CIDR") from None
    return tuple(networks)


def _number(name: str, default: float, kind: type = float):
    raw = os.environ.get(name, "").strip()
    try:
        value = kind(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


def connection_settings(trusted_proxies: Iterable[str] = ()) -> ConnectionSettings:
    """Flags first (`--trusted-proxy`), then the environment, then the defaults."""
    flags = list(trusted_proxies)
    if flags:
        proxies = parse_networks(flags, "--trusted-proxy")
    else:
        raw = os.environ.get(TRUSTED_PROXIES_ENV, "")
        proxies = parse_networks([p for p in raw.split(",") if p.strip()], TRUSTED_PROXIES_ENV)
    defaults = ConnectionSettings()
    return ConnectionSettings(
        trusted_proxies=proxies,
        http_request_timeout=_number(HTTP_REQUEST_TIMEOUT_ENV, defaults.http_request_timeout),
        http_keep_alive=_number(HTTP_KEEP_ALIVE_ENV, defaults.http_keep_alive),
        http_max_connections=_number(HTTP_MAX_CONNECTIONS_ENV, defaults.http_max_connections, int),
        grpc_max_idle=_number(GRPC_MAX_IDLE_ENV, defaults.grpc_max_idle),
    )


def grpc_options(settings: ConnectionSettings) -> list[tuple[str, int]]:
    """gRPC core's channel arguments for the same limits (for `grpc.aio.server(options=)`)."""
    return [
        ("grpc.max_connection_idle_ms", int(settings.grpc_max_idle * 1000)),
        # A connection must finish its TLS and HTTP/2 handshakes this soon.
        ("grpc.server_handshake_timeout_ms", int(settings.http_request_timeout * 1000)),
        # Pings answer dead peers: after 2 hours of silence, and 20 s to answer.
        ("grpc.keepalive_time_ms", 2 * 3600 * 1000),
        ("grpc.keepalive_timeout_ms", 20_000),
    ]
