"""Failed-login throttling, per account and per client address (in-process memory).

A sliding window of attempt times per key; once a key has `limit` of them in `window`
seconds it is blocked until the oldest ages out. An attempt is counted *before* its
password is checked (`reserve`) and forgotten again only when the password was right
(`release`): checking first and counting after would let N concurrent guesses all pass
the check. Each instance throttles on its own: N instances allow at most N times the limit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable


class Throttle:
    def __init__(
        self, limit: int, window_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
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

    def fail(self, key: str) -> float:
        """Count an attempt; returns its time, which `release` takes to forget it."""
        at = self._clock()
        self._failures.setdefault(key, deque()).append(at)
        return at

    def release(self, key: str, at: float) -> None:
        """Forget one counted attempt (it turned out to be a success)."""
        failures = self._failures.get(key)
        if failures is not None:
            with contextlib.suppress(ValueError):  # already aged out
                failures.remove(at)
            if not failures:
                del self._failures[key]

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


class Reservation:
    """Attempts counted on several throttles at once, atomically: either every key had
    room and each now counts one more attempt, or none was counted."""

    _lock = threading.Lock()  # one for all throttles: a reservation spans two of them

    def __init__(self, *entries: tuple[Throttle, str]) -> None:
        self._entries = entries
        self._times: list[float] = []

    def take(self) -> float:
        """0 when reserved; otherwise the seconds to wait, and nothing was counted."""
        with self._lock:
            wait = max(throttle.retry_after(key) for throttle, key in self._entries)
            if wait <= 0:
                self._times = [throttle.fail(key) for throttle, key in self._entries]
            return wait

    def release(self) -> None:
        with self._lock:
            for (throttle, key), at in zip(self._entries, self._times, strict=True):
                throttle.release(key, at)
            self._times = []

    def clear(self, throttle: Throttle, key: str) -> None:
        with self._lock:
            throttle.clear(key)
