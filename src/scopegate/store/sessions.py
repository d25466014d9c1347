"""Login sessions, stored by the keyed hash of their token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select

from scopegate.store.records import now, row_reader
from scopegate.store.rows import one
from scopegate.store.schema import sessions


@dataclass(frozen=True, slots=True)
class SessionRecord:
    public_id: str
    user_id: str
    created_at: datetime
    expires_at: datetime


_record = row_reader(SessionRecord)


def create(
    conn: Connection, digest: bytes, public_id: str, user_id: str, expires_at: datetime
) -> SessionRecord:
    at = now()
    conn.execute(
        insert(sessions).values(
            digest=digest,
            public_id=public_id,
            user_id=user_id,
            created_at=at,
            expires_at=expires_at,
        )
    )
    return SessionRecord(public_id, user_id, at, expires_at)


# Built once: this runs on every session cache miss.
_BY_DIGEST = select(sessions).where(
    sessions.c.digest == bindparam("digest"), sessions.c.expires_at > bindparam("at")
)


def find_by_digest(conn: Connection, digest: bytes, at: datetime) -> SessionRecord | None:
    return one(conn, _BY_DIGEST, _record, {"digest": digest, "at": at})


def end(conn: Connection, public_id: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.public_id == public_id))
