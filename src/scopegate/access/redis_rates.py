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

import hashlib
import logging
import os
import time
from itertools import count

from scopegate.access.rate_windows import LocalRates, RateResult, Window
from scopegate.access.redis_pipe import RedisPipe, RedisReplyError, bulk

log = logging.getLogger("scopegate.access.redis_rates")

RETRY_SECONDS = 1.0
COMMANDS_KEPT = 10_000  # encoded commands kept (one per credential's tuple of windows)
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
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()  # how EVALSHA names it


class StoreUnavailable(Exception):
    """Redis could not be asked and the policy is `closed`."""


class RedisRates:
    """Checks made in one turn of the event loop go out in one write on one pipelined
    connection (redis_pipe.py); a check alone still makes one round trip."""

    def __init__(self, url: str, *, fail_open: bool = True, prefix: str = "scopegate:rl:") -> None:
        self._pipe = RedisPipe(url, timeout=TIMEOUT_SECONDS)
        self._prefix = prefix
        self._members = count()
        self._instance = os.urandom(6).hex().encode()
        # Per tuple of windows, the encoded command but for its last argument (the member).
        self._commands: dict[tuple[Window, ...], tuple[bytes, bytes]] = {}
        self.fail_open = fail_open
        self.local = LocalRates()
        self._down_until = 0.0
        self.failures = 0  # for tests and benchmarks

    async def hit(self, windows: tuple[Window, ...]) -> RateResult:
        if time.monotonic() < self._down_until:
            return self._unavailable(windows)
        commands = self._commands.get(windows)
        if commands is None:
            commands = self._commands_for(windows)
        member = b"%s:%d" % (self._instance, next(self._members))
        last = b"$%d\r\n%s\r\n" % (len(member), member)
        try:
            reply = await self._pipe.send(commands[0] + last)
            if isinstance(reply, RedisReplyError) and str(reply).startswith("NOSCRIPT"):
                # Redis restarted and forgot the script: EVAL sends it, and Redis keeps it.
                reply = await self._pipe.send(commands[1] + last)
            if isinstance(reply, RedisReplyError):
                raise reply
        except (RedisReplyError, OSError) as exc:
            self.failures += 1
            self._down_until = time.monotonic() + RETRY_SECONDS
            log.warning(
                "rate limits: Redis unavailable (%s); %s for %gs",
                exc,
                "counting in this process" if self.fail_open else "refusing limited requests",
                RETRY_SECONDS,
            )
            return self._unavailable(windows)
        assert isinstance(reply, list)
        remaining = [int(v) for v in reply[2::2]]
        reset = [int(v) / 1e6 for v in reply[3::2]]
        return RateResult(int(reply[0]) - 1, int(reply[1]) / 1e6, remaining, reset)

    def _commands_for(self, windows: tuple[Window, ...]) -> tuple[bytes, bytes]:
        """EVALSHA and EVAL of the script over these windows, encoded but for the member
        (the same for every check of the windows: worked out once)."""
        args: list[bytes | str | int] = [len(windows)]
        args += [self._prefix + w.bucket for w in windows]
        for w in windows:
            args += (w.count, w.seconds * 1_000_000)
        header = b"*%d\r\n" % (len(args) + 3)  # the command, the script, ..., the member
        common = bulk(tuple(args))
        commands = (
            header + bulk((b"EVALSHA", SCRIPT_SHA)) + common,
            header + bulk((b"EVAL", SCRIPT)) + common,
        )
        if len(self._commands) >= COMMANDS_KEPT:
            self._commands.clear()
        self._commands[windows] = commands
        return commands

    def _unavailable(self, windows: tuple[Window, ...]) -> RateResult:
        if not self.fail_open:
            raise StoreUnavailable
        return self.local.hit(windows)

    async def ping(self) -> None:
        """Raises unless Redis answers (the server's readiness, observability/readiness.py)."""
        reply = await self._pipe.call(b"PING")
        if isinstance(reply, RedisReplyError):
            raise reply

    async def close(self) -> None:
        await self._pipe.close()
