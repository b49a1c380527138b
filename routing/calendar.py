"""When a rep works: hours, weekdays and public holidays, read in the rep's own time zone.

Nothing here reads the clock; every function takes the moment it reasons about. Working time is
described as wall-clock times in the rep's zone ("09:00-17:30" in Europe/London), and a shift whose
end is earlier than its start runs overnight and belongs to the day it starts on: a 22:00-06:00
shift that starts on Friday is Friday's, even at 03:00 on Saturday, and it is that starting day that
must be a working day and not a public holiday. Counting working time forward (an SLA on the
business clock) is `routing.working_time`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "DAY_NAMES",
    "WEEKDAYS",
    "CalendarError",
    "OffHoursMemo",
    "Unavailable",
    "WorkingHours",
    "holiday_name",
    "is_holiday",
    "parse_days",
    "parse_hours",
    "unavailability",
    "unavailable_reason",
    "validate_holidays_country",
]

WEEKDAYS: frozenset[int] = frozenset(range(5))

# Deliberately not calendar.day_name or strftime("%A"): both follow the process locale, and a
# reason shown to an admin should not change language with the server's settings.
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–—]\s*(\d{1,2}):(\d{2})\s*$")
_COUNTRY = re.compile(r"^([A-Za-z]{2})(?:-(.+))?$")

_ONE_DAY = timedelta(days=1)


class CalendarError(ValueError):
    """Working hours, days or a holiday country an admin wrote that cannot be used."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkingHours:
    """A rep's working time: wall-clock `start`-`end` in `tz` on `days` (Monday=0).

    `end` before `start` is an overnight shift, and `end` of `time.max` (23:59:59.999999) runs to
    midnight: the policy gives a rep with `holidays` but no `hours` 00:00 to `time.max` on every
    day. `holidays_country` is an ISO 3166 alpha-2 code, optionally with a subdivision ("US-CA",
    "GB-SCT"); its public holidays are days off.
    """

    start: time
    end: time
    days: frozenset[int] = WEEKDAYS
    tz: ZoneInfo
    holidays_country: str | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            # Aware and naive times cannot be compared; the zone belongs in `tz`.
            raise CalendarError("working hours are wall-clock times; give the time zone as tz")
        if self.start == self.end:
            raise CalendarError(
                f"working hours start and end at {self.start:%H:%M}; "
                "give the hours a rep works, like 09:00-17:30"
            )
        if not self.days:
            raise CalendarError("a rep needs at least one working day; write days like mon-fri")
        if not self.days <= frozenset(range(7)):
            raise CalendarError(
                f"working days must be numbered 0 (Monday) to 6 (Sunday), not {sorted(self.days)}"
            )
        if self.holidays_country is not None:
            problem = validate_holidays_country(self.holidays_country)
            if problem is not None:
                raise CalendarError(problem)


# --- parsing what admins write ---------------------------------------------------------------


def parse_hours(text: str) -> tuple[time, time]:
    """`"09:00-17:30"` -> (09:00, 17:30). An end before the start is an overnight shift."""
    match = _HOURS.match(text) if isinstance(text, str) else None
    numbers = [int(part) for part in match.groups()] if match else []
    if not numbers or numbers[0] > 23 or numbers[2] > 23 or numbers[1] > 59 or numbers[3] > 59:
        raise CalendarError(f"{text!r} is not a time range; write it like 09:00-17:30")
    start, end = time(numbers[0], numbers[1]), time(numbers[2], numbers[3])
    if start == end:
        raise CalendarError(
            f"{text!r} starts and ends at the same time; write the hours worked like "
            "09:00-17:30, or 22:00-06:00 for a night shift"
        )
    return start, end


def parse_days(value: str | list[str]) -> frozenset[int]:
    """Weekday numbers (Monday=0) from "mon-fri", "mon,wed,fri", ["sat", "sun"] or full names.

    A range wraps around the week, so "sun-thu" is Sunday to Thursday.
    """
    example = "write days like mon-fri or mon,wed,fri"
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        parts = [part for item in value for part in item.split(",")]
    else:
        raise CalendarError(f"{value!r} is not a list of days; {example}")
    days: set[int] = set()
    for part in filter(str.strip, parts):
        first, dash, last = part.partition("-")
        begin = _day_number(first)
        finish = _day_number(last) if dash else begin
        if begin is None or finish is None:
            raise CalendarError(f"{part.strip()!r} is not a day of the week; {example}")
        days.update((begin + offset) % 7 for offset in range((finish - begin) % 7 + 1))
    if not days:
        raise CalendarError(f"{value!r} names no days; {example}")
    return frozenset(days)


def _day_number(text: str) -> int | None:
    word = text.strip().lower()
    # Any prefix of three letters or more, so "tue", "tues" and "thurs" all read naturally.
    if len(word) >= 3:
        for number, name in enumerate(DAY_NAMES):
            if name.lower().startswith(word):
                return number
    return None


# --- public holidays -------------------------------------------------------------------------


def validate_holidays_country(code: str) -> str | None:
    """None when `code` ("GB", "US-CA", "GB-SCT") has a holiday calendar, else why not."""
    try:
        _split_country(code)
    except CalendarError as error:
        return str(error)
    return None


def is_holiday(country: str, day: date) -> bool:
    """Whether `day` is a public holiday in `country` ("GB", "US-CA"). Raises CalendarError."""
    return day in _holiday_table(country, day.year)


