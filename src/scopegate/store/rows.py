"""How the table modules run their statements: one record or None, every record, how many
rows, whether a change found its row, a new row's key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable, Table, func, insert, select, update

from scopegate.store.records import now

R = TypeVar("R")


def one(
    conn: Connection,
    statement: Executable,
    read: Callable[[Any], R],
    params: Mapping[str, Any] | None = None,
) -> R | None:
    """The first row `statement` answers, read as a record; None when there is none."""
    row = conn.execute(statement, params).first()
    return read(row) if row else None


def every(conn: Connection, statement: Executable, read: Callable[[Any], R]) -> list[R]:
    """Every row `statement` answers, each read as a record, in its order."""
    return [read(row) for row in conn.execute(statement)]


def count_rows(conn: Connection, table: Table, *conditions: Any) -> int:
    """How many rows of `table` meet every condition."""
    return conn.execute(select(func.count()).select_from(table).where(*conditions)).scalar_one()


def touched(conn: Connection, statement: Executable) -> bool:
    """Whether an UPDATE or DELETE found a row (False: it was gone already)."""
    return conn.execute(statement).rowcount > 0


def modify(conn: Connection, table: Table, pk: int, **values: Any) -> bool:
    """Change the row of `table` whose `id` is `pk`, its `modified_at` now; whether it still
    existed to be changed."""
    return touched(conn, update(table).where(table.c.id == pk).values(**values, modified_at=now()))


def insert_row(conn: Connection, table: Table, **values: Any) -> Any:
    """Insert one row; its primary key."""
    key = conn.execute(insert(table).values(**values)).inserted_primary_key
    assert key is not None  # None only for a many-row insert
    return key[0]


def insert_created(conn: Connection, table: Table, at: datetime, **values: Any) -> Any:
    """Insert one row created, and so last modified, at `at`; its primary key."""
    return insert_row(conn, table, created_at=at, modified_at=at, **values)
