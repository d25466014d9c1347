"""Per-credential limits at request time: the allowed addresses, the usage quota, the
rates, in that order, after authorization and before the handler (see README, Limits).

A credential's limits are loaded with it (access/authentication.py) into a
`CredentialLimits`, so checking costs no query; a credential without any has none and
costs the dispatcher one dictionary lookup. A refused request consumes nothing: the quota
is spent before the rates are checked and given back (in memory) if a rate refuses; the
rates are checked in all windows before any is recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scopegate.access.quota import QuotaLeases
from scopegate.access.rate_windows import LocalRates, RateResult, Window
from scopegate.access.redis_rates import RedisRates, StoreUnavailable
from scopegate.auth.limits import IPNetwork, Limits, Rate, Refill, address_allowed, counts
from scopegate.auth.limits import seconds_to_refill as refill_wait
from scopegate.contract.status import KEY_INVALID_DESCRIPTION, ApiError, C
from scopegate.store.records import now

# `Call.extras` key: the RateLimit header fields of an answer (name, value) pairs.
HEADERS = "ratelimit_headers"
QUOTA_POLICY = "quota"


@dataclass(slots=True, eq=False)
class CredentialLimits:
    """What one loaded credential is held to."""

    key_pk: int | None
    revision: int  # of the key's stored limits (a quota's leases are taken under it)
    own: tuple[Window, ...]  # the key's rates (or the server default): its methods only
    user: tuple[Window, ...]  # the user's rates: every method
    methods: tuple[str, ...]
    allow: tuple[IPNetwork, ...]
    quota: bool
    stored_left: int
    refill: Refill | None
    policy: str  # the RateLimit-Policy field, worked out once
    _windows: dict[str, tuple[Window, ...]] = field(default_factory=dict)

    def windows(self, method: str) -> tuple[Window, ...]:
        """The windows a call of `method` counts in (cached per method)."""
        found = self._windows.get(method)
        if found is None:
            found = self.own + self.user if counts(self.methods, method) else self.user
            self._windows[method] = found
        return found

    def counts_quota(self, method: str) -> bool:
        return self.quota and counts(self.methods, method)


def _windows(prefix: str, rates: tuple[Rate, ...]) -> tuple[Window, ...]:
    return tuple(Window(f"{prefix}:{r.count}/{r.seconds}", r.count, r.seconds) for r in rates)


def credential_limits(
    *,
    credential_id: str,
    user_id: str,
    key_pk: int | None,
    own: Limits | None,
    revision: int = 0,
    user_rates: tuple[Rate, ...] = (),
    default_rates: tuple[Rate, ...] = (),
) -> CredentialLimits | None:
    """The limits a credential is held to; None when there are none (the common case)."""
    own = own or Limits()
    rates = own.rates or (default_rates if key_pk is not None else ())
    if not rates and not user_rates and own.remaining is None and not own.allow:
        return None
    windows = _windows(f"k:{credential_id}", rates)
    users = _windows(f"u:{user_id}", user_rates)
    policy = [f'"{r.name}";q={r.count};w={r.seconds}' for r in (*rates, *user_rates)]
    if own.remaining is not None:
        quota = f'"{QUOTA_POLICY}";q={own.refill.amount if own.refill else own.remaining}'
        if own.refill is not None:
            quota += f";w={86400 if own.refill.period == 'daily' else 2592000}"
        policy.append(quota)
    return CredentialLimits(
        key_pk=key_pk,
        revision=revision,
        own=windows,
        user=users,
        methods=own.methods,
        allow=own.allow,
        quota=own.remaining is not None and key_pk is not None,
        stored_left=own.remaining or 0,
        refill=own.refill,
        policy=", ".join(policy),
    )


class LimitRefusal(ApiError):
    """A refusal by a limit, with the header fields (and `Retry-After`) it answers with."""

    def __init__(
        self, code: int, description: str, details: str, http_status: int, headers: list
    ) -> None:
        super().__init__(code, description, details, http_status=http_status)
        self.headers = headers


def _rate_field(windows: tuple[Window, ...], result: RateResult) -> list[str]:
    return [
        f'"{w.count}-per-{w.seconds}s";r={left};t={max(0, math.ceil(wait))}'
        for w, left, wait in zip(windows, result.remaining, result.reset, strict=False)
    ]


class Limiter:
    def __init__(
        self,
        quota: QuotaLeases,
        redis: RedisRates | None = None,
    ) -> None:
        self.quota = quota
        self.redis = redis
        self.local = LocalRates()

    async def admit(self, limits: CredentialLimits, method: str, client: str, extras: dict) -> None:
        """Raise the refusal, or record the request and leave its header fields in
        `extras[HEADERS]`."""
        if limits.allow and not address_allowed(limits.allow, client):
            raise LimitRefusal(
                C.CONN_KEY_INVALID,
                KEY_INVALID_DESCRIPTION,
                "Requests from this address are not allowed for this key.",
                403,
                [("ratelimit-policy", limits.policy)],
            )
        counted = limits.counts_quota(method)
        windows = limits.windows(method)
        if not counted and not windows:
            return  # a method the limits do not count: no fields either
        fields: list[str] = []
        spent = False
        if counted:
            assert limits.key_pk is not None  # a quota is a key's
            spent, left = await self.quota.take(
                limits.key_pk, limits.revision, limits.refill, limits.stored_left
            )
            if not spent:
                wait = refill_wait(limits.refill, now())
                headers = [
                    ("ratelimit-policy", limits.policy),
                    ("ratelimit", f'"{QUOTA_POLICY}";r=0' + (f";t={wait}" if wait else "")),
                ]
                if wait:
                    headers.append(("retry-after", str(wait)))
                refill = f" It is refilled in {wait} seconds." if wait else ""
                raise LimitRefusal(
                    C.CONN_EXCEEDS_LIMITS,
                    "Usage limit exceeded",
                    f"This key's usage quota is used up.{refill}",
                    429,
                    headers,
                )
            fields.append(f'"{QUOTA_POLICY}";r={left}')
        if windows:
            try:
                if self.redis is not None:
                    result = await self.redis.hit(windows)
                else:
                    result = self.local.hit(windows)
            except StoreUnavailable:
                self._give_back(limits, spent)
                raise LimitRefusal(
                    C.CONN_THROTTLED,
                    "Rate limits cannot be checked",
                    "The rate-limit store is unavailable; try again shortly.",
                    503,
                    [("ratelimit-policy", limits.policy), ("retry-after", "1")],
                ) from None
            fields[:0] = _rate_field(windows, result)
            if result.refused >= 0:
                self._give_back(limits, spent)
                window = windows[result.refused]
                wait = max(1, math.ceil(result.retry_after))
                rate = Rate(window.count, window.seconds)
                raise LimitRefusal(
                    C.CONN_THROTTLED,
                    "Too many requests",
                    f"Rate limit of {rate.describe()} exceeded; try again in {wait} "
                    f"second{'s' if wait != 1 else ''}.",
                    429,
                    [
                        ("ratelimit-policy", limits.policy),
                        ("ratelimit", ", ".join(fields)),
                        ("retry-after", str(wait)),
                    ],
                )
        extras[HEADERS] = [("ratelimit-policy", limits.policy), ("ratelimit", ", ".join(fields))]

    def _give_back(self, limits: CredentialLimits, spent: bool) -> None:
        if spent and limits.key_pk is not None:
            self.quota.give_back_one(limits.key_pk, limits.revision)

    def remaining(self, key_pk: int, stored_left: int | None) -> int | None:
        """A key's remaining count as this process sees it: stored plus its own lease."""
        if stored_left is None:
            return None
        return stored_left + self.quota.held(key_pk)
