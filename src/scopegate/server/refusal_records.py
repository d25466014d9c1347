"""The refusal recorder the server runs (access/refusals.py), from the environment:
SCOPEGATE_REFUSAL_RECORDS (1, or 0 to keep none), SCOPEGATE_REFUSAL_DAYS (7),
SCOPEGATE_REFUSAL_MAX_RECORDS (1000000)."""

from __future__ import annotations

import os

from scopegate.access.refusals import RefusalRecorder
from scopegate.context import Services


def _positive(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be a positive number, not {raw!r}")
    return value


def refusal_recorder(services: Services) -> RefusalRecorder | None:
    """The recorder, made known to the services (the denials handler reads what it has not
    written yet); None when SCOPEGATE_REFUSAL_RECORDS=0."""
    switch = os.environ.get("SCOPEGATE_REFUSAL_RECORDS", "1").strip().lower()
    if switch in ("0", "off", "false", "no"):
        return None
    recorder = RefusalRecorder(
        services.engine,
        ttl_days=_positive("SCOPEGATE_REFUSAL_DAYS", 7.0),
        capacity=int(_positive("SCOPEGATE_REFUSAL_MAX_RECORDS", 1_000_000)),
    )
    services.refusals = recorder
    return recorder
