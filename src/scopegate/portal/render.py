"""The Jinja2 environment: templates from the package, autoescaped, and display filters."""

from __future__ import annotations

from datetime import UTC

from google.protobuf.timestamp_pb2 import Timestamp
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


def when(ts: Timestamp | None, empty: str = "—") -> str:
    """A protobuf timestamp as `2025-01-31 14:05 UTC` (unset: `empty`)."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return empty
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(ts: Timestamp | None) -> str:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return ""
    return ts.ToDatetime(tzinfo=UTC).isoformat()


def iso_text(value: str | None, empty: str = "never") -> str:
    """An ISO timestamp string (as the key handlers note last use) for display."""
    if not value:
        return empty
    return value.replace("T", " ")[:16] + " UTC"


def build_templates() -> Environment:
    env = Environment(
        loader=PackageLoader("scopegate.portal", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a typo in a template fails a test, not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["iso"] = iso
    env.filters["iso_text"] = iso_text
    return env
