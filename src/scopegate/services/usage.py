"""Usage counts: every dispatched request counted in memory by hour, credential, target,
method and outcome, and written in batches with the last-used times (never a write per
request); hourly rows past the retention rolled up into daily ones.

What a request is attributed to: the credential that authenticated it, and the account and
app it named (after `me` and an API key's app are filled in); an expired key's attempts
(refused at authentication, the key named in the outcome) under the key and no app. A
request refused before there is a credential (a malformed, unknown or revoked secret, a bad
request shape, garbage credentials refused at the REST gate before dispatch) counts under
no credential and no app: the names it carried are the caller's to invent, so they are not
trusted as keys of anything stored, and no route shows these counts (they are in the table,
under credential '').

Outcomes are an open set of short names: `allowed`; `failed` (authorized, then answered with
an error by the method: not found, invalid request, not implemented); `bad_request`,
`invalid_credential`, `insufficient_scopes`, `not_visible`, `throttled` (rate limits, failed
authentications), `over_quota`, `address_not_allowed` (a key's allowed addresses), or
`refused` for a refusal of a kind not named here. Readers must accept names they do not
know.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from scopegate.contract.status import C
from scopegate.store import usage as store
from scopegate.store.schema import ID_LENGTH

log = logging.getLogger("scopegate.services.usage")

RETENTION_DAYS = 90  # hourly rows are kept this long, then rolled up into daily rows
TOP_ADDRESSES = 20  # client addresses kept per credential and day
ROLLUP_SECONDS = 3600.0  # how often an instance rolls up (each is harmless, see store)
# Distinct keys held between two writes; past it, a new target or client address is
# counted as no app and no address (a caller naming random app ids cannot grow memory).
MAX_KEYS = 100_000
# What `observe` counts: a count key (store.CountKey) and the client as the transport gave it.
Pending = tuple[int, str, str, str, str, str, str, str]

ALLOWED = "allowed"
FAILED = "failed"
NOT_VISIBLE = "not_visible"
OUTCOMES = (
    ALLOWED,
    FAILED,
    "bad_request",
    "invalid_credential",
    "insufficient_scopes",
    NOT_VISIBLE,
    "throttled",
    "over_quota",
    "address_not_allowed",
    "refused",
)
_NOT_VISIBLE = frozenset({C.CONN_DOES_NOT_EXIST, C.CONN_KEY_INVALID})


@dataclass(frozen=True, slots=True)
class UsageSettings:
    counting: bool = True  # SCOPEGATE_USAGE_COUNTING=0 turns it off
    retention_days: int = RETENTION_DAYS
    top_addresses: int = TOP_ADDRESSES


def outcome_kind(stage: str, code: int | None) -> str:
    """The outcome a request came to, from the stage that answered and its status code."""
    if code is None:
        return ALLOWED
    if code == C.CONN_THROTTLED:
        return "throttled"
    if stage == "handler":
        return FAILED
    if stage == "request":
        return "bad_request"
    if stage == "authentication":
        return "invalid_credential"
    if stage == "authorization":
        if code == C.CONN_INSUFFICIENT_SCOPES:
            return "insufficient_scopes"
        return NOT_VISIBLE if code in _NOT_VISIBLE else "refused"
    if stage == "limits":
        if code == C.CONN_EXCEEDS_LIMITS:
            return "over_quota"
        return "address_not_allowed" if code == C.CONN_KEY_INVALID else "refused"
    return "refused"


def client_address(peer: str) -> str:
    """The address of a peer as the transports give it: REST's host as is, gRPC's
    `ipv4:1.2.3.4:5678` / `ipv6:[::1]:5678` without the scheme and the port."""
    if peer.startswith("ipv4:"):
        peer = peer[5:].rpartition(":")[0] or peer[5:]
    elif peer.startswith("ipv6:"):
        peer = peer[5:]
        if peer.startswith("["):
            peer = peer[1:].partition("]")[0]
    return peer[:64]


class UsageCounter:
    """The dispatcher's observer: counts in memory, written by `flush` (from the change
    watcher's thread, at the last-used cadence, and once more at shutdown)."""

    def __init__(
        self,
        engine: Engine,
        settings: UsageSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self.settings = settings or UsageSettings()
        self._clock = clock
        # The request path takes this lock for one dict update; `take` swaps the dict under
        # it, so no increment lands in a batch already being written.
        self._lock = threading.Lock()
        self._pending: dict[Pending, int] = {}
        self._next_rollup = 0.0

    def observe(self, outcome: Any) -> None:
        """Count one dispatched request (an `Outcome` of dispatch.py): one tuple and one
        dictionary update, under the lock."""
        error = outcome.error
        kind = ALLOWED if error is None else outcome_kind(outcome.stage, error.code)
        hour = int(self._clock()) // 3600
        method = outcome.call.spec.name
        principal = outcome.principal
        if principal is None:
            key: Pending = (hour, "", "", "", "", method, kind, "")
        else:
            target = outcome.target
            owner, app = (target.user_id, target.app_id) if target is not None else ("", "")
            if len(owner) > ID_LENGTH or len(app) > ID_LENGTH:
                owner, app = "", ""  # names nothing that can exist
            credential = principal.credential_id
            caller, peer = principal.user_id, outcome.call.peer
            key = (hour, credential, caller, owner, app, method, kind, peer)
        with self._lock:
            counts = self._pending
            try:
                counts[key] += 1
            except KeyError:
                if len(counts) >= MAX_KEYS:  # no new target nor address: the credential's own
                    key = (hour, key[1], key[2], "", "", method, kind, "")
                    counts[key] = counts.get(key, 0) + 1
                else:
                    counts[key] = 1

    def take(self) -> dict[Pending, int]:
        with self._lock:
            taken, self._pending = self._pending, {}
        return taken

    def _give_back(self, taken: dict[Pending, int]) -> None:
        with self._lock:
            for key, count in taken.items():
                self._pending[key] = self._pending.get(key, 0) + count

    def flush(self) -> None:
        """Write what was counted since the last flush (kept for the next one if the
        database fails), and roll up old rows about once an hour."""
        taken = self.take()
        if taken:
            counts: dict[store.CountKey, int] = {}
            addresses: dict[tuple[int, str, str], int] = {}
            for (hour, credential, caller, owner, app, method, kind, peer), count in taken.items():
                key = (hour, credential, caller, owner, app, method, kind)
                counts[key] = counts.get(key, 0) + count
                if credential and peer:
                    at = (hour // 24, credential, client_address(peer))
                    addresses[at] = addresses.get(at, 0) + count
            try:
                with self._engine.begin() as conn:
                    store.add_counts(conn, counts)
                    store.add_addresses(conn, addresses, self.settings.top_addresses)
            except Exception:
                self._give_back(taken)
                raise
        if time.monotonic() >= self._next_rollup:
            self._next_rollup = time.monotonic() + ROLLUP_SECONDS
            self.roll_up()

    def roll_up(self, now: float | None = None) -> int:
        return roll_up(self._engine, self.settings.retention_days, now or self._clock())


def roll_up(engine: Engine, retention_days: int, now: float) -> int:
    """Fold hourly rows of the days before the last `retention_days` into daily rows, and
    forget those days' addresses; how many hourly rows were folded."""
    first_day = int(now) // 86400 - retention_days
    with engine.begin() as conn:
        folded = store.roll_up(conn, first_day * 24)
        store.forget_addresses(conn, first_day)
    if folded:
        log.info("usage: %d hourly rows before day %d rolled up into days", folded, first_day)
    return folded
