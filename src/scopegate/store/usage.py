"""Usage counts and client addresses: batched increments, the rollup, and the reads.

Every write adds to what is stored (`count = count + excluded.count`), so instances
sharing a database each add their own counts and none overwrites another's. Rows are
written in key order, so two instances upserting overlapping batches on PostgreSQL take
their row locks in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from scopegate.store.schema import usage_addresses, usage_counts

HOUR, DAY = 1, 24  # the `hours` of a row
# (start_hour, credential_id, caller_id, owner_id, app_id, method, outcome)
CountKey = tuple[int, str, str, str, str, str, str]
_KEY_COLUMNS = ("hours", "start_hour", "credential_id", "owner_id", "app_id", "method", "outcome")
_BATCH = 500


@dataclass(frozen=True, slots=True)
class CountRow:
    hours: int
    start_hour: int
    credential_id: str
    caller_id: str
    owner_id: str
    app_id: str
    method: str
    outcome: str
    count: int


def _insert(conn: Connection, table):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _add(conn: Connection, table, keys: Sequence[str], rows: list[dict]) -> None:
    """Insert `rows`, adding each count to the row already stored under the same key."""
    if not rows:
        return
    rows.sort(key=lambda row: tuple(row[k] for k in keys))
    statement = _insert(conn, table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={"count": table.c["count"] + statement.excluded["count"]}
    )
    for start in range(0, len(rows), _BATCH):
        conn.execute(statement, rows[start : start + _BATCH])


def add_counts(conn: Connection, counts: dict[CountKey, int], hours: int = HOUR) -> None:
    rows = [
        {
            "hours": hours,
            "start_hour": start,
            "credential_id": credential,
            "caller_id": caller,
            "owner_id": owner,
            "app_id": app,
            "method": method,
            "outcome": outcome,
            "count": count,
        }
        for (start, credential, caller, owner, app, method, outcome), count in counts.items()
    ]
    _add(conn, usage_counts, _KEY_COLUMNS, rows)


def add_addresses(conn: Connection, seen: dict[tuple[int, str, str], int], keep: int) -> None:
    """Add (day, credential, address) counts, then keep only each touched day's `keep`
    most counted addresses of each credential (ties: the smaller address)."""
    rows = [
        {"day": day, "credential_id": credential, "address": address, "count": count}
        for (day, credential, address), count in seen.items()
    ]
    _add(conn, usage_addresses, ("credential_id", "day", "address"), rows)
    for day, credential in sorted({(day, credential) for day, credential, _ in seen}):
        where = and_(usage_addresses.c.credential_id == credential, usage_addresses.c.day == day)
        top = (
            select(usage_addresses.c.address)
            .where(where)
            .order_by(usage_addresses.c.count.desc(), usage_addresses.c.address)
            .limit(keep)
        )
        conn.execute(delete(usage_addresses).where(where, usage_addresses.c.address.not_in(top)))


def roll_up(conn: Connection, before_hour: int) -> int:
    """Fold the hourly rows that started before `before_hour` (a day's first hour) into one
    row a day; how many hourly rows went. The rows are deleted first and their counts added
    from what the delete returned: an instance rolling up at the same time deletes nothing
    the first did (PostgreSQL's row locks, SQLite's one writer), so nothing counts twice."""
    deleted = conn.execute(
        delete(usage_counts)
        .where(usage_counts.c.hours == HOUR, usage_counts.c.start_hour < before_hour)
        .returning(*(usage_counts.c[name] for name in (*_KEY_COLUMNS, "caller_id", "count")))
    ).all()
    daily: dict[CountKey, int] = defaultdict(int)
    for row in deleted:
        day_start = row.start_hour - row.start_hour % DAY
        key = (day_start, row.credential_id, row.caller_id, row.owner_id, row.app_id)
        daily[(*key, row.method, row.outcome)] += row.count
    add_counts(conn, daily, hours=DAY)
    return len(deleted)


def forget_addresses(conn: Connection, before_day: int) -> None:
    conn.execute(delete(usage_addresses).where(usage_addresses.c.day < before_day))


def counts(
    conn: Connection,
    from_hour: int,
    to_hour: int,
    *,
    credential_ids: Iterable[str] | None = None,
    owner_id: str | None = None,
    app_id: str | None = None,
    caller_id: str | None = None,
) -> list[CountRow]:
    """Rows (hourly and daily) that start in [from_hour, to_hour), filtered as given."""
    c = usage_counts.c
    query = select(
        c.hours,
        c.start_hour,
        c.credential_id,
        c.caller_id,
        c.owner_id,
        c.app_id,
        c.method,
        c.outcome,
        c["count"],
    ).where(c.start_hour >= from_hour, c.start_hour < to_hour)
    if credential_ids is not None:
        query = query.where(c.credential_id.in_(list(credential_ids)))
    if owner_id is not None:
        query = query.where(c.owner_id == owner_id)
    if app_id is not None:
        query = query.where(c.app_id == app_id)
    if caller_id is not None:
        query = query.where(c.caller_id == caller_id)
    return [CountRow(*row) for row in conn.execute(query.order_by(c.start_hour))]


def totals(conn: Connection, credential_ids: Sequence[str], from_hour: int) -> dict[str, int]:
    """Requests per credential since `from_hour` (every outcome)."""
    if not credential_ids:
        return {}
    c = usage_counts.c
    query = (
        select(c.credential_id, func.sum(c["count"]))
        .where(c.credential_id.in_(list(credential_ids)), c.start_hour >= from_hour)
        .group_by(c.credential_id)
    )
    return {credential: int(total) for credential, total in conn.execute(query)}


def addresses(
    conn: Connection, credential_ids: Sequence[str], from_day: int, to_day: int
) -> dict[str, int]:
    """Requests per client address of these credentials over [from_day, to_day)."""
    if not credential_ids:
        return {}
    a = usage_addresses.c
    query = (
        select(a.address, func.sum(a["count"]))
        .where(a.credential_id.in_(list(credential_ids)), a.day >= from_day, a.day < to_day)
        .group_by(a.address)
    )
    return {address: int(total) for address, total in conn.execute(query)}
