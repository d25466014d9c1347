"""What a credential may do per unit of time, how much in all, and from where: the
limits' model, their written forms (`10/s`, `daily:5000`, CIDRs) and the JSON document
the REST extension, the portal and the CLI share. Pure: the counting is access/'s.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
UNIT_WORDS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
REFILLS = ("daily", "monthly")
MAX_RATES = 8
MAX_NETWORKS = 64
MAX_METHODS = 32
# A sliding window remembers each admitted request's time: this bounds its memory.
MAX_RATE_COUNT = 100_000
MAX_USAGE = 10**12

_RATE = re.compile(r"\s*(\d+)\s*/\s*([smhd])\s*")
_METHOD = re.compile(r"[A-Za-z0-9_*?]{1,128}")


class LimitsError(ValueError):
    """A limit written wrongly: the message says how to write it."""


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `count` requests in any window of `seconds`."""

    count: int
    seconds: int

    def __str__(self) -> str:
        unit = {v: k for k, v in UNITS.items()}[self.seconds]
        return f"{self.count}/{unit}"

    def describe(self) -> str:
        """As refusals name the window: `10 requests per second`."""
        noun = "request" if self.count == 1 else "requests"
        return f"{self.count} {noun} per {UNIT_WORDS[self.seconds]}"

    @property
    def name(self) -> str:
        """The policy's name in the RateLimit header fields: `10-per-1s`."""
        return f"{self.count}-per-{self.seconds}s"


@dataclass(frozen=True, slots=True)
class Refill:
    period: str  # "daily" or "monthly" (UTC calendar days and months)
    amount: int

    def __str__(self) -> str:
        return f"{self.period}:{self.amount}"


@dataclass(frozen=True, slots=True)
class Limits:
    """One credential's (or, rates only, one user's) limits as stored."""

    rates: tuple[Rate, ...] = ()
    # Requests the credential may still make; None: no usage quota.
    remaining: int | None = None
    refill: Refill | None = None
    allow: tuple[IPNetwork, ...] = ()
    # Short method names or patterns (`Post*`) the rates and the quota count; () all.
    methods: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.rates and self.remaining is None and not self.allow


NONE = Limits()


def parse_rate(text: str) -> Rate:
    match = _RATE.fullmatch(text)
    if not match:
        raise LimitsError(
            f"'{text}' is not a rate limit: write N/s, N/m, N/h or N/d (e.g. 10/s, 1000/h)."
        )
    count = int(match.group(1))
    if not 1 <= count <= MAX_RATE_COUNT:
        raise LimitsError(f"A rate limit's count must be between 1 and {MAX_RATE_COUNT}.")
    return Rate(count, UNITS[match.group(2)])


def parse_rates(texts: list[str] | tuple[str, ...]) -> tuple[Rate, ...]:
    rates = tuple(dict.fromkeys(parse_rate(t) for t in texts))
    if len(rates) > MAX_RATES:
        raise LimitsError(f"At most {MAX_RATES} rate limits per credential.")
    return rates


def parse_refill(text: str) -> Refill:
    period, _, amount = text.partition(":")
    if period not in REFILLS or not amount.strip().isdigit():
        raise LimitsError(f"'{text}' is not a refill: write daily:N or monthly:N.")
    return Refill(period, _usage(int(amount), "A refill's amount"))


