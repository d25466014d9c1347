"""The credential change log every process polls to evict cached credentials."""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select

from scopegate.store.records import now
from scopegate.store.schema import credential_changes


def record(conn: Connection, subject: str, subject_id: str) -> None:
    conn.execute(
        insert(credential_changes).values(subject=subject, subject_id=subject_id, at=now())
    )


def latest_id(conn: Connection) -> int:
    return conn.execute(select(func.coalesce(func.max(credential_changes.c.id), 0))).scalar_one()


def since(conn: Connection, after_id: int) -> list[tuple[int, str, str]]:
    rows = conn.execute(
        select(
            credential_changes.c.id, credential_changes.c.subject, credential_changes.c.subject_id
        )
        .where(credential_changes.c.id > after_id)
        .order_by(credential_changes.c.id)
    )
    return [(r.id, r.subject, r.subject_id) for r in rows]
