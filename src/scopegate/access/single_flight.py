"""One load per key at a time, for the caches in front of the database.

When a cache entry is missing, every request that needs it misses together: 256 requests
arriving on a cold cache would otherwise run 256 identical queries, each in a worker
thread. Here the first starts the load and the others await that same load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

V = TypeVar("V")


class SingleFlight(Generic[V]):
    def __init__(self) -> None:
        self._loads: dict[Hashable, asyncio.Future[V]] = {}

    async def run(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        """`load()`'s result (or exception), shared by every caller asking for `key` while
        it runs. A caller that is cancelled leaves the load running for the others."""
        task = self._loads.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self._loads[key] = task
            task.add_done_callback(partial(self._finished, key))
        return await asyncio.shield(task)

    @property
    def busy(self) -> bool:
        """Whether a load is in flight."""
        return bool(self._loads)

    def forget(self) -> None:
        """Later callers start a fresh load: what the loads in flight read may be stale."""
        self._loads.clear()

    def _finished(self, key: Hashable, task: asyncio.Future[V]) -> None:
        if self._loads.get(key) is task:
            del self._loads[key]
        if not task.cancelled():
            task.exception()  # marked as retrieved even if every caller has gone
