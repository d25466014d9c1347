"""media: decoding bytes and fetching URLs with hard limits, without a scopegate server."""

from __future__ import annotations

import io
import time
from urllib.parse import quote

import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as C
from PIL import Image

from scopegate.media.images import MediaError, decode_image, fetch_image, is_public_address
from scopegate.server.config import parse_connect_to
from tests.support.images import https_image_hosts, image_server, jpeg_bytes, png_bytes
from tests.support.tls import openssl_missing

LIMITS = {"max_bytes": 1024 * 1024, "max_pixels": 10_000_000}


@pytest.fixture(scope="module")
def http_url():
    with image_server() as url:
        yield url


@pytest.fixture(scope="module")
def https_hosts(tmp_path_factory):
    if openssl_missing():
        pytest.skip(openssl_missing())
    with https_image_hosts(tmp_path_factory.mktemp("https-images")) as hosts:
        yield hosts


@pytest.fixture
def trust_test_ca(https_hosts, monkeypatch):
    # As a server is told to trust a private CA: OpenSSL's SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(https_hosts.ca))
    return https_hosts


@pytest.fixture(params=["http", "https"])
def base_url(request):
    """The image server's base URL, over plain HTTP and over HTTPS from the test CA."""
    if request.param == "http":
        return request.getfixturevalue("http_url")
    return request.getfixturevalue("trust_test_ca").base


def fetch(url: str, **kwargs) -> bytes:
    options = {"max_bytes": 1024 * 1024, "timeout": 3.0, "allow_private": True, **kwargs}
    return fetch_image(url, **options)


def test_decodes_png_and_jpeg():
    info = decode_image(png_bytes(7, 5), **LIMITS)
    assert (info.width, info.height, info.format, info.mime) == (7, 5, "PNG", "image/png")
    assert decode_image(jpeg_bytes(), **LIMITS).mime == "image/jpeg"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", C.INPUT_INVALID_ARGUMENT),
        (b"definitely not an image", C.INPUT_INVALID_ARGUMENT),
        (png_bytes(50, 50)[:60], C.INPUT_INVALID_ARGUMENT),  # truncated
    ],
)
def test_refuses_undecodable_bytes(data, code):
    with pytest.raises(MediaError) as caught:
        decode_image(data, **LIMITS)
    assert caught.value.code == code
    assert caught.value.reason


def test_refuses_oversized_bytes_and_pixel_counts():
    with pytest.raises(MediaError) as caught:
        decode_image(png_bytes(), max_bytes=10, max_pixels=100)
    assert caught.value.code == C.INPUT_OVER_LIMIT and "limit is 10 bytes" in caught.value.reason
    with pytest.raises(MediaError) as caught:
        decode_image(png_bytes(20, 20), max_bytes=10**6, max_pixels=100)
    assert caught.value.code == C.INPUT_OVER_LIMIT and "20x20" in caught.value.reason


def test_refuses_formats_that_are_not_photos():
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="PPM")
    with pytest.raises(MediaError) as caught:
        decode_image(buffer.getvalue(), **LIMITS)
    assert caught.value.code == C.INPUT_UNSUPPORTED_FORMAT


def test_fetches_and_follows_redirects(base_url):
    assert decode_image(fetch(f"{base_url}/img/3x2.png"), **LIMITS).width == 3
    assert decode_image(fetch(f"{base_url}/redirect"), **LIMITS).width == 5


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "nothing"])
def test_refuses_other_schemes(url):
    with pytest.raises(MediaError) as caught:
        fetch(url)
    assert caught.value.code == C.INPUT_INVALID_URL
    assert "http and https" in caught.value.reason


def test_refuses_internal_addresses_unless_allowed(http_url):
    base_url = http_url
    with pytest.raises(MediaError) as caught:
        fetch(f"{base_url}/img/3x2.png", allow_private=False)
    assert caught.value.code == C.INPUT_INVALID_URL
    assert "non-public" in caught.value.reason


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_caps_the_size(base_url, path):
    with pytest.raises(MediaError) as caught:
        fetch(f"{base_url}{path}")
    assert caught.value.code == C.INPUT_DOWNLOAD_FAILED
    assert "larger than" in caught.value.reason


def test_http_errors_fail(http_url):
    base_url = http_url
    with pytest.raises(MediaError) as caught:
        fetch(f"{base_url}/missing.png")
    assert caught.value.code == C.INPUT_DOWNLOAD_FAILED and "404" in caught.value.reason


@pytest.mark.parametrize("path", ["/slow", "/trickle"])
def test_total_deadline(base_url, path):
    started = time.monotonic()
    with pytest.raises(MediaError) as caught:
        fetch(f"{base_url}{path}", timeout=1.0)
    assert time.monotonic() - started < 2.5
    assert caught.value.code == C.INPUT_DOWNLOAD_FAILED
    assert "longer than allowed" in caught.value.reason


