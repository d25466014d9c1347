"""Images from the outside world: fetch one from a URL with hard limits, and decode bytes.

Both are blocking (run them in a worker thread) and both fail with `MediaError`, which
carries the Clarifai status code a caller reports on the input or output concerned.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import ipaddress
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Mapping
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
    except Image.UnidentifiedImageError:
        # Its message names the in-memory file (a Python repr): never shown to callers.
        raise MediaError(
            C.INPUT_INVALID_ARGUMENT, "The bytes are not a decodable image (no known format)."
        ) from None
    except Exception as exc:  # Pillow raises many types for undecodable input
        raise MediaError(
            C.INPUT_INVALID_ARGUMENT, f"The bytes are not a decodable image ({_plain(exc)})."
        ) from None
    return ImageInfo(width, height, fmt, MIME_BY_FORMAT[fmt], mode)


_REPR = re.compile(r"<[^<>]* (?:object )?at 0x[0-9a-fA-F]+>")


def _plain(exc: Exception) -> str:
    """An exception's message for a person: Python reprs (`<... at 0x...>`) cut out."""
    return _REPR.sub("data", str(exc)) or type(exc).__name__


def open_image(data: bytes) -> Image.Image:
    """A loaded Pillow image from bytes `decode_image` has accepted."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def fetch_image(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    allow_private: bool = False,
    connect_to: Mapping[tuple[str, int], tuple[str, int]] | None = None,
) -> bytes:
    """The body of an http(s) URL, at most `max_bytes`, all within `timeout` seconds.

    Follows up to 5 redirects (each checked like the first URL). Unless `allow_private`,
    refuses hosts that resolve to loopback, private, link-local or otherwise internal
    addresses, so a caller cannot make the server probe its own network; the connection
    goes to the address that was checked. https certificates are verified against the URL's
    host name with the system's trust store (OpenSSL's: `SSL_CERT_FILE` replaces it). The
    deadline is total: a server that trickles bytes is cut off when it passes.
    `connect_to` maps a URL's (host, port) to the (host, port) actually connected to, as
    curl's --connect-to: the Host header, SNI and certificate check keep the URL's host.
    """
    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        status, location, body = _get(url, deadline, max_bytes, allow_private, connect_to or {})
        if status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        if status != 200:
            raise MediaError(C.INPUT_DOWNLOAD_FAILED, f"Fetching the URL answered HTTP {status}.")
        return body
    raise MediaError(C.INPUT_DOWNLOAD_FAILED, f"More than {MAX_REDIRECTS} redirects.")


class _Sockets:
    """The sockets of one download, for the watchdog: the TCP socket, then the TLS socket
    that takes its file descriptor over. Once the deadline has passed, a socket registered
    later is shut down at once (the watchdog may fire between the two)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = False

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self._expired:
                _shutdown(sock)

    def expire(self) -> None:
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def set_timeout(self, seconds: float) -> None:
        with self._lock:
            for sock in self._sockets:
                if sock.fileno() != -1:  # the TCP socket is detached once TLS wraps it
                    sock.settimeout(seconds)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close()


def _shutdown(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for a TLS socket: no TLS close_notify exchange,
    # just the file descriptor, which ends a read blocked in another thread.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to an address chosen beforehand; with `tls`, the certificate is verified
    against `host` (the URL's), never against the address."""

    def __init__(
        self,
        host: str,
        port: int,
        address: tuple[str, int],
        tls: ssl.SSLContext | None,
        sockets: _Sockets,
        timeout: float,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.default_port = 443 if tls else 80  # the Host header omits the scheme's port
        self._address = address
        self._tls = tls
        self._sockets = sockets

    def connect(self) -> None:
        sock = socket.create_connection(self._address, self.timeout)
        self._sockets.watch(sock)
        if self._tls is not None:
            # The handshake starts only once the TLS socket is watched: a server stalling
            # the handshake is cut off at the deadline like one stalling its body.
            sock = self._tls.wrap_socket(
                sock, server_hostname=self.host, do_handshake_on_connect=False
            )
            self._sockets.watch(sock)
            sock.do_handshake()
        self.sock = sock


def _get(
    url: str,
    deadline: float,
    max_bytes: int,
    allow_private: bool,
    connect_to: Mapping[tuple[str, int], tuple[str, int]],
):
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
    target_host, target_port = connect_to.get((host.lower(), port), (host, port))
    address = _resolve(target_host, target_port, allow_private)
    sockets = _Sockets()
    tls = ssl.create_default_context() if scheme == "https" else None
    connection = _PinnedConnection(
        host, port, (address, target_port), tls, sockets, _remaining(deadline)
    )
    # Shutting the socket down from a timer ends any read still blocked at the deadline
    # (a server trickling its headers byte by byte defeats per-read timeouts).
    watchdog = threading.Timer(_remaining(deadline), sockets.expire)
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
            sockets.set_timeout(_remaining(deadline))
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
    except ssl.SSLCertVerificationError as exc:
        raise MediaError(
            C.INPUT_DOWNLOAD_FAILED,
            f"The certificate of '{host}' is not trusted: {exc.verify_message.rstrip('.')}.",
        ) from None
    except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
        if time.monotonic() >= deadline:
            raise _timed_out() from None
        raise MediaError(
            C.INPUT_DOWNLOAD_FAILED, f"Fetching the URL failed: {_plain(exc)}."
        ) from None
    finally:
        watchdog.cancel()
        connection.close()
        sockets.close()


def _resolve(host: str, port: int, allow_private: bool) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise MediaError(C.INPUT_DOWNLOAD_FAILED, f"Cannot resolve host '{host}'.") from None
    addresses = [info[4][0] for info in infos]
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise MediaError(
                    C.INPUT_INVALID_URL,
                    f"'{host}' resolves to a non-public address; such URLs are not fetched.",
                )
    return addresses[0]


# NAT64's well-known prefix (RFC 6052): the last 32 bits are an IPv4 address a NAT64
# gateway connects to. Its local-use prefix (RFC 8215) may embed anywhere: never public.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def is_public_address(address: str) -> bool:
    """Whether a URL fetch may connect to `address` (an IP address as text; a scope
    suffix `%eth0` is ignored). An IPv6 address embedding an IPv4 one (IPv4-mapped
    `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) reaches that
    IPv4 address, so it is judged as it."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return embedded.is_global
    return ip.is_global


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    value = int(ip)
    # ::/96 but for :: and ::1 (IPv4-compatible, deprecated yet still routed by some stacks)
    if ip in _NAT64 or (value >> 32 == 0 and value > 1):
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


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
