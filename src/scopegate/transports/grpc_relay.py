"""Relaying plaintext one-port gRPC connections off the event loop: one thread moves the
bytes socket → kernel pipe → socket with `os.splice`, so the copying does not compete with
the handlers for the loop. The guarantees are those of `grpc_pipe.GrpcPipe`: the same flow
control, real-peer record, EOF and close semantics.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import socket
import threading
import time
from typing import Any

from scopegate.transports.grpc_pipe import DRAIN_SECONDS, PipedPeers, grpc_peer

_CHUNK = 64 * 1024  # a kernel pipe's default capacity: at most this is held per direction
_SPLICE = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_READ, _WRITE = select.EPOLLIN, select.EPOLLOUT  # type: ignore[attr-defined, unused-ignore]
CONNECTING, OPEN, CLIENT_GONE, GRPC_GONE, DONE = range(5)


class _Counted:
    """Stands for a relayed connection in uvicorn's `connections`, for the cap and so that
    a graceful stop waits for it; `shutdown()` leaves it to the gRPC server's stop."""

    __slots__ = ()

    def shutdown(self) -> None:
        pass


class _Flow:
    """One direction of a relayed connection: src → kernel pipe → dst. src is read only
    when the pipe is empty, so a slow dst holds at most one read (`_CHUNK`) here."""

    __slots__ = ("broken", "dst", "ended", "head", "held", "pipe_r", "pipe_w", "src")

    def __init__(self, src: int, dst: int, head: bytes) -> None:
        self.src, self.dst = src, dst
        self.head = head  # bytes the event loop read already (the preface): sent first
        self.pipe_r, self.pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.held = 0  # bytes in the pipe
        self.ended = False  # src gave EOF or failed
        self.broken = False  # dst failed

    def pending(self) -> bool:
        return bool(self.head or self.held)

    def pump(self) -> None:
        """Move what can move without blocking."""
        while not self.broken:
            try:
                if self.head:
                    self.head = self.head[os.write(self.dst, self.head) :]
                elif self.held:
                    self.held -= os.splice(self.pipe_r, self.dst, self.held, flags=_SPLICE)
                elif self.ended:
                    return
                else:
                    try:
                        n = os.splice(self.src, self.pipe_w, _CHUNK, flags=_SPLICE)
                    except BlockingIOError:
                        return
                    except OSError:  # a reset: as good as EOF
                        n = 0
                    self.ended = n == 0
                    self.held = n
                    if 0 < n < _CHUNK:  # src is most likely drained: spare a read
                        self.pump_out()
                        return
            except BlockingIOError:
                return  # dst is full: wait until it is writable
            except OSError:
                self.broken = True

    def pump_out(self) -> None:
        try:
            self.held -= os.splice(self.pipe_r, self.dst, self.held, flags=_SPLICE)
        except BlockingIOError:
            pass
        except OSError:
            self.broken = True

    def close(self) -> None:
        os.close(self.pipe_r)
        os.close(self.pipe_w)


class _Link:
    """A relayed connection: the client's socket and the internal one, to gRPC."""

    def __init__(self, client: socket.socket, first_bytes: bytes, real_peer: str) -> None:
        self.client = client
        self.real_peer = real_peer
        self.upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.upstream.setblocking(False)
        self.upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.internal_peer = ""
        self.phase = CONNECTING
        self.deadline = 0.0
        self.wrote_eof = False
        c, u = client.fileno(), self.upstream.fileno()
        self.up = _Flow(c, u, first_bytes)
        self.down = _Flow(u, c, b"")
        self.counted: _Counted = _Counted()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections: set[Any] = set()


