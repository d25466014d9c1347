"""Usage read back: a time window, and the JSON document the usage routes, the CLI and
the portal show (series by outcome, methods, credentials, client addresses)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from scopegate.contract.status import invalid_argument
from scopegate.store import usage as store
from scopegate.store.usage import CountRow

Document = dict[str, Any]
GRANULARITIES = ("hour", "day")
DEFAULT_DAYS = 30
MAX_HOURS = 31 * 24  # an hourly series spans a month at most
MAX_DAYS = 3660
TOP_METHODS = 20


@dataclass(frozen=True, slots=True)
class Window:
    from_hour: int  # hours since the epoch, inclusive
    to_hour: int  # exclusive
    granularity: str  # "hour" or "day"

    @property
    def step(self) -> int:
        return 1 if self.granularity == "hour" else 24


def _hour(at: datetime) -> int:
    return int(at.timestamp()) // 3600


def _at(hour: int) -> str:
    return datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(name: str, text: str) -> datetime:
    raw = text.strip()
    try:
        at = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise invalid_argument(
            f"'{name}' must be a date or a time in ISO 8601 (2024-06-01 or "
            f"2024-06-01T12:00:00Z); got '{text[:40]}'."
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def window(query: dict[str, str], *, days: int = DEFAULT_DAYS, now: float | None = None) -> Window:
    """The window `from`, `to` and `granularity` name: by default the last `days` days, by
    day, up to the current hour; widened to whole hours (whole days, by day)."""
    granularity = query.get("granularity") or "day"
    if granularity not in GRANULARITIES:
        raise invalid_argument(f"'granularity' must be 'hour' or 'day', not '{granularity[:20]}'.")
    step = 1 if granularity == "hour" else 24
    now_hour = int(now if now is not None else time.time()) // 3600
    to_hour = now_hour + 1
    if query.get("to"):
        # A date includes its day; a time is the end, rounded up to a whole hour.
        end = _parse_time("to", query["to"])
        if len(query["to"].strip()) == 10:
            end += timedelta(days=1)
        to_hour = -(-int(end.timestamp()) // 3600)
    from_hour = to_hour - days * 24
    if query.get("from"):
        from_hour = _hour(_parse_time("from", query["from"]))
    from_hour -= from_hour % step
    if to_hour % step:
        to_hour += step - to_hour % step
    if from_hour >= to_hour:
        raise invalid_argument("'from' must be before 'to'.")
    if granularity == "hour" and to_hour - from_hour > MAX_HOURS:
        raise invalid_argument(
            "An hourly series spans 31 days at most: narrow 'from'/'to' or use granularity=day."
        )
    if to_hour - from_hour > MAX_DAYS * 24:
        raise invalid_argument("A series spans 3660 days at most: narrow 'from'/'to'.")
    return Window(from_hour, to_hour, granularity)


def _sum(into: dict[str, int], outcome: str, count: int) -> None:
    into[outcome] = into.get(outcome, 0) + count


def _ranked(table: dict[str, dict[str, int]], name: str, limit: int | None = None) -> list:
    entries: list[Document] = [
        {name: key, "total": sum(outcomes.values()), "outcomes": outcomes}
        for key, outcomes in table.items()
    ]
    entries.sort(key=lambda entry: (-entry["total"], entry[name]))
    return entries[:limit] if limit else entries


def report(
    rows: Iterable[CountRow],
    span: Window,
    addresses: dict[str, int],
    *,
    by_credential: bool = False,
    top_addresses: int = 20,
) -> Document:
    """Counts in `span`: a series of buckets (those with requests), each by outcome; the
    totals; the most called methods; by credential when asked; the client addresses."""
    buckets: dict[int, dict[str, int]] = defaultdict(dict)
    daily: set[int] = set()
    totals: dict[str, int] = {}
    methods: dict[str, dict[str, int]] = defaultdict(dict)
    credentials: dict[str, dict[str, int]] = defaultdict(dict)
    callers: dict[str, str] = {}
    for row in rows:
        start = row.start_hour - row.start_hour % span.step
        if row.hours > span.step:
            daily.add(start)
        _sum(buckets[start], row.outcome, row.count)
        _sum(totals, row.outcome, row.count)
        _sum(methods[row.method], row.outcome, row.count)
        if by_credential:
            _sum(credentials[row.credential_id], row.outcome, row.count)
            callers[row.credential_id] = row.caller_id
    series = []
    for start in sorted(buckets):
        entry: Document = {"start": _at(start), "outcomes": buckets[start]}
        entry["total"] = sum(buckets[start].values())
        if start in daily:
            entry["hours"] = 24  # rolled up: the day's count, at its first hour
        series.append(entry)
    document: Document = {
        "from": _at(span.from_hour),
        "to": _at(span.to_hour),
        "granularity": span.granularity,
        "total": sum(totals.values()),
        "outcomes": totals,
        "series": series,
        "methods": _ranked(methods, "method", TOP_METHODS),
    }
    if by_credential:
        ranked = _ranked(credentials, "credential_id")
        for entry in ranked:
            entry["user_id"] = callers[entry["credential_id"]]
        document["credentials"] = ranked
    top = sorted(addresses.items(), key=lambda item: (-item[1], item[0]))[:top_addresses]
    document["addresses"] = [{"address": address, "count": count} for address, count in top]
    return document


def key_report(conn: Connection, credential_id: str, span: Window) -> Document:
    """A credential's usage on every account and app it was used on."""
    rows = store.counts(conn, span.from_hour, span.to_hour, credential_ids=[credential_id])
    seen = store.addresses(conn, [credential_id], span.from_hour // 24, -(-span.to_hour // 24))
    return report(rows, span, seen)


def app_report(
    conn: Connection,
    owner_id: str,
    app_id: str,
    span: Window,
    shown: Callable[[CountRow], CountRow | None],
    addresses_of: Callable[[CountRow], bool],
) -> Document:
    """An app's usage by credential and method: each row as `shown` gives it (None: not
    shown); the client addresses of the credentials `addresses_of` keeps (a credential's
    addresses are its own, across every app: shown only to whom its use may be shown)."""
    rows = []
    for row in store.counts(conn, span.from_hour, span.to_hour, owner_id=owner_id, app_id=app_id):
        kept = shown(row)
        if kept is not None:
            rows.append(kept)
    credentials = sorted(
        {row.credential_id for row in rows if row.credential_id and addresses_of(row)}
    )
    seen = store.addresses(conn, credentials, span.from_hour // 24, -(-span.to_hour // 24))
    return report(rows, span, seen, by_credential=True)


def recent_totals(conn: Connection, credential_ids: list[str], days: int = 7) -> dict[str, int]:
    """Requests per credential over the last `days` days (the Security page's column)."""
    since = int(time.time()) // 3600 - days * 24
    return store.totals(conn, credential_ids, since)
