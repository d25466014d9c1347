"""Refused requests, by request id (see access/refusals.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select

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


def insert_many(conn: Connection, records: Iterable[RefusalRecord]) -> None:
    rows = []
    for record in records:
        row = asdict(record)
        for name in _LISTS:
            row[name] = json.dumps(list(row[name]))
        rows.append(row)
    if rows:
        conn.execute(insert(refusals), rows)


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
