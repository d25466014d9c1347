"""Refused requests, by request id (see access/refusals.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select

from scopegate.store.records import json_strings, row_reader
from scopegate.store.rows import count_rows, every, one
from scopegate.store.schema import refusals


@dataclass(frozen=True, slots=True)
class RefusalRecord:
    request_id: str
    at: datetime
    method: str
    target_user: str
    target_app: str
    caller_user: str
    credential_kind: str
    credential_id: str
    client_address: str
    layer: str
    code: int
    description: str
    details: str
    required: tuple[str, ...]
    held: tuple[str, ...]
    missing: tuple[str, ...]


_record = row_reader(RefusalRecord, required=json_strings, held=json_strings, missing=json_strings)
_LISTS = ("required", "held", "missing")
_COLUMNS = tuple(f.name for f in fields(RefusalRecord))


# Written in batches through the driver's executemany: a flood of refusals is written at a
# few microseconds a row, where building each insert costs several times that. A row is its
# request's own values and a tuple shared by the batch's refusals that repeat (one caller,
# one method, one target), so the batch builds each explanation once.
_PER_REQUEST = ("request_id", "at", "client_address")
_SHARED = tuple(name for name in _COLUMNS if name not in _PER_REQUEST)
_INSERT = "INSERT INTO refusals ({}) VALUES ({})".format(
    ", ".join(_PER_REQUEST + _SHARED), ", ".join(("{0}",) * len(_COLUMNS))
)
Row = tuple[str, float, str, tuple]  # request id, time (epoch seconds), client, shared


def shared_values(record: RefusalRecord) -> tuple:
    """The values a refusal shares with the batch's refusals of the same kind."""
    return tuple(
        json.dumps(list(getattr(record, name))) if name in _LISTS else getattr(record, name)
        for name in _SHARED
    )


def row(record: RefusalRecord) -> Row:
    return (record.request_id, record.at.timestamp(), record.client_address, shared_values(record))


def insert_many(conn: Connection, rows: list[Row]) -> None:
    if not rows:
        return
    sql = _INSERT.format("?" if conn.dialect.paramstyle == "qmark" else "%s")
    stamp = _sqlite_time if conn.dialect.name == "sqlite" else _aware_time
    conn.exec_driver_sql(
        sql, [(request_id, stamp(at), peer, *shared) for request_id, at, peer, shared in rows]
    )


def _aware_time(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


_second: list = [None, ""]  # the last whole second formatted: a batch's rows share it


def _sqlite_time(at: float) -> str:
    """As SQLAlchemy stores and reads a DateTime on SQLite: naive UTC text, microseconds."""
    micros = round(at * 1_000_000)
    second, micro = divmod(micros, 1_000_000)
    if _second[0] != second:
        _second[:] = [second, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))]
    return f"{_second[1]}.{micro:06d}"


def get(conn: Connection, request_id: str) -> RefusalRecord | None:
    return one(conn, select(refusals).where(refusals.c.request_id == request_id), _record)


def for_caller(conn: Connection, user_id: str, limit: int = 20) -> list[RefusalRecord]:
    query = (
        select(refusals)
        .where(refusals.c.caller_user == user_id)
        .order_by(refusals.c.at.desc())
        .limit(limit)
    )
    return every(conn, query, _record)


def purge(conn: Connection, before: datetime, keep_at_most: int) -> int:
    """Drop records older than `before`, then the oldest beyond `keep_at_most`."""
    dropped = conn.execute(delete(refusals).where(refusals.c.at < before)).rowcount
    count = count_rows(conn, refusals)
    if count > keep_at_most:
        cutoff = conn.execute(
            select(refusals.c.at).order_by(refusals.c.at.desc()).offset(keep_at_most).limit(1)
        ).scalar_one()
        dropped += conn.execute(delete(refusals).where(refusals.c.at <= cutoff)).rowcount
    return dropped
