"""Images from the outside world: fetch one from a URL with hard limits, and decode bytes.

Both are blocking (run them in a worker thread) and both fail with `MediaError`, which
carries the Clarifai status code a caller reports on the input or output concerned.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import ipaddress
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from clarifai_grpc.grpc.api.status import status_code_pb2
from PIL import Image

C = status_code_pb2

MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
# Formats Pillow decodes that are images people send; anything else is refused.
MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


class MediaError(Exception):
    """Why an image could not be had: a Clarifai status code and a sentence for a person."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImageInfo:
    width: int
    height: int
    format: str  # Pillow's name: "PNG", "JPEG", ...
    mime: str
    mode: str  # colour mode: "RGB", "L", "RGBA", ...


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Check that `data` is a whole image we accept; its size and format.

    Refuses (MediaError) empty or oversized bytes, unknown formats, images over
    `max_pixels` (a decompression bomb is refused before its pixels are allocated) and
    truncated or corrupt files (the pixels are fully decoded once).
    """
    if not data:
        raise MediaError(C.INPUT_INVALID_ARGUMENT, "The image is empty (0 bytes).")
    if len(data) > max_bytes:
        raise MediaError(
            C.INPUT_OVER_LIMIT,
            f"The image is {len(data)} bytes; the limit is {max_bytes} bytes.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format or ""
                width, height = image.size
                if width * height > max_pixels:
                    raise MediaError(
                        C.INPUT_OVER_LIMIT,
                        f"The image is {width}x{height} pixels; the limit is {max_pixels} pixels.",
                    )
                if fmt not in MIME_BY_FORMAT:
                    raise MediaError(
                        C.INPUT_UNSUPPORTED_FORMAT,
                        f"Unsupported image format {fmt or 'unknown'}: "
                        f"send {', '.join(sorted(MIME_BY_FORMAT))}.",
                    )
                image.load()  # decode every pixel: catches truncated and corrupt files
                mode = image.mode
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError(C.INPUT_OVER_LIMIT, "The image has too many pixels.") from None
    except Exception as exc:  # Pillow raises many types for undecodable input
        raise MediaError(
            C.INPUT_INVALID_ARGUMENT, f"The bytes are not a decodable image ({exc})."
        ) from None
    return ImageInfo(width, height, fmt, MIME_BY_FORMAT[fmt], mode)


def open_image(data: bytes) -> Image.Image:
    """A loaded Pillow image from bytes `decode_image` has accepted."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def fetch_image(url: str, *, max_bytes: int, timeout: float, allow_private: bool = False) -> bytes:
    """The body of an http(s) URL, at most `max_bytes`, all within `timeout` seconds.

    Follows up to 5 redirects (each checked like the first URL). Unless `allow_private`,
    refuses hosts that resolve to loopback, private, link-local or otherwise internal
    addresses, so a caller cannot make the server probe its own network; the connection
    goes to the address that was checked. The deadline is total: a server that trickles
    bytes is cut off when it passes.
    """
    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        status, location, body = _get(url, deadline, max_bytes, allow_private)
        if status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        if status != 200:
            raise MediaError(C.INPUT_DOWNLOAD_FAILED, f"Fetching the URL answered HTTP {status}.")
        return body
    raise MediaError(C.INPUT_DOWNLOAD_FAILED, f"More than {MAX_REDIRECTS} redirects.")


def _get(url: str, deadline: float, max_bytes: int, allow_private: bool):
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise MediaError(
            C.INPUT_INVALID_URL,
            f"Only http and https URLs can be fetched, not '{scheme or 'no scheme'}'.",
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise MediaError(C.INPUT_INVALID_URL, "The URL's port is not a number.") from None
    if not host:
        raise MediaError(C.INPUT_INVALID_URL, "The URL has no host.")
    port = port or (443 if scheme == "https" else 80)
    address = _resolve(host, port, allow_private)
    connection_type = (
        http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_type(host, port, timeout=_remaining(deadline))

    opened: list[socket.socket] = []

    def connect_to_checked_address(_address, timeout, source_address=None):
        # TLS still verifies the certificate against `host`; only the address is pinned.
        sock = socket.create_connection((address, port), timeout, source_address)
        opened.append(sock)
        return sock

    connection._create_connection = connect_to_checked_address
    # Shutting the socket down from a timer ends any read still blocked at the deadline
    # (a server trickling its headers byte by byte defeats per-read timeouts).
    watchdog = threading.Timer(_remaining(deadline), _shutdown, (opened,))
    watchdog.daemon = True
    watchdog.start()
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request("GET", path, headers={"User-Agent": "scopegate", "Accept": "image/*"})
        response = connection.getresponse()
        if response.status in (301, 302, 303, 307, 308):
            return response.status, response.getheader("Location"), b""
        if response.status != 200:
            return response.status, None, b""
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(max_bytes)
        body = bytearray()
        while True:
            for sock in opened:
                sock.settimeout(_remaining(deadline))
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(max_bytes)
        # The watchdog ends a late read as an early end of file: that is a timeout.
        _remaining(deadline)
        if declared and declared.isdigit() and len(body) < int(declared):
            raise MediaError(C.INPUT_DOWNLOAD_FAILED, "The URL's content ended early.")
        return 200, None, bytes(body)
    except MediaError:
        raise
    except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
        if time.monotonic() >= deadline:
            raise _timed_out() from None
        raise MediaError(C.INPUT_DOWNLOAD_FAILED, f"Fetching the URL failed: {exc}.") from None
    finally:
        watchdog.cancel()
        connection.close()


def _shutdown(opened: list[socket.socket]) -> None:
    # The connection may have dropped its reference (HTTP/1.0 answers); the socket is ours.
    for sock in opened:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _resolve(host: str, port: int, allow_private: bool) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise MediaError(C.INPUT_DOWNLOAD_FAILED, f"Cannot resolve host '{host}'.") from None
    addresses = [info[4][0] for info in infos]
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global:
                raise MediaError(
                    C.INPUT_INVALID_URL,
                    f"'{host}' resolves to a non-public address; such URLs are not fetched.",
                )
    return addresses[0]


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out()
    return left


def _timed_out() -> MediaError:
    return MediaError(C.INPUT_DOWNLOAD_FAILED, "Fetching the URL took longer than allowed.")


def _too_large(max_bytes: int) -> MediaError:
    return MediaError(
        C.INPUT_DOWNLOAD_FAILED, f"The URL's content is larger than {max_bytes} bytes."
    )
