"""uvicorn's HTTP/1.1 protocol with deadlines on reading requests (slowloris).

uvicorn closes a keep-alive connection idle between requests, but nothing else: a client
that connects and sends nothing, or sends a request line a byte at a time, or stops in the
middle of a body, holds its connection forever. Here:

- a request's line and headers must arrive within `request_timeout` of the connection
  being made or of the request's first byte; a partial head is then answered 408, an
  empty connection just closed;
- a body may not pause longer than `request_timeout` (while the server itself is not
  holding back reads); the connection is then closed, which the handler reads as a
  client disconnect;
- a head may not exceed `max_head_bytes`, give or take one read (431).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _status(code: int, reason: str) -> bytes:
    return (
        f"HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(reason)}\r\nconnection: close\r\n\r\n{reason}"
    ).encode()


REQUEST_TIMEOUT = _status(408, "Request Timeout")
HEAD_TOO_LARGE = _status(431, "Request Header Fields Too Large")


class DeadlineHttpProtocol(HttpToolsProtocol):
    request_timeout: float = 10.0
    max_head_bytes: int = 64 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._timer: asyncio.TimerHandle | None = None
        self._head_bytes: int | None = 0  # bytes of the head being read; None past it
        self._began = False  # a request began in the chunk being parsed
        self._in_head = False  # a request's first byte came, its headers not all yet
        self._last_body = 0.0
        self._arm(self.request_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._began = False
        super().data_received(data)
        # Inside one head from before `data` to after it: all of it was head. (A chunk in
        # which a request began is not counted: the limit may be passed by one chunk.)
        if self._head_bytes is not None and not self._began and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse(HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began = self._in_head = True
        self._head_bytes = 0
        if self._timer is None:  # the connection's own deadline may still run
            self._arm(self.request_timeout, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._in_head = False
        self._last_body = self.loop.time()
        self._arm(self.request_timeout, self._body_paused)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._last_body = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _busy(self) -> bool:
        """Not the client's fault: reads held back while a response is being made."""
        return self.flow.read_paused or bool(self.cycle and not self.cycle.response_complete)

    def _head_timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._busy():
            self._arm(self.request_timeout, self._head_timed_out)
        elif self._in_head:
            self._refuse(REQUEST_TIMEOUT)
        else:
            self.transport.close()

    def _body_paused(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        idle = self.loop.time() - self._last_body
        if self.flow.read_paused:
            self._arm(self.request_timeout, self._body_paused)
        elif idle < self.request_timeout:
            self._arm(self.request_timeout - idle, self._body_paused)
        else:
            self.transport.close()

    def _refuse(self, answer: bytes) -> None:
        self._disarm()
        self.transport.write(answer)
        self.transport.close()


def deadline_protocol(request_timeout: float) -> type[DeadlineHttpProtocol]:
    """The protocol class for `uvicorn.Config(http=...)`, with this timeout."""
    return type(
        "DeadlineHttpProtocol",
        (DeadlineHttpProtocol,),
        {"request_timeout": request_timeout},
    )
