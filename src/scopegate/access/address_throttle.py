"""Failed authentications, throttled per client address: a tarpit for floods of bad secrets.

Each address may fail authentication `limit` times in a window of `window` seconds (the
window starts at its first failure) and gets the usual answers. Beyond that, until the
window ends, every further failure is answered `CONN_THROTTLED` (HTTP 429, `Retry-After`)
after `delay` seconds. The delay is an `asyncio.sleep`: no thread, no CPU. A client that
waits for each answer (as HTTP/1.1 keep-alive and most flood tools do) then gets at most
one failure per connection per `delay`, so a flood can no longer take the CPU it takes
by sending as fast as it is answered.

Successful requests are never counted, delayed or refused, so a valid client sharing an
address (a NAT, a proxy, the benchmark's 127.0.0.1) with a flooder keeps working. A
success does not reset the count either: one valid key must not launder a flood.

Memory is bounded: at most `max_addresses` entries (oldest windows dropped first, which
at worst lets a dropped address start a new window) and at most `max_waiting` requests
asleep at once (beyond that the 429 is answered without the delay). IPv6 addresses are
counted per /64, the block one host usually controls. Each process counts on its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Callable
from urllib.parse import unquote

from scopegate.contract.status import ApiError, C

DEFAULT_MAX_ADDRESSES = 65_536
DEFAULT_MAX_WAITING = 4_096


class ThrottledError(ApiError):
    """`CONN_THROTTLED`, with the seconds until the address's window ends."""

    def __init__(
        self,
        retry_after: float,
        description: str = "Too many failed authentications",
        too_many: str = "failed authentications from this address",
    ) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(
            C.CONN_THROTTLED,
            description,
            f"Too many {too_many}; try again in {self.retry_after} seconds.",
            http_status=429,
        )


def address_key(peer: str) -> str:
    """What failures are counted by: the IP of a REST client (`1.2.3.4`) or of a gRPC peer
    (`ipv4:1.2.3.4:5678`, `ipv6:%5B::1%5D:5678`); an IPv6 address as its /64."""
    host = peer
    if peer.startswith(("ipv4:", "ipv6:")):
        host = unquote(peer[5:]).rpartition(":")[0].strip("[]")
    if ":" not in host:
        return host  # IPv4 (the common case), a unix socket, or nothing
    try:
        ip = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class AuthFailureThrottle:
    def __init__(
        self,
        limit: int,
        window_seconds: float,
        delay_seconds: float,
        *,
        max_addresses: int = DEFAULT_MAX_ADDRESSES,
        max_waiting: int = DEFAULT_MAX_WAITING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit  # 0 turns throttling off
        self.window = window_seconds
        self.delay = max(0.0, delay_seconds)
        self._max_addresses = max_addresses
        self._max_waiting = max_waiting
        self._clock = clock
        # address -> [window start, failures in it]; dict order = order windows started.
        self._windows: dict[str, list] = {}
        self.waiting = 0  # requests asleep in the tarpit now
        self.throttled = 0  # failures answered CONN_THROTTLED since start

    def fail(self, peer: str) -> float:
        """Count a failed authentication; the seconds its address stays throttled (0: not)."""
        if self.limit <= 0:
            return 0.0
        key = address_key(peer)
        now = self._clock()
        entry = self._windows.get(key)
        if entry is None or now - entry[0] >= self.window:
            self._windows.pop(key, None)
            self._forget_expired(now)
            entry = self._windows[key] = [now, 0]
        entry[1] += 1
        if entry[1] <= self.limit:
            return 0.0
        return entry[0] + self.window - now

    def _forget_expired(self, now: float) -> None:
        windows = self._windows
        while windows:
            oldest = next(iter(windows))
            if now - windows[oldest][0] < self.window and len(windows) < self._max_addresses:
                return
            del windows[oldest]

    async def refuse(self, peer: str, error: ApiError) -> ApiError:
        """The answer to a failed authentication from `peer`: `error` itself, or, once the
        address is over its limit, a `ThrottledError` given after the delay."""
        retry_after = self.fail(peer)
        if retry_after <= 0:
            return error
        self.throttled += 1
        if self.delay > 0 and self.waiting < self._max_waiting:
            self.waiting += 1
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.waiting -= 1
        return ThrottledError(max(retry_after - self.delay, 0.0))
