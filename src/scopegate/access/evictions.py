"""The one way a change leaves this process's caches: each cache registers here when it is
built, and every change (one this process committed, or one the change watcher read from
the log) reaches every cache's `evict_change`."""

from __future__ import annotations

from typing import Protocol


class EvictsChanges(Protocol):
    def evict_change(self, subject: str, subject_id: str) -> None:
        """Drop what a change of `subject` (`key`, `session`, `user`, `app`, `org`) affects."""


class Evictions:
    def __init__(self) -> None:
        self._caches: list[EvictsChanges] = []

    def register(self, cache: EvictsChanges) -> None:
        self._caches.append(cache)

    def apply(self, subject: str, subject_id: str) -> None:
        for cache in self._caches:
            cache.evict_change(subject, subject_id)
