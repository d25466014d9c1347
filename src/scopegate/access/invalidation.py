"""Polls the change log so every process drops what other processes changed (revoked
credentials, grants, memberships) within the poll interval, and writes coalesced
`last_used_at` updates. This process's own changes leave its caches at commit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from scopegate.access.authentication import Authenticator
from scopegate.access.evictions import EvictsChanges
from scopegate.access.relations import RelationResolver
from scopegate.store import changes, keys
from scopegate.store.records import now

log = logging.getLogger("scopegate.access.invalidation")


# How often the change log is read (the bound on a revocation reaching other instances)
# and how often last-used times are written.
POLL_SECONDS = 0.25
LAST_USED_SECONDS = 5.0


class ChangeWatcher:
    def __init__(
        self,
        engine: Engine,
        authenticator: Authenticator,
        relations: RelationResolver,
        *,
        poll_seconds: float = POLL_SECONDS,
        last_used_seconds: float = LAST_USED_SECONDS,
        flushers: Sequence[Callable[[], None]] = (),
    ) -> None:
        self._engine = engine
        self._authenticator = authenticator
        self._relations = relations
        self._poll = poll_seconds
        self._last_used_every = last_used_seconds
        self._last_id = 0
        # Read by the metrics: when the log was last read (wall clock; 0: not yet), how many
        # changes were applied, how many reads failed.
        self.last_poll = 0.0
        self.applied = 0
        self.poll_failures = 0
        # Other batched writes at the same cadence (usage counts), run in a thread.
        self._flushers = tuple(flushers)
        # Other caches another process's changes must reach (organizations' policies).
        self.also: list[EvictsChanges] = []

    def start_position(self) -> None:
        with self._engine.connect() as conn:
            self._last_id = changes.latest_id(conn)
            self._authenticator.accept_legacy = keys.legacy_secrets_may_exist(conn, now())

    def _poll_once(self) -> tuple[list[tuple[int, str, str]], bool]:
        """New changes, and whether one of them is a key holding an imported secret
        (checked only while this process refuses the legacy format unseen)."""
        with self._engine.connect() as conn:
            new = changes.since(conn, self._last_id)
            imported = False
            if not self._authenticator.accept_legacy:
                changed_keys = {subject_id for _, subject, subject_id in new if subject == "key"}
                imported = keys.any_imported(conn, changed_keys)
            return new, imported

    def flush_last_used(self) -> None:
        used = self._authenticator.take_last_used()
        if used:
            with self._engine.begin() as conn:
                keys.touch_last_used(conn, used)

    def flush(self) -> None:
        """Every batched write: last-used times, then the other flushers'."""
        self.flush_last_used()
        for flush in self._flushers:
            flush()

    def apply(self, subject: str, subject_id: str) -> None:
        """Evict what one change another process made affects from this process's caches,
        through the caches' own entry points (those this process's changes reach at commit,
        see `access.evictions`)."""
        self._authenticator.evict_change(subject, subject_id)
        self._relations.evict_change(subject, subject_id)
        for cache in self.also:
            cache.evict_change(subject, subject_id)

    async def run(self) -> None:
        next_flush = time.monotonic() + self._last_used_every
        while True:
            try:
                new, imported = await asyncio.to_thread(self._poll_once)
                self.last_poll = time.time()
                if imported:  # once on, stays on: a deleted import is refused by the query
                    self._authenticator.accept_legacy = True
                for change_id, subject, subject_id in new:
                    self._last_id = change_id
                    self.apply(subject, subject_id)
                self.applied += len(new)
                if time.monotonic() >= next_flush:
                    next_flush = time.monotonic() + self._last_used_every
                    await asyncio.to_thread(self.flush)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly unavailable; keep serving
                self.poll_failures += 1
                log.warning("credential change poll failed", exc_info=True)
            await asyncio.sleep(self._poll)
