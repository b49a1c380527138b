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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

FigureRow = Mapping[str, Any]

# The groupings the issue names, plus everything as one group (`all`: the fairness page).
GROUPINGS = ("rule", "team", "rep", "source", "segment", "region", "policy_version", "all")
DEFAULT_GROUPING = "rule"
DEFAULT_SINCE = "7d"
LONGEST = timedelta(days=366)
# Up to a month is charted day by day; a longer window week by week.
DAILY_UP_TO = timedelta(days=31)

_SINCE = re.compile(r"(\d{1,3})([hdw])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


class Figures(Protocol):
    async def __call__(self, window: Window, by: str) -> Sequence[FigureRow]:
        """One row per group of the leads that arrived in `window`, grouped `by` one of
        GROUPINGS, most leads first."""
        ...


class BadWindow(ValueError):
    """The window or grouping asked for cannot be read; the message says what to write."""


@dataclass(frozen=True, slots=True)
class Window:
    """The leads that arrived in [since, until)."""

    since: datetime
    until: datetime

    @property
    def length(self) -> timedelta:
        return self.until - self.since

    def periods(self) -> list[Window]:
        """The window cut into days (weeks past DAILY_UP_TO), the last one cut short at `until`."""
        step = timedelta(days=1) if self.length <= DAILY_UP_TO else timedelta(weeks=1)
        cuts = []
        start = self.since
        while start < self.until:
            cuts.append(Window(start, min(start + step, self.until)))
            start += step
        return cuts


@dataclass(frozen=True, slots=True)
class Question:
    """What a page was asked for: its window and grouping, as read from the query string."""

    window: Window
    by: str
    query: Mapping[str, str]  # what it was read from, to keep in links and in the CSV's address


def question_of(query: Mapping[str, str], *, now: datetime) -> Question:
    """`?since=7d` (hours, days or weeks back from now) or `?from=2026-11-01&to=2026-11-07`
    (whole UTC days, both included), and `?by=rule`; BadWindow with a sentence otherwise."""
    by = query.get("by", DEFAULT_GROUPING)
    if by not in GROUPINGS:
        raise BadWindow(f"by must be one of {', '.join(GROUPINGS)}, not {by[:40]!r}")
    start, end = query.get("from"), query.get("to")
    if start is not None or end is not None:
        if start is None or end is None or "since" in query:
            raise BadWindow(
                "give both from and to (such as from=2026-11-01&to=2026-11-07), or since"
            )
        window = Window(_midnight(_day(start)), _midnight(_day(end) + timedelta(days=1)))
        if window.until <= window.since:
            raise BadWindow(f"to ({end}) must not be before from ({start})")
    else:
        since = query.get("since", DEFAULT_SINCE)
        found = _SINCE.fullmatch(since)
        if found is None or int(found[1]) == 0:
            raise BadWindow(f"since is a count of hours, days or weeks, such as 7d, not {since!r}")
        window = Window(now - int(found[1]) * _UNITS[found[2]], now)
    if window.length > LONGEST:
        raise BadWindow("a window is at most 366 days long")
    kept = {key: query[key] for key in ("since", "from", "to", "by") if key in query}
    return Question(window, by, kept)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadWindow(f"{text[:40]!r} is not a date; write it as 2026-11-01") from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
