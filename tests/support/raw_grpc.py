"""A bare HTTP/2 gRPC client over one socket, for what the official clients will not do:
stop reading while the server still has answers to send. It opens every flow-control
window to the maximum, so only the socket itself can hold the server back.

Headers go out as HPACK literals without indexing (no Huffman, no table); the answers'
headers are not decoded: a call's answer is its DATA (one gRPC message) and its end is
the trailers' END_STREAM.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
LARGEST_WINDOW = 2**31 - 1
INITIAL_WINDOW_SIZE = 0x4


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return (
        struct.pack("!I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack("!I", stream)
        + payload
    )


def _literal(name: str, value: str) -> bytes:
    """An HPACK literal header field without indexing, with a literal name."""
    out = bytearray(b"\x00")
    for text in (name.encode(), value.encode()):
        assert len(text) < 127, "longer strings need HPACK's multi-byte lengths"
        out += bytes([len(text)]) + text
    return bytes(out)


class RawGrpc:
    """One HTTP/2 connection; `call` sends requests, `read_answers` collects them."""

    def __init__(
        self,
        address: tuple[str, int],
        receive_buffer: int | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        raw = socket.socket()
        if receive_buffer:  # before connecting: the window the kernel offers follows it
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        raw.settimeout(30)
        raw.connect(address)
        self.sock: socket.socket = raw
        if tls is not None:  # h2 by ALPN, as a gRPC client over TLS offers it
            tls.set_alpn_protocols(["h2"])
            self.sock = tls.wrap_socket(raw, server_hostname="localhost")
        self._next_stream = 1
        settings = struct.pack("!HI", INITIAL_WINDOW_SIZE, LARGEST_WINDOW)
        opening = struct.pack("!I", LARGEST_WINDOW - 65535)
        self.sock.sendall(
            PREFACE + _frame(SETTINGS, 0, 0, settings) + _frame(WINDOW_UPDATE, 0, 0, opening)
        )
        self._buffer = bytearray()

    def call(self, path: str, message: bytes, metadata: dict[str, str]) -> int:
        stream, self._next_stream = self._next_stream, self._next_stream + 2
        fields = {
            ":method": "POST",
            ":scheme": "http",
            ":path": path,
            ":authority": "127.0.0.1",
            "content-type": "application/grpc",
            "te": "trailers",
            **metadata,
        }
        block = b"".join(_literal(name, value) for name, value in fields.items())
        body = b"\x00" + struct.pack("!I", len(message)) + message
        self.sock.sendall(
            _frame(HEADERS, END_HEADERS, stream, block) + _frame(DATA, END_STREAM, stream, body)
        )
        return stream

    def read_answers(self, streams: set[int], patience: float) -> dict[int, bytes]:
        """Each stream's answer message, read until every stream has ended."""
        data: dict[int, bytearray] = {s: bytearray() for s in streams}
        open_streams = set(streams)
        deadline = time.monotonic() + patience
        while open_streams:
            assert time.monotonic() < deadline, f"{len(open_streams)} calls never ended"
            kind, flags, stream, payload = self._read_frame()
            if kind == DATA and stream in data:
                data[stream] += payload
            elif kind == SETTINGS and not flags & ACK:
                self.sock.sendall(_frame(SETTINGS, ACK, 0, b""))
            elif kind == PING and not flags & ACK:
                self.sock.sendall(_frame(PING, ACK, 0, payload))
            elif kind == GOAWAY:
                raise AssertionError(f"the server ended the connection: {payload!r}")
            if flags & END_STREAM and kind in (DATA, HEADERS):
                open_streams.discard(stream)
        answers = {}
        for stream, raw in data.items():
            assert len(raw) >= 5 and raw[0] == 0, f"stream {stream}: {len(raw)} bytes"
            (size,) = struct.unpack_from("!I", raw, 1)
            assert len(raw) == 5 + size, f"stream {stream}: {len(raw)} bytes for {size}"
            answers[stream] = bytes(raw[5:])
        return answers

    def _read_frame(self) -> tuple[int, int, int, bytes]:
        header = self._read(9)
        size = int.from_bytes(header[:3], "big")
        stream = struct.unpack_from("!I", header, 5)[0] & 0x7FFFFFFF
        return header[3], header[4], stream, self._read(size)

    def _read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self._buffer += chunk
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def close(self) -> None:
        self.sock.close()
