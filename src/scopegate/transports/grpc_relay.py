"""Relaying plaintext one-port gRPC connections off the event loop and out of the server's
process: a relay process (`python -m scopegate.transports.grpc_relay`, one per serving
process, started with the first such connection) moves the bytes socket → kernel pipe →
socket with `os.splice`. In a thread of the server's own process the relay handed the
interpreter lock back and forth with the handlers several times per call (benchmark 7: a
fifth of a call's CPU); a process of its own never waits for it.

The server keeps what it must answer for: it opens the internal connection to gRPC and
records its real peer before any byte can reach gRPC, and keeps a copy of that socket until
the relay says it closed its own, so the local port cannot be reused while the record still
names it. It passes both descriptors over a Unix socket (SCM_RIGHTS); the relay says when it
closes each side, and the server then drops its record and its place in uvicorn's
`connections`. The guarantees are those of `grpc_pipe.GrpcPipe`: the same flow control,
real-peer record, EOF and close semantics. If the relay process dies, its connections are
dropped and the next connection starts another.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from itertools import count
from typing import Any

from scopegate.transports.grpc_pipe import DRAIN_SECONDS, PipedPeers, grpc_peer

log = logging.getLogger("scopegate.transports.grpc_relay")

_CHUNK = 64 * 1024  # a kernel pipe's default capacity: at most this is held per direction
_SPLICE = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_READ, _WRITE = select.EPOLLIN, select.EPOLLOUT  # type: ignore[attr-defined, unused-ignore]
_TROUBLE = select.EPOLLERR | select.EPOLLHUP  # type: ignore[attr-defined, unused-ignore]
CONNECTING, OPEN, CLIENT_GONE, GRPC_GONE, DONE = range(5)
# Messages on the control socket. Server → relay: a link's id and the bytes already read,
# with the client's and the internal socket's descriptors. Relay → server: which side of
# which link it closed (each side once).
_LINK = struct.Struct("!Q")
CLIENT_CLOSED, GRPC_CLOSED = b"C", b"G"
_MESSAGE_MAX = 256 * 1024


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

    def __init__(self, link_id: int, client: socket.socket, upstream: socket.socket, head: bytes):
        self.id = link_id
        self.client = client
        self.upstream = upstream
        self.phase = CONNECTING
        self.deadline = 0.0
        self.wrote_eof = False
        c, u = client.fileno(), upstream.fileno()
        self.up = _Flow(c, u, head)
        self.down = _Flow(u, c, b"")


class _Held:
    """What the server keeps of a relayed link until the relay closes its sides."""

    __slots__ = ("connections", "counted", "internal_peer", "upstream")

    def __init__(self, upstream: socket.socket, internal_peer: str, connections: set[Any]):
        self.upstream = upstream  # a copy: holds the local port while the peer is recorded
        self.internal_peer = internal_peer
        self.connections = connections
        self.counted = _Counted()


class SpliceRelay:
    """The server's side: hands plaintext piped connections to the relay process, with the
    guarantees of `GrpcPipe`: the same flow control, EOF and close semantics, peer record
    and place in uvicorn's `connections`. Used on the event loop only."""

    def __init__(self, target: tuple[str, int], peers: PipedPeers) -> None:
        self._target = target
        self._peers = peers
        self._ids = count(1)
        self._held: dict[int, _Held] = {}
        self._control: socket.socket | None = None
        self._process: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def take(
        self,
        transport: asyncio.Transport,
        first_bytes: bytes,
        connections: set[Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Take a plaintext connection over from the event loop (called on the loop)."""
        client = transport.get_extra_info("socket").dup()  # keeps it open past the transport
        real_peer = grpc_peer(transport.get_extra_info("peername"))
        transport.abort()  # closes only the loop's descriptor: nothing is sent
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with client:  # ours: the relay gets its own copy of the descriptor
            upstream.setblocking(False)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if upstream.connect_ex(self._target) not in (0, errno.EINPROGRESS):
                upstream.close()  # the gRPC server is stopping or gone
                return
            # Recorded before any byte can reach gRPC; its local port is bound by now.
            internal_peer = grpc_peer(upstream.getsockname())
            self._peers.add(internal_peer, real_peer)
            link_id = next(self._ids)
            held = self._held[link_id] = _Held(upstream, internal_peer, connections)
            connections.add(held.counted)
            message = _LINK.pack(link_id) + first_bytes
            fds = [client.fileno(), upstream.fileno()]
            try:
                try:
                    socket.send_fds(self._relay(loop), [message], fds)
                except (BrokenPipeError, ConnectionError):  # it died before we heard: again
                    self._relay_gone()
                    socket.send_fds(self._relay(loop), [message], fds)
            except OSError as exc:  # no relay process, or its queue is full: drop this one
                log.warning("one-port gRPC: cannot hand a connection to the relay: %s", exc)
                self._release(link_id, client=True, grpc=True)

    def _relay(self, loop: asyncio.AbstractEventLoop) -> socket.socket:
        """The control socket of a running relay process, started if there is none."""
        if self._control is not None:
            return self._control
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "scopegate.transports.grpc_relay", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # it prints nothing; a crash still reaches stderr
            )
        ours.setblocking(False)
        loop.add_reader(ours.fileno(), self._on_message)
        self._control, self._loop = ours, loop
        return ours

    def _on_message(self) -> None:
        control = self._control
        assert control is not None
        while True:
            try:
                message = control.recv(64)
            except BlockingIOError:
                return
            except OSError:
                message = b""
            if not message:  # the relay process is gone: so are its connections
                self._relay_gone()
                return
            side, link_id = message[:1], _LINK.unpack_from(message, 1)[0]
            self._release(link_id, client=side == CLIENT_CLOSED, grpc=side == GRPC_CLOSED)

    def _release(self, link_id: int, *, client: bool = False, grpc: bool = False) -> None:
        """The relay closed the client's side (`client`: the connection leaves uvicorn's
        `connections`) or the internal one (`grpc`: the record and our copy go)."""
        held = self._held.get(link_id)
        if held is None:
            return
        if grpc and held.upstream.fileno() >= 0:
            # Just before our copy closes: after it, its port may be reused.
            self._peers.discard(held.internal_peer)
            held.upstream.close()
        if client:
            held.connections.discard(held.counted)
        if held.upstream.fileno() < 0 and held.counted not in held.connections:
            del self._held[link_id]

    def _relay_gone(self) -> None:
        if self._control is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._control.fileno())
        self._control.close()
        self._control = None
        if self._process is not None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self._process.wait(1)
            self._process = None
        log.warning(
            "one-port gRPC: the relay process ended; %d connections dropped", len(self._held)
        )
        for link_id in list(self._held):
            self._release(link_id, client=True, grpc=True)


class RelayEngine:
    """The relay process: links from the control socket, bytes moved with `os.splice`,
    and word of each closed side sent back."""

    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._epoll = select.epoll()  # type: ignore[attr-defined, unused-ignore]
        self._epoll.register(control.fileno(), _READ)
        self._links: dict[int, _Link] = {}  # by both of its fds
        self._masks: dict[int, int] = {}
        self._draining: set[_Link] = set()

    def run(self) -> None:
        control_fd = self._control.fileno()
        while True:
            timeout = -1.0
            if self._draining:
                timeout = max(0.0, min(k.deadline for k in self._draining) - time.monotonic())
            for fd, events in self._epoll.poll(timeout):
                if fd == control_fd:
                    if not self._receive():
                        return  # the server is gone: so is everything relayed for it
                    continue
                ready = self._links.get(fd)
                if ready is None:
                    continue
                if ready.phase == OPEN and not events & _TROUBLE:
                    self._moved(ready, fd, events)
                else:
                    self._service(ready)
            if self._draining:
                now = time.monotonic()
                for link in [k for k in self._draining if k.deadline <= now]:
                    self._end(link)  # its far side did not let it finish: abort

    def _receive(self) -> bool:
        """New links from the server; False once it has closed the control socket."""
        message, fds, _, _ = socket.recv_fds(self._control, _MESSAGE_MAX, 2)
        if not message:
            return False
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return True
        client = socket.socket(fileno=fds[0])
        upstream = socket.socket(fileno=fds[1])
        client.setblocking(False)
        upstream.setblocking(False)
        link = _Link(_LINK.unpack_from(message)[0], client, upstream, message[_LINK.size :])
        self._register(link)
        self._want(link)  # connecting: its first writable event says how that went
        return True

    def _tell(self, side: bytes, link: _Link) -> None:
        with contextlib.suppress(OSError):  # the server is gone: nobody to tell
            self._control.send(side + _LINK.pack(link.id))

    def _register(self, link: _Link) -> None:
        self._links[link.client.fileno()] = link
        self._links[link.upstream.fileno()] = link

    def _moved(self, link: _Link, fd: int, events: int) -> None:
        """An open link's readiness: only the direction it concerns is pumped (the other
        would try a read that cannot succeed, a wasted call each time)."""
        up, down = link.up, link.down
        if fd == up.src:  # the client's socket
            if events & _READ:
                up.pump()
            if events & _WRITE:
                down.pump()
        else:
            if events & _READ:
                down.pump()
            if events & _WRITE:
                up.pump()
        if not self._side_gone(link):
            self._want(link)

    def _side_gone(self, link: _Link) -> bool:
        """An open link one of whose sides ended or failed: it starts closing, and True."""
        up, down = link.up, link.down
        if down.ended or up.broken:
            self._grpc_gone(link)
        elif up.ended or down.broken:
            self._client_gone(link)
        else:
            return False
        return True

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
            self._side_gone(link)
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
        self._close(link, link.client, CLIENT_CLOSED)

    def _close_upstream(self, link: _Link) -> None:
        self._close(link, link.upstream, GRPC_CLOSED)

    def _close(self, link: _Link, side: socket.socket, word: bytes) -> None:
        """Closes one side (once) and tells the server, which keeps records of each."""
        if side.fileno() < 0:
            return
        self._forget(side.fileno())
        side.close()
        self._tell(word, link)

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


def main(argv: list[str]) -> int:
    """The relay process: `python -m scopegate.transports.grpc_relay CONTROL_FD`."""
    # A Ctrl-C or SIGTERM sent to the server's process group is the server's to act on: the
    # relay keeps its connections through the graceful stop and ends with the server
    # (its control socket's end of file).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    control = socket.socket(fileno=int(argv[0]))
    control.setblocking(True)
    RelayEngine(control).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
