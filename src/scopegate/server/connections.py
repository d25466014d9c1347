"""What the server allows a connection: whose forwarding headers it believes, how long a
client may take to send a request, how many may connect at once.

The values come from `scopegate serve --trusted-proxy` and the environment, read by
`scopegate.server.config` (SCOPEGATE_TRUSTED_PROXIES, SCOPEGATE_HTTP_REQUEST_TIMEOUT_SECONDS,
SCOPEGATE_HTTP_KEEP_ALIVE_SECONDS, SCOPEGATE_HTTP_MAX_CONNECTIONS,
SCOPEGATE_GRPC_MAX_IDLE_SECONDS).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from scopegate.transports.rest.forwarded import IPNetwork


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
