"""Limits on images received as bytes or fetched from URLs; read from the environment by
`scopegate.server.config`, which sits above every user of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MediaSettings:
    """Limits on images received as bytes or fetched from URLs (inputs, predict)."""

    # Largest image accepted, as bytes sent or downloaded (SCOPEGATE_MAX_IMAGE_BYTES).
    max_image_bytes: int = 10 * 1024 * 1024
    # Largest width x height decoded (SCOPEGATE_MAX_IMAGE_PIXELS): refuses decompression bombs.
    max_image_pixels: int = 40_000_000
    # Total time allowed for one URL fetch (SCOPEGATE_FETCH_TIMEOUT_SECONDS).
    fetch_timeout: float = 10.0
    # Fetch URLs whose host is loopback or private (SCOPEGATE_FETCH_PRIVATE_HOSTS=1); off by
    # default so API callers cannot make the server probe its own network.
    fetch_private_hosts: bool = False
    # URL (host, port) -> (host, port) connected to instead, as curl's --connect-to
    # (SCOPEGATE_FETCH_CONNECT_TO="HOST1:PORT1:HOST2:PORT2,..."): an image host served from
    # elsewhere (a mirror, a test server) without editing URLs; certificates are still
    # checked against HOST1, and HOST2's addresses like any other.
    fetch_connect_to: Mapping[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    # Background URL downloads at a time (SCOPEGATE_DOWNLOAD_WORKERS).
    download_workers: int = 4
