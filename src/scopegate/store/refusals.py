"""Refused requests, by request id (see access/refusals.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, func, select

from scopegate.store.records import json_strings, row_reader
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
# few microseconds a row, where building each insert costs several times that.
_INSERT = "INSERT INTO refusals ({}) VALUES ({})"


def insert_many(conn: Connection, rows: list[dict]) -> None:
    """Rows as `row_values` makes them (the recorder builds them in batches)."""
    if not rows:
        return
    qmark = conn.dialect.paramstyle == "qmark"
    sql = _INSERT.format(", ".join(_COLUMNS), ", ".join(("?" if qmark else "%s",) * len(_COLUMNS)))
    sqlite = conn.dialect.name == "sqlite"
    values = []
    for row in rows:
        at = row["at"]
        if sqlite:  # as SQLAlchemy stores and reads a DateTime there: naive UTC text
            at = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        values.append(tuple(at if name == "at" else row[name] for name in _COLUMNS))
    conn.exec_driver_sql(sql, values)


def row_values(record: RefusalRecord) -> dict:
    row = {name: getattr(record, name) for name in _COLUMNS}
    for name in _LISTS:
        row[name] = json.dumps(list(row[name]))
    return row


def get(conn: Connection, request_id: str) -> RefusalRecord | None:
    row = conn.execute(select(refusals).where(refusals.c.request_id == request_id)).first()
    return _record(row) if row else None


def for_caller(conn: Connection, user_id: str, limit: int = 20) -> list[RefusalRecord]:
    rows = conn.execute(
        select(refusals)
        .where(refusals.c.caller_user == user_id)
        .order_by(refusals.c.at.desc())
        .limit(limit)
    )
    return [_record(row) for row in rows]


def purge(conn: Connection, before: datetime, keep_at_most: int) -> int:
    """Drop records older than `before`, then the oldest beyond `keep_at_most`."""
    dropped = conn.execute(delete(refusals).where(refusals.c.at < before)).rowcount
    count = conn.execute(select(func.count()).select_from(refusals)).scalar_one()
    if count > keep_at_most:
        cutoff = conn.execute(
            select(refusals.c.at).order_by(refusals.c.at.desc()).offset(keep_at_most).limit(1)
        ).scalar_one()
        dropped += conn.execute(delete(refusals).where(refusals.c.at <= cutoff)).rowcount
    return dropped
