"""The window a report is of, as people write it: `since` (hours, days or weeks back from now:
36h, 7d, 2w) or `from` and `to` (whole UTC days, both included). `leadrouter report` takes them
as options and the dashboard in its address; both read them here, so they mean the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

# What a report is grouped by when people ask for one: `routing.report.GROUPINGS`; `arm` is an
# experiment's ("experiment/control", "experiment/candidate"; leads in none are their own group).
ASKED_GROUPINGS = (
    "rule",
    "team",
    "rep",
    "source",
    "segment",
    "region",
    "policy_version",
    "arm",
    "all",
)
DEFAULT_SINCE = "7d"
LONGEST = timedelta(days=366)
TOO_LONG = "a window is at most 366 days long"
# Up to a month is charted day by day; a longer window week by week.
DAILY_UP_TO = timedelta(days=31)

# 366 days is 8784h: a longer count is refused as too long (LONGEST), not as unreadable.
_SINCE = re.compile(r"(\d{1,9})([hdw])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


class BadWindow(ValueError):
    """The window asked for cannot be read; the message says what to write."""


@dataclass(frozen=True, slots=True)
class Window:
    """The leads that arrived in [since, until)."""

    since: datetime
    until: datetime

    @property
    def length(self) -> timedelta:
        return self.until - self.since

    @property
    def step(self) -> timedelta:
        """How long each of `periods` is: a day, or a week past DAILY_UP_TO."""
        return timedelta(days=1) if self.length <= DAILY_UP_TO else timedelta(weeks=1)

    def periods(self) -> list[Window]:
        """The window cut into days (weeks past DAILY_UP_TO), the last one cut short at `until`."""
        step = self.step
        cuts = []
        start = self.since
        while start < self.until:
            cuts.append(Window(start, min(start + step, self.until)))
            start += step
        return cuts

    def before(self) -> Window:
        """The window of the same length just before this one (last week, for this week)."""
        return Window(self.since - self.length, self.since)


def week_to(now: datetime, tz: tzinfo) -> Window:
    """The week to `now` on the clocks of `tz`: from the same time of day seven days earlier
    there. A week the clocks change in is an hour shorter or longer than 168 hours, so that
    the weeks of a Monday 09:00 digest meet end to end however the clocks moved."""
    local = now.astimezone(tz).replace(tzinfo=None)
    since = (local - timedelta(days=7)).replace(tzinfo=tz).astimezone(UTC)
    return Window(since, now)


def window_of(
    *, since: str | None, start: str | None, end: str | None, now: datetime, options: str = ""
) -> Window:
    """`since` (default 7d), or `start` and `end` (dates such as 2026-11-01, both included);
    BadWindow with a sentence otherwise, naming them `since`, `from` and `to` after `options`
    ("--" for the command line's options, "" for the dashboard's query)."""
    since_, from_, to_ = (f"{options}{name}" for name in ("since", "from", "to"))
    if start is not None or end is not None:
        if since is not None:
            raise BadWindow(f"give either {since_} or {from_} and {to_}, not both")
        if start is None or end is None:
            raise BadWindow(
                f"give both {from_} and {to_} (dates such as 2026-11-01 and 2026-11-07), "
                f"or {since_}"
            )
        first, last = _day(start, from_), _day(end, to_)
        if last < first:
            raise BadWindow(f"{to_} ({end}) must not be before {from_} ({start})")
        if last == date.max:  # its end, the next midnight, is past the calendar's
            raise BadWindow(f"{to_} ({end}) is too far in the future")
        window = Window(_midnight(first), _midnight(last + timedelta(days=1)))
    else:
        text = since if since is not None else DEFAULT_SINCE
        found = _SINCE.fullmatch(text)
        if found is None or int(found[1]) == 0:
            raise BadWindow(
                f"{since_} is a count of hours, days or weeks, such as 7d, not {text!r}"
            )
        count, unit = int(found[1]), _UNITS[found[2]]
        if count > LONGEST / unit:  # before counting back: that many years back may not exist
            raise BadWindow(TOO_LONG)
        window = Window(now - count * unit, now)
    if window.length > LONGEST:
        raise BadWindow(TOO_LONG)
    return window


def last_week(now: datetime) -> Window:
    return Window(now - timedelta(days=7), now)


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadWindow(f"{name} {text[:40]!r} is not a date; write it as 2026-11-01") from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
