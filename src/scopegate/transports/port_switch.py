"""One port for gRPC and HTTP/1.1 (`scopegate serve --port`), chosen per connection.

Over TLS, ALPN decides: the server offers ["http/1.1", "h2"] and, as servers do, picks by
its own order, so clients offering both (curl, browsers, requests) get HTTP/1.1 and gRPC
clients, which offer only h2, get h2 and are piped to gRPC. Without TLS (or without ALPN)
the first bytes decide: exactly the HTTP/2 client preface is gRPC, anything else goes to
the HTTP/1.1 server, which answers garbage 400 as on its own port.

The choice is made on the preface, not on a request's `content-type: application/grpc`:
a gRPC client sends the preface and its SETTINGS, then waits for the server's SETTINGS
before its first request (a channel's readiness, a health probe), so waiting for a
request would stall it. The price: an HTTP/2 REST client (`curl --http2-prior-knowledge`,
a TLS client offering only h2) reaches gRPC, which refuses its requests.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

from scopegate.transports.grpc_pipe import GrpcPipe, PipedPeers
from scopegate.transports.grpc_relay import SpliceRelay

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ALPN = ["http/1.1", "h2"]


class PortSwitch(asyncio.Protocol):
    """uvicorn's protocol class (`uvicorn.Config(http=...)`) for a one-port server: it
    reads no more than the preface's 24 bytes, then hands the connection over for good."""

    alpn_protocols: ClassVar[list[str]] = ALPN  # read by uvicorn when it builds the TLS context
    http_protocol: ClassVar[type[asyncio.Protocol]]
    grpc_target: ClassVar[tuple[str, int]]
    peers: ClassVar[PipedPeers]
    relay: ClassVar[SpliceRelay | None]  # plaintext gRPC, off the event loop (Linux)
    # The first bytes must come this soon (the HTTP request timeout): else closed.
    first_bytes_timeout: ClassVar[float] = 10.0

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._loop = _loop or asyncio.get_event_loop()
        self._connections: set[Any] = server_state.connections
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn == "h2":
            self._to_grpc(b"")
        elif alpn == "http/1.1":
            self._to_http(b"")
        else:
            # Counted while undecided: within the connection cap, closed by a shutdown.
            self._connections.add(self)
            self._timer = self._loop.call_later(self.first_bytes_timeout, transport.close)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) < len(PREFACE) and PREFACE.startswith(self._buffer):
            return
        self._decided()
        if self._buffer.startswith(PREFACE):
            self._to_grpc(self._buffer)
        else:
            self._to_http(self._buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._decided()

    def shutdown(self) -> None:
        self.transport.close()  # nothing in flight yet

    def _decided(self) -> None:
        self._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _to_http(self, first_bytes: bytes) -> None:
        protocol = self.http_protocol(  # type: ignore[call-arg]
            config=self._config,
            server_state=self._server_state,
            app_state=self._app_state,
            _loop=self._loop,
        )
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if first_bytes:
            protocol.data_received(first_bytes)

    def _to_grpc(self, first_bytes: bytes) -> None:
        limit = self._config.limit_concurrency
        if limit is not None and len(self._connections) >= limit:
            # HTTP requests would be answered 503 here; a gRPC client retries elsewhere.
            self.transport.close()
            return
        if self.relay is not None and self.transport.get_extra_info("ssl_object") is None:
            self.relay.take(self.transport, first_bytes, self._connections, self._loop)
            return
        pipe = GrpcPipe(self.grpc_target, self.peers, self._connections, self._loop)
        self.transport.set_protocol(pipe)
        pipe.start(self.transport, first_bytes)


def port_switch_protocol(
    http_protocol: type[asyncio.Protocol],
    grpc_target: tuple[str, int],
    peers: PipedPeers,
    first_bytes_timeout: float,
) -> type[PortSwitch]:
    """The protocol class for `uvicorn.Config(http=...)`: HTTP/1.1 by `http_protocol`,
    gRPC piped to the internal listener at `grpc_target`, recording peers in `peers`."""
    return type(
        "PortSwitch",
        (PortSwitch,),
        {
            "http_protocol": http_protocol,
            "grpc_target": grpc_target,
            "peers": peers,
            "relay": SpliceRelay(grpc_target, peers) if hasattr(os, "splice") else None,
            "first_bytes_timeout": first_bytes_timeout,
        },
    )
