"""Usage quotas, spent exactly through the database: this process takes leases (a few
requests' worth at a time) from the stored count by conditional updates and spends them in
memory, so most requests cost no query and no instance ever hands out more than stored.

A lease is sized from what was left (at most 1/32 of it) and from how fast the last one was
spent (doubled when it lasted under LEASE_SECONDS, halved when it lasted over twice that,
at most MAX_LEASE): small quotas are spent one request per update, exactly; a busy key
takes about two updates a second whatever its rate. What a lease
leaves unspent goes back at shutdown; after a crash it stays unavailable (under-spent,
never over-spent). A lease ends when the key's limits change (their stored revision) or a
refill period begins.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from scopegate.auth.limits import Refill, period_index
from scopegate.store import limits as stored

MAX_LEASE = 4096
LEASE_SECONDS = 0.5
# After the stored count was found empty, it is asked again no sooner than this.
EXHAUSTED_RECHECK_SECONDS = 1.0


@dataclass(slots=True, eq=False)
class Lease:
    revision: int  # of the key's limits it was taken under: a change to them ends it
    period: int | None
    held: int = 0
    stored_left: int = 0  # the stored count when last read
    size: int = 1  # of the next lease (see the module's docstring)
    taken_at: float = 0.0  # monotonic time of the last lease
    exhausted_at: float = -1e18
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class QuotaLeases:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._leases: dict[int, Lease] = {}
        self.takes = 0  # queries made; for tests and benchmarks

    def _lease(self, key_pk: int, revision: int, period: int | None, stored_left: int) -> Lease:
        lease = self._leases.get(key_pk)
        if lease is None or lease.revision != revision or lease.period != period:
            lease = self._leases[key_pk] = Lease(revision, period, stored_left=stored_left)
        return lease

    async def take(
        self, key_pk: int, revision: int, refill: Refill | None, stored_left: int
    ) -> tuple[bool, int]:
        """Spend one request: (whether there was one, how many are left as far as this
        process knows)."""
        period = period_index(refill.period, datetime.now(UTC)) if refill else None
        lease = self._lease(key_pk, revision, period, stored_left)
        if lease.held > 0:
            lease.held -= 1
            return True, lease.held + lease.stored_left
        async with lease.lock:
            if lease.held > 0:  # another request refilled it meanwhile
                lease.held -= 1
                return True, lease.held + lease.stored_left
            if time.monotonic() - lease.exhausted_at < EXHAUSTED_RECHECK_SECONDS:
                return False, 0
            now = time.monotonic()
            if now - lease.taken_at < LEASE_SECONDS:
                lease.size = min(MAX_LEASE, lease.size * 2)
            elif now - lease.taken_at > 2 * LEASE_SECONDS:
                lease.size = max(1, lease.size // 2)
            lease.taken_at = now
            size = max(1, min(lease.size, lease.stored_left // 32))
            taken, left = await asyncio.to_thread(self._take, key_pk, revision, size, period)
            lease.stored_left = left
            if not taken:
                lease.exhausted_at = time.monotonic()
                return False, 0
            lease.held += taken - 1
            return True, lease.held + left

    def _take(self, key_pk: int, revision: int, size: int, period: int | None) -> tuple[int, int]:
        self.takes += 1
        with self._engine.begin() as conn:
            return stored.take(conn, key_pk, revision, size, period)

    def give_back_one(self, key_pk: int, revision: int) -> None:
        """A request that spent one and was then refused (by a rate): it counts nothing."""
        lease = self._leases.get(key_pk)
        if lease is not None and lease.revision == revision:
            lease.held += 1

    def held(self, key_pk: int) -> int:
        lease = self._leases.get(key_pk)
        return lease.held if lease is not None else 0

    def give_back_all(self) -> None:
        """At shutdown: what leases left unspent returns to the stored counts."""
        leases, self._leases = self._leases, {}
        with self._engine.begin() as conn:
            for key_pk, lease in leases.items():
                if lease.held > 0:
                    stored.give_back(conn, key_pk, lease.revision, lease.held, lease.period)
