"""media: decoding bytes and fetching URLs with hard limits, without a scopegate server."""

from __future__ import annotations

import io
import time

import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as C
from PIL import Image

from scopegate.media import MediaError, decode_image, fetch_image
from tests.support.images import image_server, jpeg_bytes, png_bytes

LIMITS = {"max_bytes": 1024 * 1024, "max_pixels": 10_000_000}


@pytest.fixture(scope="module")
def base_url():
    with image_server() as url:
        yield url


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


def test_refuses_internal_addresses_unless_allowed(base_url):
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


def test_http_errors_fail(base_url):
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