class SpliceRelay:
    """Relays plaintext piped connections to the internal gRPC listener in a thread of
    its own, with the guarantees of `GrpcPipe`: the same flow control, EOF and close
    semantics, peer record and place in uvicorn's `connections`."""

    def __init__(self, target: tuple[str, int], peers: PipedPeers) -> None:
        self._target = target
        self._peers = peers
        self._lock = threading.Lock()
        self._incoming: list[_Link] = []
        self._thread: threading.Thread | None = None
        self._epoll = select.epoll()  # type: ignore[attr-defined, unused-ignore]
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_r, _READ)
        self._links: dict[int, _Link] = {}  # by both of its fds
        self._masks: dict[int, int] = {}
        self._draining: set[_Link] = set()

    def take(
        self,
        transport: asyncio.Transport,
        first_bytes: bytes,
        connections: set[Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Take a plaintext connection over from the event loop (called on the loop)."""
        sock = transport.get_extra_info("socket").dup()  # keeps it open past the transport
        link = _Link(sock, first_bytes, grpc_peer(transport.get_extra_info("peername")))
        transport.abort()  # closes only the loop's descriptor: nothing is sent
        link.loop, link.connections = loop, connections
        connections.add(link.counted)
        with self._lock:
            self._incoming.append(link)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="scopegate-grpc-relay", daemon=True
                )
                self._thread.start()
                return
        os.write(self._wake_w, b"\0")

    # The relay thread.

    def _run(self) -> None:
        while True:
            with self._lock:
                incoming, self._incoming = self._incoming, []
                if not incoming and not self._links:
                    self._thread = None  # the next connection starts another
                    return
            for link in incoming:
                self._connect(link)
            if not self._links:
                continue  # every new one failed: nothing to wait for
            timeout = -1.0
            if self._draining:
                timeout = max(0.0, min(k.deadline for k in self._draining) - time.monotonic())
            for fd, _ in self._epoll.poll(timeout):
                if fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    continue
                ready = self._links.get(fd)
                if ready is not None:
                    self._service(ready)
            if self._draining:
                now = time.monotonic()
                for link in [k for k in self._draining if k.deadline <= now]:
                    self._end(link)  # its far side did not let it finish: abort

    def _connect(self, link: _Link) -> None:
        up = link.upstream
        err = up.connect_ex(self._target)
        if err not in (0, errno.EINPROGRESS):
            self._register(link)
            self._end(link)
            return
        # Recorded before any byte can reach gRPC; its local port is bound by now.
        link.internal_peer = grpc_peer(up.getsockname())
        self._peers.add(link.internal_peer, link.real_peer)
        self._register(link)
        self._want(link)

    def _register(self, link: _Link) -> None:
        self._links[link.client.fileno()] = link
        self._links[link.upstream.fileno()] = link

    def _service(self, link: _Link) -> None:
        if link.phase == CONNECTING:
            if link.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._end(link)  # the gRPC server is stopping or gone
                return
            link.phase = OPEN
        up, down = link.up, link.down
        if link.phase == OPEN:
            up.pump()
            down.pump()
            if down.ended or up.broken:
                self._grpc_gone(link)
            elif up.ended or down.broken:
                self._client_gone(link)
        elif link.phase == CLIENT_GONE:
            up.pump()
            if up.broken:
                self._end(link)
                return
            if not up.pending() and not link.wrote_eof:
                link.wrote_eof = True
                with contextlib.suppress(OSError):
                    link.upstream.shutdown(socket.SHUT_WR)
            try:
                while link.upstream.recv(_CHUNK):  # nobody to pass it to
                    pass
                self._end(link)  # gRPC closed in turn
                return
            except BlockingIOError:
                pass
            except OSError:
                self._end(link)
                return
        elif link.phase == GRPC_GONE:
            down.pump()
            if down.broken or not down.pending():
                self._end(link)
                return
        if link.phase != DONE:
            self._want(link)

    def _client_gone(self, link: _Link) -> None:
        # EOF to gRPC (once what the client sent is passed on): gRPC then ends the
        # connection itself, cancelling its calls, before the internal socket goes.
        link.phase = CLIENT_GONE
        link.up.ended = True  # its src, the client's socket, is closed: never read again
        self._close_client(link)
        self._drain(link)
        self._service(link)

    def _grpc_gone(self, link: _Link) -> None:
        link.phase = GRPC_GONE
        link.down.ended = True  # its src, the internal socket, is closed
        self._close_upstream(link)
        self._drain(link)
        self._service(link)

    def _drain(self, link: _Link) -> None:
        link.deadline = time.monotonic() + DRAIN_SECONDS
        self._draining.add(link)

    def _end(self, link: _Link) -> None:
        link.phase = DONE
        self._draining.discard(link)
        self._close_upstream(link)
        self._close_client(link)
        link.up.close()
        link.down.close()

    def _close_client(self, link: _Link) -> None:
        if link.client.fileno() < 0:
            return
        self._forget(link.client.fileno())
        link.client.close()
        loop = link.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
                loop.call_soon_threadsafe(link.connections.discard, link.counted)

    def _close_upstream(self, link: _Link) -> None:
        if link.upstream.fileno() < 0:
            return
        self._forget(link.upstream.fileno())
        # Just before the socket closes: after it, its addresses may be reused.
        self._peers.discard(link.internal_peer)
        link.upstream.close()

    def _forget(self, fd: int) -> None:
        self._links.pop(fd, None)
        if self._masks.pop(fd, 0):
            self._epoll.unregister(fd)

    def _want(self, link: _Link) -> None:
        c = u = 0
        up, down = link.up, link.down
        if link.phase == CONNECTING:
            u = _WRITE
        elif link.phase == OPEN:
            if up.pending():
                u |= _WRITE
            elif not up.ended:
                c |= _READ
            if down.pending():
                c |= _WRITE
            elif not down.ended:
                u |= _READ
        elif link.phase == CLIENT_GONE:
            u = _READ | (_WRITE if up.pending() else 0)
        elif link.phase == GRPC_GONE:
            c = _WRITE
        if link.client.fileno() >= 0:
            self._set(link.client.fileno(), c)
        if link.upstream.fileno() >= 0:
            self._set(link.upstream.fileno(), u)

    def _set(self, fd: int, mask: int) -> None:
        # No interest: unregistered, since epoll reports a hang-up even unasked.
        old = self._masks.get(fd, 0)
        if mask == old:
            return
        if not mask:
            self._epoll.unregister(fd)
            del self._masks[fd]
        else:
            (self._epoll.modify if old else self._epoll.register)(fd, mask)
            self._masks[fd] = mask
