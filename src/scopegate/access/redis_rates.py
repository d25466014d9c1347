"""Rate limits shared by every instance through Redis (or Valkey): the same sliding log as
rate_windows.py, kept in one sorted set per window, checked and recorded by one Lua script
(one round trip, atomic: no two instances can both take the last place in a window).
The script reads Redis's own clock, so instances' clocks need not agree.

When Redis cannot be reached the configured policy decides (`--limits-on-store-failure`):
`open` counts in this process instead (each instance then holds the limit on its own, so
N instances may admit up to N times it) and logs a warning; `closed` refuses. After a
failure Redis is not asked again for a second, so an outage costs no timeout per request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from itertools import count

from scopegate.access.rate_windows import LocalRates, RateResult, Window

log = logging.getLogger("scopegate.access.redis_rates")

RETRY_SECONDS = 1.0
TIMEOUT_SECONDS = 0.5

# KEYS: one sorted set per window. ARGV: count and length (microseconds) of each window,
# then a member name unique to this request. Returns the index (1-based) of the first
# window that refused or 0, the wait in microseconds, then per window the requests left
# and the microseconds until its oldest entry leaves it.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local refused, wait = 0, 0
local out = {}
for i = 1, n do
  local limit = tonumber(ARGV[2 * i - 1])
  local length = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - length)
  local used = redis.call('ZCARD', KEYS[i])
  local reset = length
  if used > 0 then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    reset = tonumber(oldest[2]) + length - now
  end
  if used >= limit then
    if refused == 0 then refused = i end
    if reset > wait then wait = reset end
    out[2 * i - 1] = 0
  else
    out[2 * i - 1] = limit - used - 1
  end
  out[2 * i] = reset
end
if refused == 0 then
  local member = ARGV[2 * n + 1]
  for i = 1, n do
    redis.call('ZADD', KEYS[i], now, member)
    redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[2 * i]) / 1000))
  end
end
table.insert(out, 1, wait)
table.insert(out, 1, refused)
return out
"""


class StoreUnavailable(Exception):
    """Redis could not be asked and the policy is `closed`."""


Pending = tuple[list[str], list, "asyncio.Future[list]"]


class RedisRates:
    """Checks go out in batches: those made in one turn of the event loop share one
    pipeline (one write, one read), which costs the server about half the CPU per check of
    one round trip each under load; a check alone still makes one round trip."""

    def __init__(self, url: str, *, fail_open: bool = True, prefix: str = "scopegate:rl:") -> None:
        import redis.asyncio as redis  # only servers configured with Redis load the client
        from redis.exceptions import NoScriptError

        self._client = redis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            retry_on_timeout=False,
        )
        self._errors = (redis.RedisError, OSError)
        self._no_script = NoScriptError
        self._sha: str | None = None
        self._pending: list[Pending] = []
        self._prefix = prefix
        self._members = count()
        self._instance = os.urandom(6).hex()
        self.fail_open = fail_open
        self.local = LocalRates()
        self._down_until = 0.0
        self.failures = 0  # for tests and benchmarks

    async def hit(self, windows: tuple[Window, ...]) -> RateResult:
        if time.monotonic() < self._down_until:
            return self._unavailable(windows)
        keys = [self._prefix + w.bucket for w in windows]
        args: list[int | str] = []
        for w in windows:
            args += (w.count, w.seconds * 1_000_000)
        args.append(f"{self._instance}:{next(self._members)}")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list] = loop.create_future()
        self._pending.append((keys, args, done))
        if len(self._pending) == 1:
            loop.call_soon(self._start_flush)
        try:
            reply = await done
        except self._errors as exc:
            self.failures += 1
            self._down_until = time.monotonic() + RETRY_SECONDS
            log.warning(
                "rate limits: Redis unavailable (%s); %s for %gs",
                type(exc).__name__,
                "counting in this process" if self.fail_open else "refusing limited requests",
                RETRY_SECONDS,
            )
            return self._unavailable(windows)
        refused = int(reply[0]) - 1
        remaining = [int(v) for v in reply[2::2]]
        reset = [int(v) / 1e6 for v in reply[3::2]]
        return RateResult(refused, int(reply[1]) / 1e6, remaining, reset)

    def _start_flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._flush(batch))
        task.add_done_callback(_tasks.discard)
        _tasks.add(task)

    async def _flush(self, batch: list[Pending]) -> None:
        try:
            replies = await self._send(batch)
            again = [i for i, r in enumerate(replies) if isinstance(r, self._no_script)]
            if again:  # Redis restarted and forgot the script: load it once more
                self._sha = None
                retried = await self._send([batch[i] for i in again])
                for i, reply in zip(again, retried, strict=True):
                    replies[i] = reply
        except Exception as exc:
            for *_, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for (*_, done), reply in zip(batch, replies, strict=True):
            if done.done():
                continue
            if isinstance(reply, Exception):
                done.set_exception(reply)
            else:
                done.set_result(reply)

    async def _send(self, batch: list[Pending]) -> list:
        if self._sha is None:
            self._sha = await self._client.script_load(SCRIPT)
        if len(batch) == 1:  # alone: a plain command costs less than a pipeline of one
            keys, args, _ = batch[0]
            try:
                return [await self._client.evalsha(self._sha, len(keys), *keys, *args)]
            except self._no_script as exc:
                return [exc]
        pipe = self._client.pipeline(transaction=False)
        for keys, args, _ in batch:
            pipe.evalsha(self._sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)

    def _unavailable(self, windows: tuple[Window, ...]) -> RateResult:
        if not self.fail_open:
            raise StoreUnavailable
        return self.local.hit(windows)

    async def ping(self) -> None:
        """Raises unless Redis answers (the server's readiness, observability/readiness.py)."""
        await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()


# Flushes in flight, held so that the event loop does not lose them.
_tasks: set[asyncio.Task] = set()
