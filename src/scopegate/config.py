"""Where data lives, which ports to use, and the server secret."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SECRET_ENV = "SCOPEGATE_SECRET_KEY"
SECRET_FILE = "server.key"
SESSION_SECONDS_ENV = "SCOPEGATE_SESSION_SECONDS"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "scopegate"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    grpc_port: int = 18080
    http_port: int = 8000
    # Login sessions last this long (SCOPEGATE_SESSION_SECONDS; default 12 hours).
    session_seconds: float = 12 * 3600


def resolve(data_dir: Path | None, database_url: str | None, **ports) -> Settings:
    """Flags first, then the environment, then the per-user default data dir.

    The data dir holds the server secret (unless SCOPEGATE_SECRET_KEY is set) and, when no
    database URL is given, the SQLite database.
    """
    from scopegate.store.database import sqlite_url

    directory = (data_dir or default_data_dir()).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    raw = os.environ.get(SESSION_SECONDS_ENV, "")
    try:
        lifetime = float(raw) if raw else 12 * 3600
    except ValueError:
        raise ValueError(f"{SESSION_SECONDS_ENV} must be a number of seconds") from None
    if lifetime <= 0:
        raise ValueError(f"{SESSION_SECONDS_ENV} must be positive")
    return Settings(
        data_dir=directory,
        database_url=database_url or sqlite_url(directory),
        session_seconds=lifetime,
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
