"""The audit log of credential events. Never holds a secret: credentials appear by public id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from scopegate.store.records import now, row_reader
from scopegate.store.rows import every
from scopegate.store.schema import audit_events


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    at: datetime
    request_id: str
    action: str
    actor_user_id: str
    credential_kind: str
    credential_id: str
    target: str
    client_address: str
    details: str


_event = row_reader(AuditEvent)


def record(conn: Connection, action: str, **values: str) -> None:
    """Append an `action` event at this moment; `values` are its other columns (actor_user_id,
    credential_kind, credential_id, target, client_address, request_id, details: see
    `AuditEvent`), '' when not given."""
    conn.execute(insert(audit_events).values(at=now(), action=action, **values))


def search(
    conn: Connection,
    actor_user_id: str | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actions: list[str] | None = None,
    client_addresses: list[str] | None = None,
    ascending: bool = False,
    offset: int = 0,
    limit: int = 128,
) -> list[AuditEvent]:
    """Events newest first (or oldest first); `actor_user_id=None` means every user's."""
    query = select(audit_events)
    if actor_user_id is not None:
        query = query.where(audit_events.c.actor_user_id == actor_user_id)
    if since is not None:
        query = query.where(audit_events.c.at >= since)
    if until is not None:
        query = query.where(audit_events.c.at <= until)
    if actions:
        query = query.where(audit_events.c.action.in_(actions))
    if client_addresses:
        query = query.where(audit_events.c.client_address.in_(client_addresses))
    order = audit_events.c.id.asc() if ascending else audit_events.c.id.desc()
    return every(conn, query.order_by(order).offset(offset).limit(limit), _event)
