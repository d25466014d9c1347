"""Engines for SQLite (embedded, WAL) and PostgreSQL, and running migrations on start."""

from __future__ import annotations

import re
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


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to run on every start.

    A database already at the newest revisions costs one query: Alembic (a quarter of a
    second to import) is loaded only when there is something to do, which keeps every CLI
    command and server start quicker."""
    heads = script_heads()
    if heads and applied_revisions(engine) == heads:
        return
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
