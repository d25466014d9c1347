"""The per-credential limits' parts for `serve`: the default rates, Redis when configured,
and, at shutdown, the unspent quota leases given back (access/limiter.py, access/quota.py)."""

from __future__ import annotations

import asyncio
import logging

from scopegate.access.redis_rates import RedisRates
from scopegate.dispatch import Dispatcher
from scopegate.server.config import LimitSettings

log = logging.getLogger("scopegate.server.limits")


def install_limits(dispatcher: Dispatcher, settings: LimitSettings) -> None:
    dispatcher.authenticator.default_rates = settings.default_rates
    if settings.redis_url:
        dispatcher.limiter.redis = RedisRates(settings.redis_url, fail_open=settings.fail_open)


async def close_limits(dispatcher: Dispatcher) -> None:
    limiter = dispatcher.limiter
    try:
        await asyncio.to_thread(limiter.quota.give_back_all)
    except Exception:  # the database may be gone at shutdown: the leases are then lost
        log.warning("could not give back unspent usage leases", exc_info=True)
    if limiter.redis is not None:
        await limiter.redis.close()
