"""What the overview and fairness pages show, behind one small interface the routing report plugs
into: `Figures`, a function of a window and a grouping that returns one row per group.

A row is keyed as `leadrouter report --json` prints a group (at least `group`, `leads`,
`assigned`, `queued`, `time_to_claim_p50_s`, `time_to_first_touch_p50_s`, `claim_sla_met`,
`contact_sla_met`, `rejects`, `reassignments`, `converted`, `won`, `conversion_rate`,
`conversion_ci_low`, `conversion_ci_high`; None where there is no data), so the report, its CSV and
the dashboard say the same thing under the same names. Until the report is plugged in, the pages
say it is not available yet: no figure is ever made up here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from routing.report.window import ASKED_GROUPINGS, DEFAULT_SINCE, BadWindow, Window, window_of

__all__ = [
    "DEFAULT_GROUPING",
    "DEFAULT_SINCE",
    "GROUPINGS",
    "BadWindow",
    "FigureRow",
    "Figures",
    "Question",
    "Window",
    "question_of",
]

FigureRow = Mapping[str, Any]

# The groupings the issue names, plus everything as one group (`all`: the fairness page).
GROUPINGS = ASKED_GROUPINGS
DEFAULT_GROUPING = "rule"


class Figures(Protocol):
    async def __call__(self, window: Window, by: str) -> Sequence[FigureRow]:
        """One row per group of the leads that arrived in `window`, grouped `by` one of
        GROUPINGS, most leads first."""
        ...


@dataclass(frozen=True, slots=True)
class Question:
    """What a page was asked for: its window and grouping, as read from the query string."""

    window: Window
    by: str
    query: Mapping[str, str]  # what it was read from, to keep in links and in the CSV's address

    @property
    def label(self) -> str:
        """The window in a file's name: `7d`, or `2026-11-01-to-2026-11-07`."""
        if "from" in self.query:
            last = self.window.until - timedelta(days=1)
            return f"{self.window.since.date().isoformat()}-to-{last.date().isoformat()}"
        return self.query.get("since", DEFAULT_SINCE)


def question_of(query: Mapping[str, str], *, now: datetime) -> Question:
    """`?since=7d` (hours, days or weeks back from now) or `?from=2026-11-01&to=2026-11-07`
    (whole UTC days, both included: `routing.report.window`), and `?by=rule`; BadWindow with a
    sentence otherwise. An empty field is not there (the form sends the dates it leaves blank)."""
    asked = {key: query[key] for key in ("since", "from", "to", "by") if query.get(key)}
    by = asked.get("by", DEFAULT_GROUPING)
    if by not in GROUPINGS:
        raise BadWindow(f"by must be one of {', '.join(GROUPINGS)}, not {by[:40]!r}")
    window = window_of(
        since=asked.get("since"), start=asked.get("from"), end=asked.get("to"), now=now
    )
    return Question(window, by, asked)
