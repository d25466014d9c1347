"""Listening sockets bound before a server takes them (the HTTP port, the metrics port, the
ports a supervisor holds for its workers)."""

from __future__ import annotations

import socket


def bind_tcp(host: str, port: int, refused: str, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to `host:port`, not yet listening. SO_REUSEADDR: a TIME_WAIT
    connection owns no port; `reuse_port`: other processes bind the same port. An address
    taken raises OSError `{refused} host:port: reason`, the socket closed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listener says so, and without it Nagle holds each response body for ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"{refused} {host}:{port}: {exc.strerror}") from None
    return sock
