"""The limit options of `scopegate keys create|patch` and `scopegate users limits`:
`--rate-limit 10/s` (repeatable), `--usage-limit N [--usage-refill daily:N]`,
`--allow-ip CIDR` (repeatable), `--method NAME` (repeatable), and `--no-…` to lift each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

import typer

from scopegate.auth.limits import (
    Limits,
    LimitsError,
    parse_methods,
    parse_networks,
    parse_rates,
    parse_refill,
    to_document,
)
from scopegate.cli.common import names, option, usage
from scopegate.services import limits as limit_service
from scopegate.services.audit import Actor
from scopegate.store.records import KeyRecord

RateLimitOption = Annotated[
    list[str] | None,
    option(
        "--rate-limit",
        "At most N requests per second, minute, hour or day: N/s, N/m, N/h, N/d; repeatable "
        "(all must hold).",
    ),
]
NoRateLimitOption = Annotated[
    bool, typer.Option("--no-rate-limit", help="Lift the key's rate limits.")
]
UsageLimitOption = Annotated[
    int | None,
    option("--usage-limit", "Requests the key may still make (sets its remaining count).", min=0),
]
UsageRefillOption = Annotated[
    str | None,
    option("--usage-refill", "Refill the usage count each UTC day or month: daily:N, monthly:N."),
]
NoUsageLimitOption = Annotated[
    bool, typer.Option("--no-usage-limit", help="Lift the key's usage quota.")
]
AllowIpOption = Annotated[
    list[str] | None,
    option("--allow-ip", "Allow requests only from this CIDR (IPv4 or IPv6); repeatable."),
]
NoAllowIpOption = Annotated[
    bool, typer.Option("--no-allow-ip", help="Allow requests from any address again.")
]
MethodOption = Annotated[
    list[str] | None,
    option(
        "--method",
        "Count only calls of these methods (names or patterns such as Post*) against the "
        "key's rates and quota; repeatable. Default: all.",
    ),
]


@dataclass(frozen=True, slots=True)
class LimitOptions:
    """The limit options as one value; its fields are the options themselves, given to
    `keys create` and `keys patch` by `@option_group("limits", LimitOptions)`."""

    rate_limit: RateLimitOption = None
    no_rate_limit: NoRateLimitOption = False
    usage_limit: UsageLimitOption = None
    usage_refill: UsageRefillOption = None
    no_usage_limit: NoUsageLimitOption = False
    allow_ip: AllowIpOption = None
    no_allow_ip: NoAllowIpOption = False
    method: MethodOption = None

    @property
    def given(self) -> bool:
        return any(
            (
                self.rate_limit,
                self.no_rate_limit,
                self.usage_limit is not None,
                self.usage_refill,
                self.no_usage_limit,
                self.allow_ip,
                self.no_allow_ip,
                self.method,
            )
        )

    def check(self) -> None:
        for flag, lift, given in (
            ("rate-limit", self.no_rate_limit, self.rate_limit),
            ("usage-limit", self.no_usage_limit, self.usage_limit is not None),
            ("allow-ip", self.no_allow_ip, self.allow_ip),
        ):
            if lift and given:
                usage(f"Give --{flag} or --no-{flag}, not both.")
        if self.usage_refill and self.usage_limit is None:
            usage("--usage-refill needs --usage-limit (the count to start from).")

    def applied(self, current: Limits) -> tuple[Limits, bool]:
        """The key's limits with these options applied, and whether its stored remaining
        count is kept (no new --usage-limit)."""
        self.check()
        try:
            new = current
            if self.rate_limit or self.no_rate_limit:
                new = replace(new, rates=parse_rates(names(self.rate_limit)))
            if self.allow_ip or self.no_allow_ip:
                new = replace(new, allow=parse_networks(names(self.allow_ip)))
            if self.method:
                new = replace(new, methods=parse_methods(names(self.method)))
            if self.no_usage_limit:
                new = replace(new, remaining=None, refill=None)
            elif self.usage_limit is not None:
                refill = parse_refill(self.usage_refill) if self.usage_refill else None
                new = replace(new, remaining=self.usage_limit, refill=refill)
        except LimitsError as exc:
            usage(str(exc))
        keep = self.usage_limit is None and not self.no_usage_limit
        return new, keep


def apply_key_limits(conn, record: KeyRecord, options: LimitOptions, actor: Actor) -> None:
    """Set the limits the options give (nothing when none are given)."""
    if not options.given:
        return
    new, keep = options.applied(limit_service.key_limits(conn, record))
    limit_service.set_key_limits(conn, record, new, actor=actor, keep_count=keep)


def limits_by_key(conn, records: list[KeyRecord]) -> dict[int, Limits]:
    return limit_service.limits_of_keys(conn, records)


def describe(limits: Limits) -> str:
    """One line for people: `10/s, 1000/h; 4,990 left (daily:5000); from 203.0.113.0/24`."""
    parts = []
    if limits.rates:
        parts.append(", ".join(str(r) for r in limits.rates))
    if limits.remaining is not None:
        refill = f" ({limits.refill})" if limits.refill else ""
        parts.append(f"{limits.remaining:,} left{refill}")
    if limits.allow:
        parts.append("from " + ", ".join(str(n) for n in limits.allow))
    if limits.methods:
        parts.append("methods " + ", ".join(limits.methods))
    return "; ".join(parts)


def document(limits: Limits | None) -> dict | None:
    return to_document(limits) if limits is not None else None
