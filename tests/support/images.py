"""Small real images, and a local HTTP server that serves them (and misbehaves on demand)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def png_bytes(width: int = 4, height: int = 3, color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int = 8, height: int = 8, color=(10, 120, 240)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="JPEG")
    return buffer.getvalue()


class _Handler(BaseHTTPRequestHandler):
    """Routes:
    /img/<w>x<h>.png   a PNG of that size        /text         text/plain, not an image
    /big               2 MiB of PNG-ish bytes    /slow         headers, then 10 s of silence
    /trickle           one byte every 0.2 s      /redirect     302 to /img/5x5.png
    /gated.png         a 3x3 PNG once `gate` is set (waits up to 30 s)
    anything else      404
    """

    gate = threading.Event()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        # The downloader hangs up mid-body where the limit tests mean it to.
        with suppress(BrokenPipeError, ConnectionResetError):
            self._answer(self.path.split("?")[0])

    def _answer(self, path: str) -> None:
        if path.startswith("/img/") and path.endswith(".png"):
            width, height = (int(n) for n in path[5:-4].split("x"))
            self._send(png_bytes(width, height), "image/png")
        elif path == "/text":
            self._send(b"hello, not an image", "text/plain")
        elif path == "/big":
            self._send(png_bytes() + b"\0" * (2 * 1024 * 1024), "image/png")
        elif path == "/big-chunked":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the cap must hold while streaming
            for _ in range(64):
                self.wfile.write(b"\0" * 65536)
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.flush()
            time.sleep(10)
        elif path == "/trickle":
            self.send_response(200)
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        elif path == "/gated.png":
            if self.gate.wait(30):
                self._send(png_bytes(3, 3), "image/png")
            else:
                self.send_error(503)
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/img/5x5.png")
            self.end_headers()
        else:
            self.send_error(404)


@contextmanager
def image_server() -> Iterator[str]:
    """A loopback HTTP server in a thread; yields its base URL."""
    yield from _serve(_Handler)


@contextmanager
def gated_image_server() -> Iterator[tuple[str, threading.Event]]:
    """Like `image_server`, with its own gate for /gated.png: (base URL, gate)."""
    handler = type("GatedHandler", (_Handler,), {"gate": threading.Event()})
    for url in _serve(handler):
        yield url, handler.gate


def _serve(handler) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
