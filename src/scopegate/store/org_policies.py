"""Organization token policies and admins' decisions on members' tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from scopegate.store.records import now, row_reader
from scopegate.store.rows import every, one
from scopegate.store.schema import org_token_policies, token_approvals


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    org_id: str
    max_lifetime_days: int | None
    require_expiry: bool
    require_fine_grained: bool
    approval_required: bool
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    org_id: str
    key_id: str
    state: str
    reason: str
    decided_by: str
    decided_at: datetime


_policy = row_reader(PolicyRecord)
_decision = row_reader(DecisionRecord)


def get(conn: Connection, org_id: str) -> PolicyRecord | None:
    query = select(org_token_policies).where(org_token_policies.c.org_id == org_id)
    return one(conn, query, _policy)


def all_org_ids(conn: Connection) -> list[str]:
    return list(conn.execute(select(org_token_policies.c.org_id)).scalars())


def put(
    conn: Connection,
    org_id: str,
    *,
    max_lifetime_days: int | None,
    require_expiry: bool,
    require_fine_grained: bool,
    approval_required: bool,
) -> None:
    values = {
        "max_lifetime_days": max_lifetime_days,
        "require_expiry": require_expiry,
        "require_fine_grained": require_fine_grained,
        "approval_required": approval_required,
        "modified_at": now(),
    }
    changed = conn.execute(
        update(org_token_policies).where(org_token_policies.c.org_id == org_id).values(**values)
    ).rowcount
    if not changed:
        conn.execute(insert(org_token_policies).values(org_id=org_id, **values))


def decisions(conn: Connection, org_id: str) -> list[DecisionRecord]:
    query = select(token_approvals).where(token_approvals.c.org_id == org_id)
    return every(conn, query, _decision)


def decide(
    conn: Connection, org_id: str, key_id: str, state: str, reason: str, decided_by: str
) -> None:
    conn.execute(
        delete(token_approvals).where(
            token_approvals.c.org_id == org_id, token_approvals.c.key_id == key_id
        )
    )
    conn.execute(
        insert(token_approvals).values(
            org_id=org_id,
            key_id=key_id,
            state=state,
            reason=reason,
            decided_by=decided_by,
            decided_at=now(),
        )
    )


def forget_key(conn: Connection, key_id: str) -> list[str]:
    """Drop every decision on a key (its resources changed: it is asked for again); the
    organizations it was decided in."""
    orgs = list(
        conn.execute(
            select(token_approvals.c.org_id).where(token_approvals.c.key_id == key_id)
        ).scalars()
    )
    if orgs:
        conn.execute(delete(token_approvals).where(token_approvals.c.key_id == key_id))
    return orgs
