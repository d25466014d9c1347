"""Engines for SQLite (embedded, WAL) and PostgreSQL, and running migrations on start."""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

MIGRATIONS = Path(__file__).with_name("migrations")

# How long a statement waits for another transaction's lock, on either database, before it
# fails with an error `is_lock_wait` recognises (answered as retryable, not as a fault).
LOCK_TIMEOUT_MS = 10_000
# SQLite's primary result codes SQLITE_BUSY and SQLITE_LOCKED (extended codes add high bits).
_SQLITE_BUSY_CODES = frozenset({5, 6})
# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available (lock_timeout).
_PG_RETRYABLE_STATES = frozenset({"40001", "40P01", "55P03"})


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+pysqlite:///{data_dir / 'scopegate.db'}"


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the CLI write while a server reads; busy_timeout makes writers wait, not fail.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={LOCK_TIMEOUT_MS}")
    cursor.close()


def open_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": LOCK_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    # PostgreSQL waits for a lock forever by default: a request would hang, not fail.
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        connect_args={"options": f"-c lock_timeout={LOCK_TIMEOUT_MS}"},
    )


def is_lock_wait(exc: OperationalError) -> bool:
    """Whether a statement failed only because other transactions held what it needed
    (SQLite's write lock, a PostgreSQL lock timeout, serialization failure or deadlock):
    the same request may succeed when retried."""
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_BUSY_CODES
    if getattr(orig, "sqlstate", None) in _PG_RETRYABLE_STATES:
        return True
    return "database is locked" in str(orig)  # a driver without error codes


class SchemaMismatch(ValueError):
    """The database's schema is not the one this scopegate serves: behind it (and not to be
    upgraded) or ahead of it (revisions of a newer scopegate, which this one cannot undo)."""


@dataclass(frozen=True)
class SchemaState:
    """Where the database's schema stands against this scopegate's migration scripts."""

    applied: frozenset[str]  # the database's alembic_version rows; empty before any migration
    heads: frozenset[str]  # the scripts' newest revisions
    pending: tuple[str, ...]  # revisions the database lacks, oldest first
    unknown: frozenset[str]  # applied revisions no script names: a newer scopegate's

    @property
    def verdict(self) -> str:
        if self.unknown:
            return "ahead"
        return "behind" if self.pending else "current"

    def problem(self) -> str | None:
        """What is wrong, in one sentence; None when the schema is current."""
        if self.unknown:
            return (
                f"the database is newer than this scopegate: revision(s) "
                f"{', '.join(sorted(self.unknown))} have no migration script here; "
                "run the scopegate version that migrated it"
            )
        if self.pending:
            return (
                f"the database is behind this scopegate: {len(self.pending)} migration(s) "
                f"pending ({', '.join(self.pending)}); run `scopegate db upgrade`"
            )
        return None


def schema_state(engine: Engine) -> SchemaState:
    """The database's revisions against the scripts' graph, as Alembic reads the scripts."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(MIGRATIONS))
    oldest_first = list(reversed(list(scripts.walk_revisions())))
    parents = {s.revision: _as_tuple(s.down_revision) for s in oldest_first}
    applied = applied_revisions(engine) or frozenset()
    reached: set[str] = set()
    stack = [rev for rev in applied if rev in parents]
    while stack:  # every applied revision implies its ancestors
        rev = stack.pop()
        if rev not in reached:
            reached.add(rev)
            stack.extend(parents[rev])
    return SchemaState(
        applied=applied,
        heads=frozenset(scripts.get_heads()),
        pending=tuple(s.revision for s in oldest_first if s.revision not in reached),
        unknown=frozenset(applied - parents.keys()),
    )


def _as_tuple(down: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    if down is None:
        return ()
    return (down,) if isinstance(down, str) else tuple(down)


def require_current(engine: Engine) -> None:
    """Refuse (SchemaMismatch) a database whose schema is not exactly the scripts' heads;
    one query when it is."""
    heads = script_heads()
    if heads and applied_revisions(engine) == heads:
        return
    problem = schema_state(engine).problem()
    if problem:
        raise SchemaMismatch(problem)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to run on every start. A database
    newer than the scripts is refused (SchemaMismatch): Alembic would fail on the unknown
    revision with a message that does not say so.

    A database already at the newest revisions costs one query: Alembic (a quarter of a
    second to import) is loaded only when there is something to do, which keeps every CLI
    command and server start quicker."""
    heads = script_heads()
    if heads and applied_revisions(engine) == heads:
        return
    state = schema_state(engine)
    if state.unknown:
        raise SchemaMismatch(state.problem() or "")
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        # "heads": independent migration branches (one per feature) may coexist.
        command.upgrade(config, "heads")


_REVISION = re.compile(r'^revision\s*=\s*"([^"]+)"', re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.*)$", re.MULTILINE)


@cache
def script_heads() -> frozenset[str]:
    """The newest revisions of the migration scripts (those no other revision follows),
    read from their `revision`/`down_revision` lines; a test holds it equal to Alembic's."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return frozenset()  # not understood: let Alembic decide
        revisions.add(revision.group(1))
        parents.update(re.findall(r'"([^"]+)"', down.group(1).split("#")[0]))
    return frozenset(revisions - parents)


def applied_revisions(engine: Engine) -> frozenset[str] | None:
    """The revisions the database is at; None before the first migration."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(row[0] for row in rows)
    except SQLAlchemyError:
        return None


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for any other database (or SQLite in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def backup_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database that servers may be writing through SQLite's online backup
    API, into `target` (replaced whole, never left half-written).

    One step (pages=-1) copies a single read transaction's snapshot: in WAL mode writers go
    on meanwhile, and the copy holds exactly what was committed when it began. The copy is
    switched out of WAL mode so that it is one self-contained file."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    # Created private first: the copy holds what the database holds (hashes, audit log).
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=LOCK_TIMEOUT_MS / 1000)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("the copy fails SQLite's quick_check")
        finally:
            dst.close()
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        src.close()
        partial.unlink(missing_ok=True)


class DatabaseInUse(RuntimeError):
    """Another connection (a running server, a CLI command) has the database open."""


def restore_sqlite(backup: Path, target: Path) -> None:
    """Replace the database at `target` with a backup's content, through the backup API.

    Safe only when nothing has `target` open, and checked so: the target is locked with
    SQLite's own exclusive locking mode, which any open connection in WAL mode (a server
    keeps several, and polls the change log through them) makes fail at once; the lock is
    held for the whole copy, so a server starting meanwhile waits and then sees the
    restored database."""
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        if src.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError(f"{backup} fails SQLite's quick_check")
        dst = sqlite3.connect(target, timeout=0, isolation_level=None)
        try:
            dst.execute("PRAGMA locking_mode=EXCLUSIVE")
            try:
                dst.execute("BEGIN EXCLUSIVE")
                dst.execute("COMMIT")  # in exclusive locking mode the lock outlives this
            except sqlite3.OperationalError as exc:
                raise DatabaseInUse(str(exc)) from None
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")  # as the servers keep it
        finally:
            dst.close()
    finally:
        src.close()
