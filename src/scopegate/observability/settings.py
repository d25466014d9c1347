"""What the operator chose to observe (read by server/config.py; no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ObservabilitySettings:
    metrics: bool = True  # SCOPEGATE_METRICS=off: no /metrics, nothing counted
    # --metrics-address HOST:PORT (SCOPEGATE_METRICS_ADDRESS): /metrics there, not on the
    # HTTP port.
    metrics_address: tuple[str, int] | None = None


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--metrics-address must be HOST:PORT, not '{text}'")
    return host, int(port)
