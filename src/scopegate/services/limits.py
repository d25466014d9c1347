"""Setting a key's limits (rates, usage quota, allowed addresses) and a user's rates.

Each change is audited and logged in the change log under the key (or the user), so every
process reloads the credential, and with it its limits, within the poll interval.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Connection

from scopegate.auth.limits import (
    Limits,
    LimitsError,
    Rate,
    from_stored,
    parse_rates,
    period_index,
)
from scopegate.contract.status import ApiError, does_not_exist, invalid_argument
from scopegate.services import change_log
from scopegate.services.audit import Actor
from scopegate.store import limits, users
from scopegate.store.records import KeyRecord, now


def limits_error(error: LimitsError) -> ApiError:
    return invalid_argument(str(error))


def read(stored: limits.StoredLimits | None) -> Limits:
    if stored is None:
        return Limits()
    return from_stored(
        stored.rates,
        stored.allow,
        stored.methods,
        stored.remaining,
        stored.refill_period,
        stored.refill_amount,
    )


def key_limits(conn: Connection, record: KeyRecord) -> Limits:
    return read(limits.for_key(conn, record.pk))


def limits_of_keys(conn: Connection, records: list[KeyRecord]) -> dict[int, Limits]:
    """The limits of those of `records` that have any, by key pk."""
    found = limits.for_keys(conn, [r.pk for r in records])
    return {pk: read(stored) for pk, stored in found.items()}


def user_rates(conn: Connection, user_id: str) -> tuple[Rate, ...]:
    return parse_rates(limits.user_rates(conn, user_id))


def set_key_limits(
    conn: Connection,
    record: KeyRecord,
    new: Limits,
    *,
    actor: Actor,
    keep_count: bool = False,
) -> Limits:
    """Replace a key's limits; `keep_count`: a quota already set keeps its remaining count
    (the CLI's patch of other limits), else the count is `new.remaining`."""
    current = limits.for_key(conn, record.pk)
    if keep_count and (current is None or current.remaining is None):
        keep_count = False  # nothing to keep: the new count is the one given
    if keep_count and current is not None:
        new = replace(new, remaining=current.remaining)
    index = period_index(new.refill.period, now()) if new.refill else None
    # Touch the key's row first: it is locked from here on, or the key is gone.
    if not limits.touch_key(conn, record.pk):
        raise does_not_exist("No such key.")
    stored = limits.StoredLimits(
        key_pk=record.pk,
        rates=tuple(str(r) for r in new.rates),
        allow=tuple(str(n) for n in new.allow),
        methods=new.methods,
        remaining=new.remaining,
        refill_period=new.refill.period if new.refill else None,
        refill_amount=new.refill.amount if new.refill else None,
        refill_index=index,
    )
    limits.set_for_key(conn, stored, keep_count)
    change_log.record(conn, "key", record.public_id)
    actor.record(conn, "key.limits", f"key:{record.public_id}", describe(new))
    return key_limits(conn, record)


def set_user_rates(
    conn: Connection, user_id: str, rates: tuple[Rate, ...], *, actor: Actor
) -> None:
    if users.get(conn, user_id) is None:
        raise does_not_exist(f"No user '{user_id}'.")
    limits.set_user_rates(conn, user_id, tuple(str(r) for r in rates))
    change_log.record(conn, "user", user_id)
    actor.record(conn, "user.limits", f"user:{user_id}", "rates=" + ",".join(str(r) for r in rates))


def describe(new: Limits) -> str:
    """For the audit log: what was set, never the key's secret."""
    parts = [f"rates={','.join(str(r) for r in new.rates)}"]
    if new.remaining is not None:
        parts.append(f"remaining={new.remaining}")
    if new.refill is not None:
        parts.append(f"refill={new.refill}")
    parts.append(f"allow={','.join(str(n) for n in new.allow)}")
    if new.methods:
        parts.append(f"methods={','.join(new.methods)}")
    return " ".join(parts)
