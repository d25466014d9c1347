"""Piping a one-port connection that speaks gRPC to the server's internal gRPC listener.

gRPC's core cannot adopt a socket that Python accepted, so `scopegate serve --port` runs
the gRPC server on a loopback port of its own (127.0.0.1, a random port, never announced)
and copies the bytes of each gRPC connection to it and back, flow-controlled both ways.
Over TLS the bytes are already decrypted: the internal listener is plaintext.

The internal listener sees every piped connection as coming from 127.0.0.1, so each pipe
records, for as long as its internal socket is open, the address gRPC sees it from and
the client's real one (`PipedPeers`). A TCP connection's four addresses are unique while
it is open and the record goes before the socket is closed, so no other connection (a
local process dialling the internal port directly, say) can be taken for a piped client:
such a connection is simply 127.0.0.1.

Plaintext connections are relayed off the event loop (`grpc_relay.SpliceRelay`); TLS ones,
whose bytes asyncio's SSL transport decrypts, stay on the loop (`GrpcPipe`).
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

# How long a side whose partner has gone may take to pass on what it still holds (a
# client that stops reading, a gRPC side that does not close on EOF) before it is aborted.
DRAIN_SECONDS = 10.0


def grpc_peer(address: Any) -> str:
    """A socket address as gRPC names peers: `ipv4:1.2.3.4:5678`, `ipv6:[::1]:5678`."""
    if not isinstance(address, tuple) or len(address) < 2:
        return ""
    host, port = str(address[0]).partition("%")[0], address[1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener's IPv4 client
    if ip.version == 4:
        return f"ipv4:{ip}:{port}"
    return f"ipv6:[{ip}]:{port}"


class PipedPeers:
    """The real client of each open piped connection, by the peer gRPC sees (a callable:
    any other peer is answered as itself)."""

    def __init__(self) -> None:
        self._real: dict[str, str] = {}

    def __call__(self, peer: str) -> str:
        return self._real.get(peer, peer)

    def add(self, internal: str, real: str) -> None:
        self._real[internal] = real

    def discard(self, internal: str) -> None:
        self._real.pop(internal, None)

    def __len__(self) -> int:
        return len(self._real)


def _abort_later(transport: asyncio.BaseTransport, loop: asyncio.AbstractEventLoop) -> None:
    """Close gracefully, but abort if the far end does not let the close finish."""
    transport.close()
    loop.call_later(DRAIN_SECONDS, transport.abort)  # type: ignore[attr-defined]


class GrpcPipe(asyncio.Protocol):
    """The client's side of a gRPC connection on the one port.

    It counts among the HTTP server's connections (`connections`, uvicorn's set), so the
    connection cap covers it and a graceful stop waits for it; `shutdown()`, which uvicorn
    calls on each connection when stopping, leaves it open: the gRPC server's own graceful
    stop (GOAWAY, in-flight calls finished) ends it.
    """

    def __init__(
        self,
        target: tuple[str, int],
        peers: PipedPeers,
        connections: set[Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._target = target
        self._peers = peers
        self._connections = connections
        self._loop = loop
        self._pending = bytearray()  # what the client sent before the internal side opened
        self._upstream: _Upstream | None = None
        self._closed = False
        self.transport: asyncio.Transport | None = None

    def start(self, transport: asyncio.Transport, first_bytes: bytes) -> None:
        """Take over `transport` (whose protocol is already set to this one)."""
        self.transport = transport
        self._connections.add(self)
        self._pending += first_bytes
        self._real_peer = grpc_peer(transport.get_extra_info("peername"))
        self._connecting = self._loop.create_task(self._connect())

    async def _connect(self) -> None:
        host, port = self._target
        try:
            await self._loop.create_connection(lambda: _Upstream(self), host, port)
        except OSError:  # the gRPC server is stopping or gone
            if self.transport is not None:
                self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pass  # see start(): the transport comes from the port switch

    def data_received(self, data: bytes) -> None:
        if self._upstream is not None:
            self._upstream.transport.write(data)
        else:
            self._pending += data
            if len(self._pending) > 64 * 1024 and self.transport is not None:
                self.transport.pause_reading()  # until the internal side is open

    def eof_received(self) -> bool | None:
        return None  # close: HTTP/2 has no use for a half-closed connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._connections.discard(self)
        if self._upstream is not None:
            # EOF rather than a close: gRPC then ends the connection itself, cancelling
            # its calls, before the internal socket (and its record in `peers`) goes.
            self._upstream.finish()

    def pause_writing(self) -> None:
        if self._upstream is not None:
            self._upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._upstream is not None:
            self._upstream.transport.resume_reading()

    def shutdown(self) -> None:
        pass  # the gRPC server's graceful stop ends the connection

    # Called by the internal side.

    def _opened(self, upstream: _Upstream) -> None:
        if self._closed:
            upstream.finish()
            return
        self._upstream = upstream
        self._peers.add(upstream.internal_peer, self._real_peer)
        if self._pending:
            upstream.transport.write(bytes(self._pending))
            self._pending.clear()
        if self.transport is not None:
            self.transport.resume_reading()

    def _upstream_lost(self) -> None:
        if self.transport is not None and not self._closed:
            _abort_later(self.transport, self._loop)


class _Upstream(asyncio.Protocol):
    """The pipe's connection to the internal gRPC listener."""

    def __init__(self, front: GrpcPipe) -> None:
        self._front = front
        self.internal_peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # The address the internal listener sees this connection from (its peer).
        self.internal_peer = grpc_peer(transport.get_extra_info("sockname"))
        self._front._opened(self)

    def data_received(self, data: bytes) -> None:
        front = self._front.transport
        if front is not None and not front.is_closing():
            front.write(data)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        # Runs just before the socket is closed: after it, its addresses may be reused.
        self._front._peers.discard(self.internal_peer)
        self._front._upstream_lost()

    def pause_writing(self) -> None:
        front = self._front.transport
        if front is not None:
            front.pause_reading()

    def resume_writing(self) -> None:
        front = self._front.transport
        if front is not None:
            front.resume_reading()

    def finish(self) -> None:
        if self.transport.is_closing():
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._front._loop.call_later(DRAIN_SECONDS, self.transport.abort)
        else:
            _abort_later(self.transport, self._front._loop)


# The relay thread: one for every plaintext piped connection of a server, running while
# there are any.
