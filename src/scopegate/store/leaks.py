"""Secrets revoked because they were reported leaked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from scopegate.store.records import now, row_reader
from scopegate.store.rows import every
from scopegate.store.schema import leaked_secrets


@dataclass(frozen=True, slots=True)
class LeakRecord:
    at: datetime
    user_id: str
    credential_kind: str
    credential_id: str
    masked: str
    description: str
    source: str
    location: str


_record = row_reader(LeakRecord)


def record(
    conn: Connection,
    *,
    user_id: str,
    credential_kind: str,
    credential_id: str,
    masked: str,
    description: str,
    source: str,
    location: str,
) -> LeakRecord:
    values = {
        "at": now(),
        "user_id": user_id,
        "credential_kind": credential_kind,
        "credential_id": credential_id,
        "masked": masked,
        "description": description,
        "source": source,
        "location": location,
    }
    conn.execute(insert(leaked_secrets).values(**values))
    return LeakRecord(**values)


def for_user(conn: Connection, user_id: str, limit: int = 50) -> list[LeakRecord]:
    query = (
        select(leaked_secrets)
        .where(leaked_secrets.c.user_id == user_id)
        .order_by(leaked_secrets.c.at.desc(), leaked_secrets.c.id.desc())
        .limit(limit)
    )
    return every(conn, query, _record)
