"""The charts' data, from the figures: plain JSON that `static/dashboard.js` hands to uPlot.

The page carries each chart's data in a `<script type="application/json">` block (data, never
run), and the browser draws it with uPlot, served from `static/vendor/uplot/`: a small, fast,
MIT-licensed charting library, vendored at a pinned release (its VERSION file) because the
dashboard must work where no CDN can be reached. The tables beside the charts carry the same
figures, for a screen reader and for anyone without JavaScript.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.dashboard.figures import FigureRow, Window
from bot.dashboard.render import NO_DATA, NO_GROUP

# The busiest groups get a line each; more would be unreadable (the table has them all).
MOST_LINES = 6


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: list[float | None]


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    kind: str  # "time" (x: unix seconds, one line per series) or "bars" (x: the labels)
    unit: str  # of the y axis: "min" or "%"
    x: list[float]
    series: list[Series]
    labels: list[str] = field(default_factory=list)  # for "bars": what each x stands for
    period: str = ""  # for "time": what each point stands for, "day" or "week"

    @property
    def empty(self) -> bool:
        """Whether there is no point to draw: no group had the figure in the window (a contact
        SLA the policy does not set, a first touch nobody told)."""
        return all(value is None for series in self.series for value in series.values)

    def table(self) -> tuple[list[str], list[list[str]]] | None:
        """A line chart's figures as a table, a row per point (None for bars: the page they
        are on has their table): what a screen reader, or a browser without JavaScript, reads."""
        if self.kind != "time":
            return None
        first = "Day" if self.period == "day" else "Week from"
        header = [first] + [f"{series.label} ({self.unit})" for series in self.series]
        rows = [
            [datetime.fromtimestamp(moment, UTC).date().isoformat()]
            + [_shown(series.values[index]) for series in self.series]
            for index, moment in enumerate(self.x)
        ]
        return header, rows

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "unit": self.unit,
            "x": self.x,
            "labels": self.labels,
            "period": self.period,
            "series": [{"label": s.label, "values": s.values} for s in self.series],
            "table": self.table(),
            "empty": self.empty,
        }


def trend(
    chart_id: str,
    title: str,
    *,
    key: str,
    unit: str,
    groups: Sequence[str],
    periods: Sequence[tuple[Window, Sequence[FigureRow]]],
    step: timedelta,
) -> Chart:
    """One line per group of `key` over the periods (None where a period has no figure), each
    period `step` long: its title says a point is a day's or a week's."""
    by_period = [{_name(row): row for row in rows} for _, rows in periods]
    series = [
        Series(group, [_scaled(rows.get(group, {}).get(key), unit) for rows in by_period])
        for group in groups[:MOST_LINES]
    ]
    x = [window.since.timestamp() for window, _ in periods]
    period = "day" if step <= timedelta(days=1) else "week"
    return Chart(chart_id, f"{title}, {period} by {period}", "time", unit, x, series, period=period)


def fairness(team: Mapping[str, Any]) -> Chart:
    """A team's reps: the share of its rotation's leads each got, against the share they should."""
    reps = list(team.get("reps", []))
    return Chart(
        f"fairness-{team.get('team')}",
        "Share of leads against expected share",
        "bars",
        "%",
        x=[float(index) for index in range(len(reps))],
        labels=[str(rep.get("rep")) for rep in reps],
        series=[
            Series("Share of leads", [_scaled(rep.get("share"), "%") for rep in reps]),
            Series("Expected share", [_scaled(rep.get("expected_share"), "%") for rep in reps]),
        ],
    )


def group_names(rows: Sequence[FigureRow]) -> list[str]:
    return [_name(row) for row in rows]


def _name(row: FigureRow) -> str:
    group = row.get("group")
    return NO_GROUP if group is None else str(group)


def _shown(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:g}"


def _scaled(value: object, unit: str) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if unit == "min":
        return round(value / 60, 2)
    if unit == "%":
        return round(value * 100, 1)
    return float(value)
