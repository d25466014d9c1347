"""`scopegate backup FILE` and `scopegate restore FILE`: SQLite databases, copied whole.

A backup is the database (one plain SQLite file) and, beside it as FILE.key, the server
secret the keys' hashes were made with: without that secret no restored key authenticates.
When the secret comes from SCOPEGATE_SECRET_KEY it is the operator's to keep, not copied.
PostgreSQL has its own tools (pg_dump, pg_restore): the commands say so."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from scopegate.cli import output as out
from scopegate.cli.common import Database, option, settings, usage, with_database
from scopegate.server.config import SECRET_ENV, SECRET_FILE, Settings
from scopegate.store.database import (
    DatabaseInUse,
    backup_sqlite,
    restore_sqlite,
    sqlite_path,
)

BackupFile = Annotated[Path, typer.Argument(help="The backup's file.", show_default=False)]
Force = Annotated[bool, option("--force", "Replace what is already there.")]

_POSTGRES = (
    "{verb} handles SQLite databases only; for PostgreSQL use {tool} (see the README's "
    "'Database lifecycle and backups')"
)


def _database_file(config: Settings, verb: str, tool: str) -> Path:
    path = sqlite_path(config.database_url)
    if path is None:
        usage(_POSTGRES.format(verb=verb, tool=tool))
    return path


def _secret_file(backup: Path) -> Path:
    return backup.with_name(backup.name + ".key")


def _write_private(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


@with_database
def backup(file: BackupFile, force: Force = False, *, db: Database) -> None:
    """Copy the SQLite database to FILE, also while servers write to it.

    SQLite's online backup of one consistent moment; the server secret goes to FILE.key."""
    config = settings(db.data_dir, db.database_url)
    source = _database_file(config, "backup", "pg_dump --format=custom --file FILE DATABASE")
    if not source.is_file():
        out.fail(f"no database to back up at {source}")
    key_file = _secret_file(file)
    if not force and (file.exists() or key_file.exists()):
        out.fail(f"{file} or {key_file.name} already exists; --force replaces them")
    try:
        backup_sqlite(source, file)
    except (OSError, sqlite3.Error) as exc:
        out.fail(f"backup failed: {exc}")
    own_secret = not os.environ.get(SECRET_ENV) and (config.data_dir / SECRET_FILE).is_file()
    if own_secret:
        _write_private(key_file, (config.data_dir / SECRET_FILE).read_text())
    db.show(
        {
            "database": str(source),
            "backup": str(file),
            "bytes": file.stat().st_size,
            "secret": str(key_file) if own_secret else None,
        },
        f"backed up {source} to {file} ({file.stat().st_size} bytes)",
        f"the server secret to {key_file}: keep both, no key authenticates without it"
        if own_secret
        else f"the server secret is {SECRET_ENV}'s: restore under the same value",
    )


@with_database
def restore(file: BackupFile, force: Force = False, *, db: Database) -> None:
    """Put a backup (and its FILE.key) into a data dir no server is using.

    Refused while a server or a command has the database open."""
    config = settings(db.data_dir, db.database_url)
    target = _database_file(config, "restore", "pg_restore --clean --dbname DATABASE FILE")
    if not file.is_file():
        out.fail(f"no backup at {file}")
    if not force and target.is_file() and target.stat().st_size > 0:
        out.fail(f"{target} already holds a database; --force replaces it")
    key_file, secret = _secret_file(file), config.data_dir / SECRET_FILE
    new_secret = key_file.read_text() if key_file.is_file() else None
    if (
        new_secret is not None
        and secret.is_file()
        and secret.read_text().strip() != new_secret.strip()
        and not force
    ):
        out.fail(f"{secret} differs from the backup's {key_file.name}; --force replaces it")
    try:
        restore_sqlite(file, target)
    except DatabaseInUse:
        out.fail(f"{target} is in use (a server or a command has it open); stop it first")
    except (OSError, sqlite3.Error) as exc:
        out.fail(f"restore failed: {exc}")
    if new_secret is not None:
        _write_private(secret, new_secret)
    db.show(
        {"backup": str(file), "database": str(target), "secret": new_secret is not None},
        f"restored {file} into {target}",
        f"with the server secret of {key_file}"
        if new_secret is not None
        else f"no {key_file.name} beside the backup: keys authenticate only if this data "
        f"dir's secret (or {SECRET_ENV}) is the one the backup was made under",
    )