def holiday_name(country: str, day: date) -> str | None:
    """The name of the public holiday on `day` in `country`, or None on an ordinary day."""
    return _holiday_table(country, day.year).get(day)


def _split_country(code: str) -> tuple[str, str | None]:
    """("US", "CA") from "us-ca", in the spelling the holidays package uses, or CalendarError."""
    match = _COUNTRY.match(code.strip()) if isinstance(code, str) else None
    if match is None:
        raise CalendarError(
            f"{code!r} is not a country code; write a two-letter ISO code like GB, "
            "optionally with a subdivision like US-CA or GB-SCT"
        )
    country, subdivision = match.group(1).upper(), match.group(2)
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise CalendarError(
            f"there is no public holiday calendar for {country!r}; "
            "use a supported ISO code like GB or US, or leave holidays out"
        )
    if subdivision is None:
        return country, None
    known: list[str] = list(supported[country])
    for candidate in known:
        if candidate.lower() == subdivision.strip().lower():
            return country, candidate
    if not known:
        raise CalendarError(
            f"{country} has one public holiday calendar with no subdivisions; "
            f"write {country} instead of {code!r}"
        )
    shown = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
    raise CalendarError(
        f"{subdivision!r} is not a subdivision of {country} in {code!r}; use one of {shown}"
    )


@lru_cache(maxsize=1024)
def _holiday_table(code: str, year: int) -> Mapping[date, str]:
    """A year of holidays for one code (country plus subdivision), built once per process.

    Keyed on the code exactly as written, so the hot path pays one cache lookup and no parsing;
    "gb" and "GB" are two small entries pointing at the same holidays.
    """
    country, subdivision = _split_country(code)
    # expand=False: a lookup outside `year` must not grow a table that is shared through the cache.
    table = holidays.country_holidays(country, subdiv=subdivision, years=year, expand=False)
    return {day: str(name) for day, name in table.items()}


# --- availability ----------------------------------------------------------------------------


class Unavailable(NamedTuple):
    """Why a rep is off work at a moment: `said` follows the rep's name in a one-line reason
    ("Alice Adams is outside working hours"); `specifics` is what an explanation adds to it in
    brackets, if anything ("07:05 in Europe/Berlin, works 09:00-17:00"); `detail` is the whole of
    it on its own ("outside working hours (07:05 in Europe/Berlin, works 09:00-17:00)")."""

    said: str
    detail: str
    specifics: str | None = None


def unavailable_reason(hours: WorkingHours, now: datetime) -> str | None:
    """None when `now` is inside the rep's working time, else a short reason an admin can read."""
    off = unavailability(hours, now)
    return off.detail if off is not None else None


def unavailability(hours: WorkingHours, now: datetime) -> Unavailable | None:
    """None when `now` is inside the rep's working time, else why not (see `Unavailable`).

    Reads the rep's wall clock: on a night the clocks change, a shift boundary that falls in the
    skipped or repeated hour is taken as the clock shows it. A working day that is a holiday
    reports the holiday; a day off reports the day, before the time of day is considered.
    """
    # Checks tzinfo rather than utcoffset(), which would add a third to this function's cost; a
    # tzinfo whose offset is None is not something zoneinfo or datetime.UTC ever produce.
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    local = now.astimezone(hours.tz)
    clock = local.time()
    start, end = hours.start, hours.end
    if start < end:
        inside = start <= clock < end
        day = local.date()
    elif clock >= start:
        inside, day = True, local.date()
    elif clock < end:
        inside, day = True, local.date() - _ONE_DAY
    else:
        inside, day = False, local.date()
    if day.weekday() not in hours.days:
        weekday = DAY_NAMES[day.weekday()]
        return Unavailable(f"does not work on {weekday}s", f"not a working day ({weekday})", None)
    if hours.holidays_country is not None:
        name = _holiday_table(hours.holidays_country, day.year).get(day)
        if name is not None:
            return Unavailable("is on a public holiday", f"on a public holiday ({name})", name)
    if inside:
        return None
    # Not "{clock:%H:%M}": strftime is the most expensive step left, and most reps considered
    # for a lead at night take this path.
    specifics = (
        f"{clock.hour:02d}:{clock.minute:02d} in {hours.tz}, works {_hours_label(start, end)}"
    )
    return Unavailable(
        "is outside working hours", f"outside working hours ({specifics})", specifics
    )


@lru_cache(maxsize=256)
def _hours_label(start: time, end: time) -> str:
    return f"{start:%H:%M}-{end:%H:%M}"


class OffHoursMemo:
    """Who is off working hours in one minute, filled in as reps are looked at.

    Working hours are whole minutes and holidays whole days, so the answer holds for the whole
    minute; the memo is kept on the policy (`Policy.off_hours`) and starts afresh each minute.
    It maps a rep id to None when the rep is at work, else to what the engine records for the
    skip (built from `unavailability`); the engine is its only reader, hence `Any`.
    """

    __slots__ = ("last_now", "minute", "reasons")

    def __init__(self) -> None:
        self.last_now: datetime | None = None
        self.minute = -1
        self.reasons: dict[str, Any] = {}

    def at(self, now: datetime) -> dict[str, Any]:
        # A caller routing many leads at one `now` passes the same object every time: that
        # skips `timestamp()`, which has to look up the zone's offset.
        if now is not self.last_now:
            minute = int(now.timestamp()) // 60
            if minute != self.minute:
                self.minute = minute
                self.reasons = {}
            self.last_now = now
        return self.reasons
