"""Rate limits counted in this process: a sliding log per window, exact.

A window `N per T` admits a request when fewer than N were admitted in the last T
seconds; the times of admitted requests are kept (at most N per window), so the limit
holds over every interval of length T, not only over aligned ones. A request is checked
against all its windows first and recorded in all of them only if each admits it: a
refused request counts nowhere.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

# Windows are looked at for clean-up once this many exist: those idle for their length go.
SWEEP_AT = 10_000


@dataclass(frozen=True, slots=True)
class Window:
    bucket: str  # what is counted: `k:<key id>:10/1`, `u:<user id>:100/60`
    count: int
    seconds: int


@dataclass(slots=True)
class RateResult:
    """`refused`: the index of the first window that refused, or -1. For each window: the
    requests left after this one (0 when refused) and the seconds until one more frees."""

    refused: int
    retry_after: float
    remaining: list[int]
    reset: list[float]


class LocalRates:
    def __init__(self, clock=time.monotonic) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._clock = clock
        self._sweep_at = SWEEP_AT

    def hit(self, windows: tuple[Window, ...]) -> RateResult:
        now = self._clock()
        logs = self._logs
        found: list[deque[float]] = []
        remaining: list[int] = []
        reset: list[float] = []
        refused, retry_after = -1, 0.0
        for index, window in enumerate(windows):
            log = logs.get(window.bucket)
            if log is None:
                log = logs[window.bucket] = deque()
            horizon = now - window.seconds
            while log and log[0] <= horizon:
                log.popleft()
            found.append(log)
            used = len(log)
            if used >= window.count:
                wait = log[0] - horizon if log else 0.0
                if refused < 0:
                    refused = index
                retry_after = max(retry_after, wait)
                remaining.append(0)
                reset.append(wait)
            else:
                remaining.append(window.count - used - 1)
                reset.append(log[0] - horizon if log else float(window.seconds))
        if refused < 0:
            for log in found:
                log.append(now)
        if len(logs) >= self._sweep_at:
            self._sweep(now)
        return RateResult(refused, retry_after, remaining, reset)

    def _sweep(self, now: float) -> None:
        """Forget windows with nothing in the last day (the longest window)."""
        for bucket in [b for b, log in self._logs.items() if not log or log[-1] <= now - 86400]:
            del self._logs[bucket]
        self._sweep_at = max(SWEEP_AT, 2 * len(self._logs))
