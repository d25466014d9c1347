"""A usage document (services/usage_report.py) as a stacked bar chart drawn on the server:
the geometry of an SVG that has no text and no style (colours come from portal.css by class,
as the portal's CSP allows no inline style), and the labels the template puts around it in
HTML, which stay legible at any width."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# The order outcomes stack in, bottom up, and how the page names them. Outcomes are an open
# set: one not named here is drawn last, in the `o-other` colour, under its own name.
OUTCOME_NAMES = {
    "allowed": "Allowed",
    "failed": "Failed in the method",
    "insufficient_scopes": "Insufficient scopes",
    "not_visible": "Not visible",
    "invalid_credential": "Invalid credential",
    "throttled": "Throttled",
    "over_quota": "Over quota",
    "address_not_allowed": "Address not allowed",
    "bad_request": "Bad request",
}
KNOWN = tuple(OUTCOME_NAMES)

WIDTH, HEIGHT = 600, 160  # the viewBox; the page stretches it to its width
SLOT_FILL = 0.7  # the share of a day's slot its bar fills


@dataclass(frozen=True, slots=True)
class Segment:
    y: float
    height: float
    css: str  # o-<outcome>, or o-other


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    day: str  # 2024-06-01
    total: int
    title: str  # what a pointer over the bar shows
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class LegendEntry:
    css: str
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class Chart:
    bars: tuple[Bar, ...]
    peak: int  # the value at the top of the chart
    first_day: str
    last_day: str
    total: int
    legend: tuple[LegendEntry, ...]
    width: int = WIDTH
    height: int = HEIGHT


def css_class(outcome: str) -> str:
    return f"o-{outcome}" if outcome in OUTCOME_NAMES else "o-other"


def outcome_name(outcome: str) -> str:
    return OUTCOME_NAMES.get(outcome, outcome.replace("_", " ").capitalize())


def _order(outcomes) -> list[str]:
    known = [name for name in KNOWN if name in outcomes]
    return known + sorted(name for name in outcomes if name not in OUTCOME_NAMES)


def _nice(peak: int) -> int:
    """The smallest of 1, 2, 5 x 10^n at or above `peak` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= peak:
                return step * factor
        step *= 10


def _day(text: str) -> date:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()


def daily_chart(document: dict) -> Chart:
    """One bar per day of the document's window (a daily report), stacked by outcome."""
    first, end = _day(document["from"]), _day(document["to"])
    days = [first + timedelta(days=n) for n in range((end - first).days)] or [first]
    by_day = {_day(entry["start"]): entry for entry in document["series"]}
    peak = _nice(max((entry["total"] for entry in document["series"]), default=0))
    slot = WIDTH / len(days)
    bars = []
    for index, day in enumerate(days):
        entry = by_day.get(day, {"total": 0, "outcomes": {}})
        outcomes = entry["outcomes"]
        segments, top = [], float(HEIGHT)
        for outcome in _order(outcomes):
            height = HEIGHT * outcomes[outcome] / peak
            top -= height
            segments.append(Segment(round(top, 2), round(height, 2), css_class(outcome)))
        parts = ", ".join(f"{outcome_name(o).lower()} {outcomes[o]}" for o in _order(outcomes))
        title = f"{day.isoformat()}: {entry['total']} requests" + (f" ({parts})" if parts else "")
        bars.append(
            Bar(
                x=round(index * slot + slot * (1 - SLOT_FILL) / 2, 2),
                width=round(slot * SLOT_FILL, 2),
                day=day.isoformat(),
                total=entry["total"],
                title=title,
                segments=tuple(segments),
            )
        )
    totals = document["outcomes"]
    legend = tuple(
        LegendEntry(css_class(outcome), outcome_name(outcome), totals[outcome])
        for outcome in _order(totals)
    )
    return Chart(
        bars=tuple(bars),
        peak=peak,
        first_day=days[0].isoformat(),
        last_day=days[-1].isoformat(),
        total=document["total"],
        legend=legend,
    )


def last_days_query(days: int = 30, today: date | None = None) -> dict[str, str]:
    """The usage routes' query for the `days` days up to today, by day."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    return {"from": first.isoformat(), "to": today.isoformat(), "granularity": "day"}
