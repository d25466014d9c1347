"""Slow and idle HTTP connections are closed, and open connections are capped (slowloris).

The server here gives a request 1 second to arrive and allows 8 connections. No timing
is asserted beyond "closed within a generous bound": each read waits up to 30 seconds.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.request

import pytest

from tests.support.server_process import ServerProcess

MAX_CONNECTIONS = 8
PATIENCE = 30.0  # far past the server's 1-second deadline


# With one port (`serve --port`) every connection first passes the switch between gRPC
# and HTTP (transports/port_switch.py); the same limits must hold there.
@pytest.fixture(scope="module", params=["two ports", "one port"])
def strict_server(request, tmp_path_factory):
    # Connection handling is the HTTP layer's, before any database: SQLite alone is enough.
    process = ServerProcess(
        one_port=request.param == "one port",
        data_dir=tmp_path_factory.mktemp("scopegate-limits"),
        database_url=None,
        extra_env={
            "SCOPEGATE_HTTP_REQUEST_TIMEOUT_SECONDS": "1",
            "SCOPEGATE_HTTP_KEEP_ALIVE_SECONDS": "1",
            "SCOPEGATE_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            "SCOPEGATE_GRPC_MAX_IDLE_SECONDS": "1",
        },
    ).start()
    yield process
    assert process.stop() == 0, process.log()


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=PATIENCE)
    sock.settimeout(PATIENCE)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """All the server sends until it closes (or resets: it may close with our bytes unread);
    a socket.timeout fails the test."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_partial_request_line_is_answered_408_and_closed(strict_server):
    with connect(strict_server) as sock:
        sock.sendall(b"GET /healthz HT")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_partial_headers_are_answered_408_and_closed(strict_server):
    with connect(strict_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_a_connection_that_sends_nothing_is_closed(strict_server):
    with connect(strict_server) as sock:
        assert read_until_closed(sock) == b""


def test_a_stalled_http2_preface_is_closed(strict_server):
    """Part of the HTTP/2 preface, then nothing: on one port the switch is still waiting
    to see gRPC or HTTP, and closes the connection at the request deadline."""
    with connect(strict_server) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n")
        answer = read_until_closed(sock)
    assert answer == b"" or answer.startswith((b"HTTP/1.1 408 ", b"HTTP/1.1 400 ")), answer


def test_a_stalled_body_is_closed(strict_server):
    with connect(strict_server) as sock:
        sock.sendall(
            b"POST /v2/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b'content-length: 100\r\n\r\n{"email"'
        )
        answer = read_until_closed(sock)
    assert b" 200 " not in answer.partition(b"\r\n")[0]


def test_an_idle_keep_alive_connection_is_closed(strict_server):
    with connect(strict_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"status":"ok"}')


def test_a_huge_head_is_refused(strict_server):
    with connect(strict_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        with contextlib.suppress(OSError):  # the server may close while we still send
            for _ in range(64):
                sock.sendall(b"x-filler: " + b"a" * 4096 + b"\r\n")
        answer = read_until_closed(sock)  # closed, with a 431 unless reset first
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer


def test_connections_beyond_the_limit_are_answered_503(strict_server):
    url = f"{strict_server.http_url}/healthz"
    held = [connect(strict_server) for _ in range(MAX_CONNECTIONS)]
    try:
        # Each held connection has started a request, so none is closed as idle for a
        # second; the server counts them all while it answers ours.
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=PATIENCE)
        assert refused.value.code == 503
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, requests are served again.
    for _ in range(int(PATIENCE * 10)):
        try:
            with urllib.request.urlopen(url, timeout=PATIENCE) as reply:
                assert reply.status == 200
                break
        except urllib.error.HTTPError as error:
            assert error.code == 503
    else:
        pytest.fail("still refused after the held connections closed")


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
GOAWAY = 0x07


def frame_types_until(sock: socket.socket, wanted: int) -> list[int]:
    """HTTP/2 frame types the server sends, until `wanted` arrives or it closes."""
    buffer, types = b"", []
    with contextlib.suppress(ConnectionResetError):
        while wanted not in types and (chunk := sock.recv(65536)):
            buffer += chunk
            while len(buffer) >= 9:
                length = int.from_bytes(buffer[:3], "big")
                if len(buffer) < 9 + length:
                    break
                types.append(buffer[3])
                buffer = buffer[9 + length :]
    return types


def test_idle_grpc_connection_is_sent_goaway(strict_server):
    """A gRPC connection with no call for SCOPEGATE_GRPC_MAX_IDLE_SECONDS gets GOAWAY."""
    host, port = strict_server.grpc_address.split(":")
    with socket.create_connection((host, int(port)), timeout=PATIENCE) as sock:
        sock.settimeout(PATIENCE)
        sock.sendall(HTTP2_PREFACE + EMPTY_SETTINGS)
        assert GOAWAY in frame_types_until(sock, GOAWAY)


def test_grpc_connection_that_never_handshakes_is_closed(strict_server):
    host, port = strict_server.grpc_address.split(":")
    with socket.create_connection((host, int(port)), timeout=PATIENCE) as sock:
        sock.settimeout(PATIENCE)
        # Closed (not left open: grpc's default handshake timeout is 2 minutes); grpc core
        # says why in a GOAWAY first (handshake timeout, or idle: both are 1 s here),
        # unless the reset overtakes it.
        answer = read_until_closed(sock)
        assert answer == b"" or answer.endswith((b"handshake timeout", b"idle")), answer