def _usage(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_USAGE:
        raise LimitsError(f"{what} must be a whole number between 0 and {MAX_USAGE}.")
    return value


def parse_networks(texts: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(str(text).strip(), strict=False))
        except ValueError:
            raise LimitsError(
                f"'{text}' is not an IPv4 or IPv6 CIDR (e.g. 203.0.113.0/24, 2001:db8::/32)."
            ) from None
    if len(networks) > MAX_NETWORKS:
        raise LimitsError(f"At most {MAX_NETWORKS} address blocks per credential.")
    return tuple(dict.fromkeys(networks))


def parse_methods(texts: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    methods = []
    for text in texts:
        name = str(text).strip().rpartition("/")[2]  # full names work too
        if not _METHOD.fullmatch(name):
            raise LimitsError(
                f"'{text}' is not a method name or pattern (e.g. PostModelOutputs, Post*)."
            )
        methods.append(name)
    if len(methods) > MAX_METHODS:
        raise LimitsError(f"At most {MAX_METHODS} method patterns per credential.")
    return tuple(dict.fromkeys(methods))


def counts(methods: tuple[str, ...], method: str) -> bool:
    """Whether a call of `method` (short name) counts against limits naming `methods`."""
    return not methods or any(fnmatchcase(method, pattern) for pattern in methods)


def address_allowed(allow: tuple[IPNetwork, ...], address: str) -> bool:
    """Whether `address` (as the transport names the client) is inside one block; an
    address that cannot be read is in none."""
    ip = parse_address(address)
    return ip is not None and any(ip.version == n.version and ip in n for n in allow)


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A client address as a transport gives it: bare, `ipv4:1.2.3.4:port` or
    `ipv6:[::1]:port` (gRPC's peer), `[v6]:port`; IPv4-mapped IPv6 as IPv4."""
    text = text.strip()
    for prefix in ("ipv4:", "ipv6:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            if prefix == "ipv4:":
                text = text.rpartition(":")[0] or text
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def period_index(period: str, at: datetime) -> int:
    """Which refill period `at` falls in: days or months since 1970 (UTC)."""
    at = at.astimezone(UTC)
    if period == "daily":
        return (at.date() - datetime(1970, 1, 1, tzinfo=UTC).date()).days
    return (at.year - 1970) * 12 + at.month - 1


def next_period_start(period: str, at: datetime) -> datetime:
    """When the period after the one `at` falls in begins."""
    at = at.astimezone(UTC)
    if period == "daily":
        day = datetime(at.year, at.month, at.day, tzinfo=UTC)
        return datetime.fromtimestamp(day.timestamp() + 86400, UTC)
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def seconds_to_refill(refill: Refill | None, at: datetime) -> int | None:
    if refill is None:
        return None
    return max(1, int(next_period_start(refill.period, at).timestamp() - at.timestamp()) + 1)


def from_stored(
    rates: tuple[str, ...],
    allow: tuple[str, ...],
    methods: tuple[str, ...],
    remaining: int | None,
    refill_period: str | None,
    refill_amount: int | None,
) -> Limits:
    """Limits from their stored, written forms (store/limits.py)."""
    refill = Refill(refill_period, refill_amount or 0) if refill_period else None
    return Limits(
        rates=parse_rates(rates),
        remaining=remaining,
        refill=refill,
        allow=parse_networks(allow),
        methods=parse_methods(methods),
    )


# --- the JSON document (REST extension, portal, CLI --json) --------------------------------


def to_document(limits: Limits, remaining: int | None = None) -> dict[str, Any]:
    """`remaining`: the live count where known (else the stored one)."""
    usage: dict[str, Any] | None = None
    if limits.remaining is not None:
        usage = {"remaining": limits.remaining if remaining is None else remaining}
        if limits.refill is not None:
            usage["refill"] = {"interval": limits.refill.period, "amount": limits.refill.amount}
    return {
        "rate_limits": [str(r) for r in limits.rates],
        "usage": usage,
        "allowed_ips": [str(n) for n in limits.allow],
        "methods": list(limits.methods),
    }


def from_document(body: Any) -> Limits:
    """A PUT's body: every field optional, what is left out is not limited."""
    if not isinstance(body, dict):
        raise LimitsError('Send a JSON object: {"rate_limits": ["10/s"], ...}.')
    unknown = set(body) - {"rate_limits", "usage", "allowed_ips", "methods"}
    if unknown:
        raise LimitsError(
            f"Unknown fields: {', '.join(sorted(unknown))}; known: rate_limits, usage, "
            "allowed_ips, methods."
        )
    rates = parse_rates(_strings(body, "rate_limits"))
    remaining, refill = None, None
    usage = body.get("usage")
    if usage is not None:
        if not isinstance(usage, dict) or "remaining" not in usage:
            raise LimitsError('\'usage\' must be {"remaining": N, "refill": {...}} or null.')
        remaining = _usage(usage["remaining"], "usage.remaining")
        raw_refill = usage.get("refill")
        if raw_refill is not None:
            if not isinstance(raw_refill, dict) or raw_refill.get("interval") not in REFILLS:
                raise LimitsError(
                    'usage.refill must be {"interval": "daily" or "monthly", "amount": N}.'
                )
            amount = _usage(raw_refill.get("amount"), "usage.refill.amount")
            refill = Refill(raw_refill["interval"], amount)
    return Limits(
        rates=rates,
        remaining=remaining,
        refill=refill,
        allow=parse_networks(_strings(body, "allowed_ips")),
        methods=parse_methods(_strings(body, "methods")),
    )


def _strings(body: dict, name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LimitsError(f"'{name}' must be a list of strings.")
    return value