def test_unreachable_host_fails_cleanly():
    with pytest.raises(MediaError) as caught:
        fetch("http://127.0.0.1:9/x.png", timeout=2.0)
    assert caught.value.code == C.INPUT_DOWNLOAD_FAILED


def test_https_image_fetched_and_checked_against_the_name(trust_test_ca):
    hosts = trust_test_ca
    assert decode_image(fetch(f"{hosts.base}/img/3x2.png"), **LIMITS).width == 3
    host_name = hosts.base.replace("127.0.0.1", "localhost")
    assert decode_image(fetch(f"{host_name}/img/4x2.png"), **LIMITS).width == 4


@pytest.mark.parametrize(
    ("server", "reason"),
    [
        ("wrong_name", "IP address mismatch, certificate is not valid for '127.0.0.1'"),
        ("untrusted", "self-signed certificate in certificate chain"),
        ("expired", "certificate has expired"),
    ],
)
def test_https_certificates_refused(trust_test_ca, server, reason):
    with pytest.raises(MediaError) as caught:
        fetch(f"{getattr(trust_test_ca, server)}/img/3x2.png")
    assert caught.value.code == C.INPUT_DOWNLOAD_FAILED
    assert caught.value.reason == f"The certificate of '127.0.0.1' is not trusted: {reason}."


def test_https_refused_without_the_ca(https_hosts, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(https_hosts.ca.parent / "nothing"))
    with pytest.raises(MediaError) as caught:
        fetch(f"{https_hosts.base}/img/3x2.png")
    assert "is not trusted: self-signed certificate in certificate chain" in caught.value.reason


def test_redirects_from_https_to_http_and_back(trust_test_ca, http_url):
    https = trust_test_ca.base
    back = f"{https}/img/7x2.png"
    url = f"{https}/to?url=" + quote(f"{http_url}/to?url=" + quote(back, safe=""), safe="")
    assert decode_image(fetch(url), **LIMITS).width == 7
    # Each hop is checked again: the http hop to a loopback address is refused.
    with pytest.raises(MediaError) as caught:
        fetch(url, allow_private=False)
    assert caught.value.code == C.INPUT_INVALID_URL
    # ... and the https hop's certificate too.
    bad = f"{https}/to?url=" + quote(f"{trust_test_ca.expired}/img/1x1.png", safe="")
    with pytest.raises(MediaError) as caught:
        fetch(bad)
    assert "certificate has expired" in caught.value.reason


def test_connect_to_keeps_the_urls_host_for_the_certificate(trust_test_ca):
    hosts = trust_test_ca
    routes = parse_connect_to(f"samples.clarifai.com:443:127.0.0.1:{hosts.port}")
    data = fetch("https://samples.clarifai.com/metro-north.jpg", connect_to=routes)
    assert decode_image(data, **LIMITS).format == "JPEG"
    # Connected to the expired server's port, the name is still the one checked.
    expired_port = int(hosts.expired.rsplit(":", 1)[1])
    routes = {("samples.clarifai.com", 443): ("127.0.0.1", expired_port)}
    with pytest.raises(MediaError) as caught:
        fetch("https://samples.clarifai.com/metro-north.jpg", connect_to=routes)
    assert "The certificate of 'samples.clarifai.com' is not trusted" in caught.value.reason
    # Only the named host and port are redirected: the port is part of the key.
    assert parse_connect_to("a.example:80:b.example:8080, [::1]:443:[::1]:8443") == {
        ("a.example", 80): ("b.example", 8080),
        ("::1", 443): ("::1", 8443),
    }
    for bad in ("a.example:443:127.0.0.1", "a:99999:b:1", "a:x:b:1"):
        with pytest.raises(ValueError):
            parse_connect_to(bad)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("2606:4700::1111", True),
        ("::1", False),
        ("::", False),
        ("fe80::1%eth0", False),
        # An IPv6 address embedding an IPv4 one is judged as that IPv4 address.
        ("::ffff:8.8.8.8", True),
        ("::ffff:127.0.0.1", False),
        ("::ffff:192.168.1.1", False),
        ("::8.8.8.8", True),
        ("::127.0.0.1", False),
        ("::10.0.0.1", False),
        ("64:ff9b::8.8.8.8", True),
        ("64:ff9b::127.0.0.1", False),
        ("64:ff9b::169.254.169.254", False),
        ("64:ff9b:1::8.8.8.8", False),  # local-use NAT64: where it embeds is local policy
    ],
)
def test_address_classification(address, public):
    assert is_public_address(address) is public


def test_undecodable_bytes_name_no_python_object():
    with pytest.raises(MediaError) as caught:
        decode_image(b"hello, not an image", **LIMITS)
    assert caught.value.reason == "The bytes are not a decodable image (no known format)."
    assert " at 0x" not in caught.value.reason
