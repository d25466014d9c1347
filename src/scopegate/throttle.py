"""Failed-login throttling, per account and per client address (in-process memory).

A sliding window of failure times per key; once a key has `limit` failures in `window`
seconds it is blocked until the oldest of them ages out. Each instance throttles on its
own: N instances allow at most N times the limit.
"""

from __future__ import annotations

import time
from collections import deque


class Throttle:
    def __init__(self, limit: int, window_seconds: float, *, clock=time.monotonic) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        cutoff = self._clock() - self._window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        failures = self._recent(key)
        if len(failures) < self._limit:
            return 0.0
        return max(0.0, failures[0] + self._window - self._clock())

    def fail(self, key: str) -> None:
        self._failures.setdefault(key, deque()).append(self._clock())

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)
