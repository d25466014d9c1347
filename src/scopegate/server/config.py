"""Where data lives, which ports to use, and the server secret."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scopegate.server.connections import ConnectionSettings, connection_settings
from scopegate.server.tls import TlsFiles, load_tls

SECRET_ENV = "SCOPEGATE_SECRET_KEY"
SECRET_FILE = "server.key"
SESSION_SECONDS_ENV = "SCOPEGATE_SESSION_SECONDS"
AUTH_FAILURE_LIMIT_ENV = "SCOPEGATE_AUTH_FAILURE_LIMIT"
AUTH_FAILURE_WINDOW_ENV = "SCOPEGATE_AUTH_FAILURE_WINDOW_SECONDS"
AUTH_FAILURE_DELAY_ENV = "SCOPEGATE_AUTH_FAILURE_DELAY_SECONDS"
AUTH_FAILURE_LIMIT = 50
AUTH_FAILURE_WINDOW_SECONDS = 60.0
AUTH_FAILURE_DELAY_SECONDS = 1.0
MAX_AUTH_FAILURE_DELAY_SECONDS = 30.0  # a tarpitted request holds its connection this long
MAX_IMAGE_BYTES_ENV = "SCOPEGATE_MAX_IMAGE_BYTES"
MAX_IMAGE_PIXELS_ENV = "SCOPEGATE_MAX_IMAGE_PIXELS"
FETCH_TIMEOUT_ENV = "SCOPEGATE_FETCH_TIMEOUT_SECONDS"
FETCH_PRIVATE_ENV = "SCOPEGATE_FETCH_PRIVATE_HOSTS"
FETCH_CONNECT_TO_ENV = "SCOPEGATE_FETCH_CONNECT_TO"
DOWNLOAD_WORKERS_ENV = "SCOPEGATE_DOWNLOAD_WORKERS"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "scopegate"


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


def _positive(name: str, default: float, kind: type = float):
    raw = os.environ.get(name, "")
    try:
        value = kind(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


def media_settings() -> MediaSettings:
    """Media limits from the environment, defaults where unset."""
    defaults = MediaSettings()
    return MediaSettings(
        max_image_bytes=_positive(MAX_IMAGE_BYTES_ENV, defaults.max_image_bytes, int),
        max_image_pixels=_positive(MAX_IMAGE_PIXELS_ENV, defaults.max_image_pixels, int),
        fetch_timeout=_positive(FETCH_TIMEOUT_ENV, defaults.fetch_timeout),
        fetch_private_hosts=os.environ.get(FETCH_PRIVATE_ENV, "").lower() in ("1", "true", "yes"),
        download_workers=_positive(DOWNLOAD_WORKERS_ENV, defaults.download_workers, int),
        fetch_connect_to=_connect_to(),
    )


def _connect_to() -> dict[tuple[str, int], tuple[str, int]]:
    try:
        return parse_connect_to(os.environ.get(FETCH_CONNECT_TO_ENV, ""))
    except ValueError as exc:
        raise ValueError(f"{FETCH_CONNECT_TO_ENV}: {exc}") from None


def parse_connect_to(text: str) -> dict[tuple[str, int], tuple[str, int]]:
    """`HOST1:PORT1:HOST2:PORT2` entries separated by commas or spaces (curl's --connect-to;
    an IPv6 address in brackets) as {(host1, port1): (host2, port2)}."""
    pairs = {}
    for entry in text.replace(",", " ").split():
        match = _CONNECT_TO.fullmatch(entry)
        if not match:
            raise ValueError(f"'{entry}' is not HOST1:PORT1:HOST2:PORT2")
        host1, port1, host2, port2 = (part.strip("[]") for part in match.groups())
        if not (0 < int(port1) < 65536 and 0 < int(port2) < 65536):
            raise ValueError(f"'{entry}' has a port outside 1-65535")
        pairs[(host1.lower(), int(port1))] = (host2, int(port2))
    return pairs


_HOST = r"(\[[0-9A-Fa-f:.]+\]|[^:\s\[\]]+)"
_CONNECT_TO = re.compile(rf"{_HOST}:(\d{{1,5}}):{_HOST}:(\d{{1,5}})")


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    grpc_port: int = 18080
    http_port: int = 8000
    # Login sessions last this long (SCOPEGATE_SESSION_SECONDS; default 12 hours).
    session_seconds: float = 12 * 3600
    # Failed authentications per client address (see auth_throttle.py): this many per
    # window are answered as usual, later ones CONN_THROTTLED after the delay; limit 0
    # turns it off (SCOPEGATE_AUTH_FAILURE_LIMIT, ..._WINDOW_SECONDS, ..._DELAY_SECONDS).
    auth_failure_limit: int = AUTH_FAILURE_LIMIT
    auth_failure_window_seconds: float = AUTH_FAILURE_WINDOW_SECONDS
    auth_failure_delay_seconds: float = AUTH_FAILURE_DELAY_SECONDS
    media: MediaSettings = field(default_factory=MediaSettings)
    # Certificate chain and key (--tls-cert/--tls-key, SCOPEGATE_TLS_CERT/_KEY): both ports
    # then speak TLS only; None serves plaintext.
    tls: TlsFiles | None = None
    # Trusted proxies, HTTP read deadlines, connection limits (see connections.py).
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)


def _env_number(name: str, default: float, *, low: float, high: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}")
    return value


def resolve(
    data_dir: Path | None,
    database_url: str | None,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    trusted_proxies: Sequence[str] = (),
    **ports,
) -> Settings:
    """Flags first, then the environment, then the per-user default data dir.

    The data dir holds the server secret (unless SCOPEGATE_SECRET_KEY is set) and, when no
    database URL is given, the SQLite database. A TLS pair is read and checked here.
    """
    from scopegate.store.database import sqlite_url

    tls_files = load_tls(tls_cert, tls_key)

    directory = (data_dir or default_data_dir()).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    raw = os.environ.get(SESSION_SECONDS_ENV, "")
    try:
        lifetime = float(raw) if raw else 12 * 3600
    except ValueError:
        raise ValueError(f"{SESSION_SECONDS_ENV} must be a number of seconds") from None
    if lifetime <= 0:
        raise ValueError(f"{SESSION_SECONDS_ENV} must be positive")
    limit = _env_number(AUTH_FAILURE_LIMIT_ENV, AUTH_FAILURE_LIMIT, low=0, high=1e9)
    return Settings(
        data_dir=directory,
        database_url=database_url or sqlite_url(directory),
        session_seconds=lifetime,
        auth_failure_limit=int(limit),
        auth_failure_window_seconds=_env_number(
            AUTH_FAILURE_WINDOW_ENV, AUTH_FAILURE_WINDOW_SECONDS, low=0.1, high=86400
        ),
        auth_failure_delay_seconds=_env_number(
            AUTH_FAILURE_DELAY_ENV,
            AUTH_FAILURE_DELAY_SECONDS,
            low=0,
            high=MAX_AUTH_FAILURE_DELAY_SECONDS,
        ),
        media=media_settings(),
        tls=tls_files,
        connections=connection_settings(trusted_proxies),
        **ports,
    )


def server_secret(settings: Settings) -> bytes:
    """The key of the secrets' keyed hash: from the environment (shared by every instance),
    else from the data dir, generated on first start."""
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        try:
            key = bytes.fromhex(from_env.strip())
        except ValueError:
            raise ValueError(f"{SECRET_ENV} must be hex (e.g. `openssl rand -hex 32`)") from None
        if len(key) < 32:
            raise ValueError(f"{SECRET_ENV} must hold at least 32 bytes (64 hex characters)")
        return key
    path = settings.data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())
