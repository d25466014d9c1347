"""Readiness: whether this process can answer requests that need its dependencies.

`/readyz` and the gRPC health service report the same answer: ready when every required
check passes (the database answers `SELECT 1` within the timeout; Redis, when configured and
limited requests are refused without it). A check that is not required (Redis when the
limits fall back to counting in process) is reported as degraded but keeps the server ready:
the operator chose to serve without it. `/healthz` stays liveness: the process runs.
A background task re-checks every few seconds, so the gRPC health service follows the
database going away and coming back without a request asking.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

log = logging.getLogger("scopegate.readiness")

CHECK_TIMEOUT_SECONDS = 2.0
INTERVAL_SECONDS = 2.0
Check = Callable[[], Awaitable[None]]  # raises (or times out) when the dependency is down


def database_check(engine: Engine) -> Check:
    def ping() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()

    async def check() -> None:
        await asyncio.to_thread(ping)

    return check


@dataclass
class Readiness:
    checks: dict[str, Check] = field(default_factory=dict)
    optional: set[str] = field(default_factory=set)  # reported, not required
    timeout: float = CHECK_TIMEOUT_SECONDS
    # Told of each change of state (True: ready): the gRPC health service follows it.
    listeners: list[Callable[[bool], Awaitable[None]]] = field(default_factory=list)
    ready: bool | None = None  # None: not checked yet
    failing: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, check: Check, *, required: bool = True) -> None:
        """Another dependency (Redis, when configured) that must answer, or, not required,
        whose failure is reported only."""
        self.checks[name] = check
        if not required:
            self.optional.add(name)

    async def check(self) -> tuple[bool, dict[str, str]]:
        """Run every check now: (ready, {name: why it failed}), optional checks included
        in what failed but not in whether ready."""
        failing: dict[str, str] = {}

        async def run(name: str, check: Check) -> None:
            try:
                await asyncio.wait_for(check(), self.timeout)
            except TimeoutError:
                failing[name] = f"no answer within {self.timeout:g} s"
            except Exception as exc:  # any failure of a dependency means not ready
                failing[name] = type(exc).__name__

        await asyncio.gather(*(run(name, check) for name, check in self.checks.items()))
        ready = not any(name not in self.optional for name in failing)
        await self._settle(ready, failing)
        return ready, failing

    async def _settle(self, ready: bool, failing: dict[str, str]) -> None:
        before = self.ready
        self.ready, self.failing = ready, failing
        if ready != before:
            if not ready:
                log.warning("not ready: %s", ", ".join(f"{k}: {v}" for k, v in failing.items()))
            elif before is not None:
                log.info("ready again")
            for listener in self.listeners:
                await listener(ready)

    async def watch(self, interval: float = INTERVAL_SECONDS) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # a listener failed; keep checking
                log.warning("readiness check failed", exc_info=True)
            await asyncio.sleep(interval)
