"""Small real images, and local HTTP and HTTPS servers that serve them (and misbehave on
demand)."""

from __future__ import annotations

import io
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

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
    /to?url=<url>      302 to that URL           /metro-north.jpg  a red JPEG (the seeds' name)
    /rgb/<rrggbb>.png  a 32x32 PNG of that colour
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
        with suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self._answer(self.path.split("?")[0])

    def _answer(self, path: str) -> None:
        if path.startswith("/img/") and path.endswith(".png"):
            width, height = (int(n) for n in path[5:-4].split("x"))
            self._send(png_bytes(width, height), "image/png")
        elif path.startswith("/rgb/") and path.endswith(".png") and len(path) == 15:
            rgb = tuple(int(path[5 + i : 7 + i], 16) for i in (0, 2, 4))
            self._send(png_bytes(32, 32, rgb), "image/png")
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
        elif path == "/metro-north.jpg":
            self._send(jpeg_bytes(40, 30, (200, 30, 30)), "image/jpeg")
        elif path == "/to":
            self.send_response(302)
            self.send_header("Location", parse_qs(urlsplit(self.path).query)["url"][0])
            self.end_headers()
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/img/5x5.png")
            self.end_headers()
        else:
            self.send_error(404)


@contextmanager
def image_server(tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A loopback HTTP server in a thread, HTTPS with a `tls` server context; yields its
    base URL (http://127.0.0.1:<port>, or https://)."""
    yield from _serve(_Handler, tls)


@contextmanager
def gated_image_server() -> Iterator[tuple[str, threading.Event]]:
    """Like `image_server`, with its own gate for /gated.png: (base URL, gate)."""
    handler = type("GatedHandler", (_Handler,), {"gate": threading.Event()})
    for url in _serve(handler):
        yield url, handler.gate


class _TLSServer(ThreadingHTTPServer):
    """HTTPS: each accepted connection is wrapped, its handshake done in its own thread
    (a client refusing the certificate fails only its own request, quietly)."""

    context: ssl.SSLContext

    def get_request(self):
        sock, address = super().get_request()
        return self.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ), address

    def handle_error(self, request, client_address) -> None:
        pass  # refused certificates and hang-ups are what the tests provoke


def _serve(handler, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    server_type = _TLSServer if tls else ThreadingHTTPServer
    server = server_type(("127.0.0.1", 0), handler)
    if tls:
        server.context = tls
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# The seeds' snippet fetches https://samples.clarifai.com/metro-north.jpg: test servers
# connect that host's port 443 to `HttpsImageHosts.base` (SCOPEGATE_FETCH_CONNECT_TO).
SEED_IMAGE_HOST = "samples.clarifai.com"


@dataclass(frozen=True)
class HttpsImageHosts:
    """HTTPS image servers on loopback: `base` with a certificate from the test CA `ca`
    (for 127.0.0.1, localhost and SEED_IMAGE_HOST), and three a client must refuse."""

    ca: Path
    base: str
    wrong_name: str  # the test CA's certificate, for another host name only
    untrusted: str  # a certificate from a CA nobody trusts
    expired: str  # the test CA's certificate for 127.0.0.1, expired yesterday

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def server_env(self) -> dict[str, str]:
        """What a scopegate server needs to fetch from these: trust the test CA, and
        reach SEED_IMAGE_HOST at `base`."""
        return {
            "SSL_CERT_FILE": str(self.ca),
            "SCOPEGATE_FETCH_CONNECT_TO": f"{SEED_IMAGE_HOST}:443:127.0.0.1:{self.port}",
        }


@contextmanager
def https_image_hosts(directory: Path) -> Iterator[HttpsImageHosts]:
    from tests.support.tls import certificate_authority, server_context, signed_by

    ca = certificate_authority(directory, "ca")
    stranger = certificate_authority(directory, "stranger-ca")
    good = signed_by(ca, directory, "good", ("127.0.0.1", "localhost", SEED_IMAGE_HOST))
    wrong = signed_by(ca, directory, "wrong-name", ("images.example.org",))
    untrusted = signed_by(stranger, directory, "untrusted", ("127.0.0.1",))
    expired = signed_by(ca, directory, "expired", ("127.0.0.1",), expired=True)
    with ExitStack() as stack:
        bases = [
            stack.enter_context(image_server(server_context(certificate)))
            for certificate in (good, wrong, untrusted, expired)
        ]
        yield HttpsImageHosts(ca.cert, *bases)
