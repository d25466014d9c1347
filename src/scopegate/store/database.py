"""Engines for SQLite (embedded, WAL) and PostgreSQL, and running migrations on start."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

MIGRATIONS = Path(__file__).with_name("migrations")


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+pysqlite:///{data_dir / 'scopegate.db'}"


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the CLI write while a server reads; busy_timeout makes writers wait, not fail.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


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
