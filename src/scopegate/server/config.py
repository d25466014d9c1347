"""Every setting the server and the CLI read: flags first, then the SCOPEGATE_* environment
variables (read here and nowhere else, once at start-up), then the defaults, which live
beside the code they configure.

Where data lives and the server secret:
- SCOPEGATE_SECRET_KEY: the keyed hash's key, hex (else `server.key` in the data dir).

Sessions and logins (services/login.py):
- SCOPEGATE_SESSION_SECONDS: how long a login session lasts (12 hours).
- SCOPEGATE_LOGIN_FAILURES_PER_ACCOUNT, SCOPEGATE_LOGIN_FAILURES_PER_ADDRESS,
  SCOPEGATE_LOGIN_FAILURE_WINDOW_SECONDS: failed logins allowed per account (5) and per
  client address (20) in the window (900 s); later ones are answered CONN_THROTTLED.

Failed authentications per client address (access/address_throttle.py):
- SCOPEGATE_AUTH_FAILURE_LIMIT (50; 0 turns it off), SCOPEGATE_AUTH_FAILURE_WINDOW_SECONDS
  (60), SCOPEGATE_AUTH_FAILURE_DELAY_SECONDS (1, at most 30).

The request-time caches (access/):
- SCOPEGATE_CREDENTIAL_CACHE_SECONDS (300), SCOPEGATE_UNKNOWN_SECRET_CACHE_SECONDS (5),
  SCOPEGATE_RELATION_CACHE_SECONDS (300): the longest a cached credential, a known-unknown
  secret or a caller's standing towards an app is kept without a change evicting it.
- SCOPEGATE_CHANGE_POLL_SECONDS (0.25): how often the change log is read, so the longest a
  revocation made elsewhere takes to reach this process.
- SCOPEGATE_LAST_USED_WRITE_SECONDS (5): how often keys' last-use times are written.

Images (media/settings.py): SCOPEGATE_MAX_IMAGE_BYTES, SCOPEGATE_MAX_IMAGE_PIXELS,
SCOPEGATE_FETCH_TIMEOUT_SECONDS, SCOPEGATE_FETCH_PRIVATE_HOSTS, SCOPEGATE_FETCH_CONNECT_TO,
SCOPEGATE_DOWNLOAD_WORKERS.

Per-credential limits (access/limiter.py; README, Limits): SCOPEGATE_DEFAULT_RATE_LIMIT
(rates of keys without their own, e.g. `15/s`, comma-separated; unset: none),
SCOPEGATE_REDIS_URL (`--redis-url`: rate counters shared by all instances),
SCOPEGATE_LIMITS_ON_STORE_FAILURE (`open` or `closed`, when Redis is down).

Metrics (observability/): SCOPEGATE_METRICS (on, or off), SCOPEGATE_METRICS_ADDRESS
(`--metrics-address`); logs: SCOPEGATE_LOG_FORMAT, SCOPEGATE_LOG_LEVEL (`--log-format`,
`--log-level`, read by the command line).

Connections (server/connections.py): SCOPEGATE_TRUSTED_PROXIES,
SCOPEGATE_HTTP_REQUEST_TIMEOUT_SECONDS, SCOPEGATE_HTTP_KEEP_ALIVE_SECONDS,
SCOPEGATE_HTTP_MAX_CONNECTIONS, SCOPEGATE_GRPC_MAX_IDLE_SECONDS.

Forwarding upstream (gateway/; flags first): SCOPEGATE_UPSTREAM (HOST:PORT),
SCOPEGATE_UPSTREAM_TLS, SCOPEGATE_UPSTREAM_CA, SCOPEGATE_UPSTREAM_TIMEOUT_SECONDS (30),
SCOPEGATE_UPSTREAM_METHODS (comma-separated patterns), SCOPEGATE_UPSTREAM_ASSERTION,
SCOPEGATE_UPSTREAM_ASSERTION_KEY (an Ed25519 PEM key; else one made in the data dir).

The data dir, database URL, host, ports and TLS files (SCOPEGATE_DATA_DIR,
SCOPEGATE_DATABASE_URL, SCOPEGATE_HOST, SCOPEGATE_GRPC_PORT, SCOPEGATE_HTTP_PORT,
SCOPEGATE_PORT, SCOPEGATE_TLS_CERT, SCOPEGATE_TLS_KEY) are the command line's options, which
fall back to those variables; they arrive here as arguments of `resolve`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from scopegate.access import authentication, invalidation, relations
from scopegate.auth.limits import LimitsError, Rate, parse_rates
from scopegate.gateway.settings import UpstreamSettings, parse_upstream_address, unknown_patterns
from scopegate.media.settings import MediaSettings
from scopegate.observability.settings import ObservabilitySettings, parse_address
from scopegate.server.connections import ConnectionSettings, parse_networks
from scopegate.server.tls import TlsFiles, load_tls
from scopegate.services import login
from scopegate.services.usage import UsageSettings

SECRET_ENV = "SCOPEGATE_SECRET_KEY"
SECRET_FILE = "server.key"
AUTH_FAILURE_LIMIT = 50
AUTH_FAILURE_WINDOW_SECONDS = 60.0
AUTH_FAILURE_DELAY_SECONDS = 1.0
MAX_AUTH_FAILURE_DELAY_SECONDS = 30.0  # a tarpitted request holds its connection this long
FETCH_CONNECT_TO_ENV = "SCOPEGATE_FETCH_CONNECT_TO"
TRUSTED_PROXIES_ENV = "SCOPEGATE_TRUSTED_PROXIES"

T = TypeVar("T")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "scopegate"


@dataclass(frozen=True, slots=True)
class LoginSettings:
    """Session length and the failed-login throttle (services/login.py)."""

    session_seconds: float = login.DEFAULT_SESSION_SECONDS
    failures_per_account: int = login.FAILURES_PER_ACCOUNT
    failures_per_address: int = login.FAILURES_PER_ADDRESS
    failure_window_seconds: float = login.FAILURE_WINDOW_SECONDS


@dataclass(frozen=True, slots=True)
class AccessSettings:
    """How long the request-time caches trust what they hold, and how often the change log
    that evicts them is read (access/)."""

    credential_cache_seconds: float = authentication.CACHE_SECONDS
    unknown_secret_cache_seconds: float = authentication.UNKNOWN_CACHE_SECONDS
    relation_cache_seconds: float = relations.CACHE_SECONDS
    change_poll_seconds: float = invalidation.POLL_SECONDS
    last_used_write_seconds: float = invalidation.LAST_USED_SECONDS


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Where rate counters live and what the server does without them (access/limiter.py)."""

    redis_url: str | None = None
    fail_open: bool = True
    default_rates: tuple[Rate, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    grpc_port: int = 18080
    http_port: int = 8000
    # One port for gRPC and HTTP (--port; see transports/port_switch.py): when set, the two
    # above are not used.
    port: int | None = None
    login: LoginSettings = field(default_factory=LoginSettings)
    # Failed authentications per client address (see access/address_throttle.py): this many
    # per window are answered as usual, later ones CONN_THROTTLED after the delay; limit 0
    # turns it off.
    auth_failure_limit: int = AUTH_FAILURE_LIMIT
    auth_failure_window_seconds: float = AUTH_FAILURE_WINDOW_SECONDS
    auth_failure_delay_seconds: float = AUTH_FAILURE_DELAY_SECONDS
    access: AccessSettings = field(default_factory=AccessSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    # Certificate chain and key (--tls-cert/--tls-key): both ports then speak TLS only;
    # None serves plaintext.
    tls: TlsFiles | None = None
    # Trusted proxies, HTTP read deadlines, connection limits (see connections.py).
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)
    # Upgrade the schema on start (else, `serve --no-migrate`, refuse a database behind it).
    migrate: bool = True
    limits: LimitSettings = field(default_factory=LimitSettings)
    # Usage counts: on or off, and how long hourly rows are kept (services/usage.py).
    usage: UsageSettings = field(default_factory=UsageSettings)
    # Metrics on or off and where /metrics is served (observability/).
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    # Forward methods without a local handler to this V2 server (serve --upstream).
    upstream: UpstreamSettings | None = None
    # This process's index among `serve --workers` (server/workers.py): it shares its ports
    # with the other workers (SO_REUSEPORT). None: the only serving process.
    worker: int | None = None

    @property
    def session_seconds(self) -> float:
        return self.login.session_seconds


def _raw(name: str) -> str:
    return os.environ.get(f"SCOPEGATE_{name}", "").strip()


def _parsed(name: str, default: T, parse: Callable[[str], T], kind: str) -> tuple[str, T]:
    """SCOPEGATE_<name> and its value, parsed (the default when unset or empty)."""
    key = f"SCOPEGATE_{name}"
    raw = _raw(name)
    try:
        return key, parse(raw) if raw else default
    except ValueError:
        raise ValueError(f"{key} must be {kind}") from None


def _number(name: str, default: float, *, low: float | None = None, high: float = 0.0) -> float:
    """SCOPEGATE_<name> as a number: positive, or within [low, high] when `low` is given;
    the default when unset or empty."""
    key, value = _parsed(name, default, float, "a number")
    if low is None and not value > 0:
        raise ValueError(f"{key} must be positive")
    if low is not None and not low <= value <= high:
        raise ValueError(f"{key} must be between {low:g} and {high:g}")
    return value


def _count(name: str, default: int) -> int:
    """SCOPEGATE_<name> as a positive whole number."""
    key, value = _parsed(name, default, int, "a whole number")
    if value <= 0:
        raise ValueError(f"{key} must be positive")
    return value


def _flag(name: str) -> bool:
    return _raw(name).lower() in ("1", "true", "yes")


def login_settings() -> LoginSettings:
    d = LoginSettings()
    return LoginSettings(
        session_seconds=_number("SESSION_SECONDS", d.session_seconds),
        failures_per_account=_count("LOGIN_FAILURES_PER_ACCOUNT", d.failures_per_account),
        failures_per_address=_count("LOGIN_FAILURES_PER_ADDRESS", d.failures_per_address),
        failure_window_seconds=_number("LOGIN_FAILURE_WINDOW_SECONDS", d.failure_window_seconds),
    )


def access_settings() -> AccessSettings:
    d = AccessSettings()
    return AccessSettings(
        credential_cache_seconds=_number("CREDENTIAL_CACHE_SECONDS", d.credential_cache_seconds),
        unknown_secret_cache_seconds=_number(
            "UNKNOWN_SECRET_CACHE_SECONDS", d.unknown_secret_cache_seconds
        ),
        relation_cache_seconds=_number("RELATION_CACHE_SECONDS", d.relation_cache_seconds),
        change_poll_seconds=_number("CHANGE_POLL_SECONDS", d.change_poll_seconds),
        last_used_write_seconds=_number("LAST_USED_WRITE_SECONDS", d.last_used_write_seconds),
    )


def usage_settings() -> UsageSettings:
    d = UsageSettings()
    counting = os.environ.get("SCOPEGATE_USAGE_COUNTING", "").strip().lower()
    if counting not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ValueError("SCOPEGATE_USAGE_COUNTING must be 1 or 0")
    return UsageSettings(
        counting=counting not in ("0", "false", "no", "off"),
        retention_days=_count("USAGE_RETENTION_DAYS", d.retention_days),
        top_addresses=_count("USAGE_TOP_ADDRESSES", d.top_addresses),
    )


def limit_settings(
    redis_url: str | None = None, on_store_failure: str | None = None
) -> LimitSettings:
    """Flags first (`--redis-url`, `--limits-on-store-failure`), then the environment."""
    url = (redis_url or os.environ.get("SCOPEGATE_REDIS_URL", "")).strip() or None
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("--redis-url must be redis://host:port/N, rediss://... or unix://...")
    policy = on_store_failure or os.environ.get("SCOPEGATE_LIMITS_ON_STORE_FAILURE", "open")
    policy = policy.strip().lower()
    if policy not in ("open", "closed"):
        raise ValueError("--limits-on-store-failure must be open or closed")
    raw = os.environ.get("SCOPEGATE_DEFAULT_RATE_LIMIT", "")
    try:
        rates = parse_rates([r for r in raw.split(",") if r.strip()])
    except LimitsError as exc:
        raise ValueError(f"SCOPEGATE_DEFAULT_RATE_LIMIT: {exc}") from None
    return LimitSettings(redis_url=url, fail_open=policy == "open", default_rates=rates)


def observability_settings(metrics_address: str | None = None) -> ObservabilitySettings:
    """`--metrics-address` (else SCOPEGATE_METRICS_ADDRESS); SCOPEGATE_METRICS=off counts
    nothing and serves no /metrics (what the benchmarks compare against)."""
    address = metrics_address or os.environ.get("SCOPEGATE_METRICS_ADDRESS", "").strip()
    switch = os.environ.get("SCOPEGATE_METRICS", "on").strip().lower()
    if switch not in ("on", "off", "1", "0", "true", "false", ""):
        raise ValueError("SCOPEGATE_METRICS must be on or off")
    return ObservabilitySettings(
        metrics=switch not in ("off", "0", "false"),
        metrics_address=parse_address(address) if address else None,
    )


def media_settings() -> MediaSettings:
    """Media limits from the environment, defaults where unset."""
    d = MediaSettings()
    return MediaSettings(
        max_image_bytes=_count("MAX_IMAGE_BYTES", d.max_image_bytes),
        max_image_pixels=_count("MAX_IMAGE_PIXELS", d.max_image_pixels),
        fetch_timeout=_number("FETCH_TIMEOUT_SECONDS", d.fetch_timeout),
        fetch_private_hosts=_flag("FETCH_PRIVATE_HOSTS"),
        download_workers=_count("DOWNLOAD_WORKERS", d.download_workers),
        fetch_connect_to=_connect_to(),
    )


def connection_settings(trusted_proxies: Sequence[str] = ()) -> ConnectionSettings:
    """Flags first (`--trusted-proxy`), then the environment, then the defaults."""
    if trusted_proxies:
        proxies = parse_networks(trusted_proxies, "--trusted-proxy")
    else:
        raw = os.environ.get(TRUSTED_PROXIES_ENV, "")
        proxies = parse_networks([p for p in raw.split(",") if p.strip()], TRUSTED_PROXIES_ENV)
    d = ConnectionSettings()
    return ConnectionSettings(
        trusted_proxies=proxies,
        http_request_timeout=_number("HTTP_REQUEST_TIMEOUT_SECONDS", d.http_request_timeout),
        http_keep_alive=_number("HTTP_KEEP_ALIVE_SECONDS", d.http_keep_alive),
        http_max_connections=_count("HTTP_MAX_CONNECTIONS", d.http_max_connections),
        grpc_max_idle=_number("GRPC_MAX_IDLE_SECONDS", d.grpc_max_idle),
    )


def upstream_settings(
    address: str | None = None,
    *,
    tls: bool = False,
    ca_file: Path | None = None,
    timeout: float | None = None,
    methods: Sequence[str] = (),
    assertion: bool = False,
) -> UpstreamSettings | None:
    """`serve --upstream` and its options, each falling back to its SCOPEGATE_UPSTREAM*
    variable; None without an address (nothing is forwarded)."""
    address = address or os.environ.get("SCOPEGATE_UPSTREAM", "").strip() or None
    methods = list(methods) or [
        m.strip() for m in os.environ.get("SCOPEGATE_UPSTREAM_METHODS", "").split(",") if m.strip()
    ]
    ca_file = ca_file or _path("UPSTREAM_CA")
    if address is None:
        if methods or ca_file or tls:
            raise ValueError("--upstream-method, --upstream-tls and --upstream-ca need --upstream")
        return None
    from scopegate.contract.catalog import load_catalog

    unknown = unknown_patterns(methods, load_catalog())
    if unknown:
        raise ValueError(f"--upstream-method names no V2 method: {', '.join(unknown)}")
    tls = tls or _flag("UPSTREAM_TLS") or ca_file is not None
    roots = None
    if ca_file is not None:
        try:
            roots = ca_file.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read --upstream-ca {ca_file}: {exc.strerror}") from None
        if b"-----BEGIN CERTIFICATE-----" not in roots:
            raise ValueError(f"--upstream-ca {ca_file} holds no PEM certificate")
    if timeout is None:
        timeout = _number("UPSTREAM_TIMEOUT_SECONDS", 30.0)
    elif not timeout > 0:
        raise ValueError("--upstream-timeout must be positive")
    return UpstreamSettings(
        address=parse_upstream_address(address, "--upstream"),
        tls=tls,
        ca_certificates=roots,
        ca_file=ca_file,
        timeout=timeout,
        methods=tuple(methods),
        assertion=assertion or _flag("UPSTREAM_ASSERTION"),
        assertion_key_file=_path("UPSTREAM_ASSERTION_KEY"),
    )


def _path(name: str) -> Path | None:
    raw = _raw(name)
    return Path(raw).expanduser() if raw else None


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


def resolve(
    data_dir: Path | None,
    database_url: str | None,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    trusted_proxies: Sequence[str] = (),
    redis_url: str | None = None,
    limits_on_store_failure: str | None = None,
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
    return Settings(
        data_dir=directory,
        database_url=database_url or sqlite_url(directory),
        login=login_settings(),
        auth_failure_limit=int(_number("AUTH_FAILURE_LIMIT", AUTH_FAILURE_LIMIT, low=0, high=1e9)),
        auth_failure_window_seconds=_number(
            "AUTH_FAILURE_WINDOW_SECONDS", AUTH_FAILURE_WINDOW_SECONDS, low=0.1, high=86400
        ),
        auth_failure_delay_seconds=_number(
            "AUTH_FAILURE_DELAY_SECONDS",
            AUTH_FAILURE_DELAY_SECONDS,
            low=0,
            high=MAX_AUTH_FAILURE_DELAY_SECONDS,
        ),
        access=access_settings(),
        usage=usage_settings(),
        media=media_settings(),
        tls=tls_files,
        connections=connection_settings(trusted_proxies),
        limits=limit_settings(redis_url, limits_on_store_failure),
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
