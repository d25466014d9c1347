"""The client address of a request that came through a trusted reverse proxy.

Only when the peer is inside a trusted network is `X-Forwarded-For` read, from its right
end: each trusted hop passes the address it received from, so the client is the last
address that is not itself a trusted proxy. Entries left of it are whatever the client
wrote and are never believed. Without trusted networks this middleware is not installed
and the peer is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from scopegate.auth.limits import parse_address

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """The rightmost untrusted address of `peer` preceded by the `X-Forwarded-For` hops."""
    current = parse_address(peer)
    if current is None or not _inside(current, trusted):
        return peer
    for hop in reversed(forwarded_for):
        address = parse_address(hop)
        if address is None:
            break  # garbage from a trusted hop: stop at the last address we can name
        current = address
        if not _inside(address, trusted):
            break
    return str(current)


def _inside(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted)


class TrustedProxies:
    """ASGI middleware: `scope["client"]` (and the scheme, from `X-Forwarded-Proto`) as
    a trusted proxy reports them; every later reader (audit, throttles) sees the client."""

    def __init__(self, app: ASGIApp, trusted: Sequence[IPNetwork]) -> None:
        self._app = app
        self._trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        peer = parse_address(client[0]) if client and scope["type"] == "http" else None
        if peer is not None and _inside(peer, self._trusted):
            hops: list[str] = []
            proto = ""
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    hops.extend(value.decode("latin-1").split(","))
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").rpartition(",")[2].strip().lower()
            scope = dict(scope)
            if hops:
                scope["client"] = (client_address(client[0], hops, self._trusted), 0)
            if proto in ("http", "https"):
                scope["scheme"] = proto
        await self._app(scope, receive, send)
