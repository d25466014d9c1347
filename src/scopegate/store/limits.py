"""Keys' and users' limits, and the usage quota's count, spent by conditional updates.

A quota is taken in leases: `take` removes up to `n` from the stored count in one UPDATE
whose WHERE clause refuses to go below zero, so concurrent instances (and restarts) never
hand out more than was stored; what a lease left unspent is given back by `give_back`
(or, after a crash, is lost: the quota may be under-spent, never over-spent).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy import update as update_stmt

from scopegate.store.rows import modify
from scopegate.store.schema import key_limits, keys, user_limits


@dataclass(frozen=True, slots=True)
class StoredLimits:
    """A key's limits as stored, in their written forms (auth/limits.py reads them)."""

    key_pk: int
    rates: tuple[str, ...]  # "10/s"
    allow: tuple[str, ...]  # CIDRs
    methods: tuple[str, ...]
    remaining: int | None
    refill_period: str | None
    refill_amount: int | None
    refill_index: int | None
    revision: int = 0


def _read(row) -> StoredLimits:
    return StoredLimits(
        key_pk=row.key_pk,
        rates=tuple(json.loads(row.rates)),
        allow=tuple(json.loads(row.allow)),
        methods=tuple(json.loads(row.methods)),
        remaining=None if row.usage_remaining is None else int(row.usage_remaining),
        refill_period=row.refill_period,
        refill_amount=None if row.refill_amount is None else int(row.refill_amount),
        refill_index=row.refill_index,
        revision=row.revision,
    )


def for_key(conn: Connection, key_pk: int) -> StoredLimits | None:
    row = conn.execute(select(key_limits).where(key_limits.c.key_pk == key_pk)).first()
    return _read(row) if row else None


def for_keys(conn: Connection, key_pks: list[int]) -> dict[int, StoredLimits]:
    if not key_pks:
        return {}
    rows = conn.execute(select(key_limits).where(key_limits.c.key_pk.in_(key_pks)))
    return {row.key_pk: _read(row) for row in rows}


def user_rates(conn: Connection, user_id: str) -> tuple[str, ...]:
    value = conn.execute(
        select(user_limits.c.rates).where(user_limits.c.user_id == user_id)
    ).scalar()
    return tuple(json.loads(value)) if value else ()


def set_for_key(conn: Connection, new: StoredLimits, keep_count: bool) -> None:
    """Replace a key's limits (none at all: the row goes). `keep_count`: leave the stored
    remaining count as it is (a change of rates must not hand the quota out again)."""
    key_pk = new.key_pk
    if not new.rates and not new.allow and new.remaining is None:
        conn.execute(delete(key_limits).where(key_limits.c.key_pk == key_pk))
        return
    values = {
        "rates": json.dumps(list(new.rates)),
        "allow": json.dumps(list(new.allow)),
        "methods": json.dumps(list(new.methods)),
        "refill_period": new.refill_period,
        "refill_amount": new.refill_amount,
        "revision": _revisions.getrandbits(31),
    }
    if not keep_count:
        values["usage_remaining"] = new.remaining
        values["refill_index"] = new.refill_index
    updated = conn.execute(
        update_stmt(key_limits).where(key_limits.c.key_pk == key_pk).values(**values)
    ).rowcount
    if not updated:
        values.setdefault("usage_remaining", new.remaining)
        values.setdefault("refill_index", new.refill_index)
        conn.execute(insert(key_limits).values(key_pk=key_pk, **values))


def touch_key(conn: Connection, key_pk: int) -> bool:
    """Mark the key modified (and lock its row); whether it still exists."""
    return modify(conn, keys, key_pk)


def set_user_rates(conn: Connection, user_id: str, rates: tuple[str, ...]) -> None:
    conn.execute(delete(user_limits).where(user_limits.c.user_id == user_id))
    if rates:
        conn.execute(insert(user_limits).values(user_id=user_id, rates=json.dumps(list(rates))))


def _refill(conn: Connection, key_pk: int, period_index: int) -> None:
    """Set the count to the refill amount once per period, whoever gets there first."""
    c = key_limits.c
    conn.execute(
        update_stmt(key_limits)
        .where(
            c.key_pk == key_pk,
            c.refill_period.is_not(None),
            (c.refill_index.is_(None)) | (c.refill_index < period_index),
        )
        .values(usage_remaining=c.refill_amount, refill_index=period_index)
    )


_revisions = random.SystemRandom()


def take(
    conn: Connection, key_pk: int, revision: int, n: int, period_index: int | None
) -> tuple[int, int]:
    """Take up to `n` from a key's remaining count, if its limits are still those of
    `revision`: (how many were taken, what remains stored). Each UPDATE is atomic and
    refuses to go below zero."""
    c = key_limits.c
    if period_index is not None:
        _refill(conn, key_pk, period_index)
    taken = 0
    for size in dict.fromkeys((n, 1)):
        statement = (
            update_stmt(key_limits)
            .where(c.key_pk == key_pk, c.revision == revision, c.usage_remaining >= size)
            .values(usage_remaining=c.usage_remaining - size)
        )
        if conn.execute(statement).rowcount:
            taken = size
            break
    left = conn.execute(select(c.usage_remaining).where(c.key_pk == key_pk)).scalar()
    return taken, int(left or 0)


def give_back(
    conn: Connection, key_pk: int, revision: int, n: int, period_index: int | None
) -> None:
    """Return what a lease left unspent, unless a refill happened since (then the count
    was set afresh and what was leased before belongs to a past period)."""
    c = key_limits.c
    same_period = (
        c.refill_index.is_(None) if period_index is None else c.refill_index == period_index
    )
    conn.execute(
        update_stmt(key_limits)
        .where(
            c.key_pk == key_pk,
            c.revision == revision,
            c.usage_remaining.is_not(None),
            same_period,
        )
        .values(usage_remaining=c.usage_remaining + n)
    )
