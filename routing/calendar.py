"""When a rep works: hours, weekdays and public holidays, read in the rep's own time zone.

Nothing here reads the clock; every function takes the moment it reasons about. Working time is
described as wall-clock times in the rep's zone ("09:00-17:30" in Europe/London), and a shift whose
end is earlier than its start runs overnight and belongs to the day it starts on: a 22:00-06:00
shift that starts on Friday is Friday's, even at 03:00 on Saturday, and it is that starting day that
must be a working day and not a public holiday.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

import holidays

if TYPE_CHECKING:  # the policy imports this module; these are only its types
    from routing.policy import Rep, Sla

__all__ = [
    "WEEKDAYS",
    "CalendarError",
    "Unavailable",
    "WorkingHours",
    "add_working_time",
    "holiday_name",
    "is_holiday",
    "next_working_start",
    "parse_days",
    "parse_hours",
    "sla_deadline",
    "unavailability",
    "unavailable_reason",
    "validate_holidays_country",
]

WEEKDAYS: frozenset[int] = frozenset(range(5))

# Deliberately not calendar.day_name or strftime("%A"): both follow the process locale, and a
# reason shown to an admin should not change language with the server's settings.
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–—]\s*(\d{1,2}):(\d{2})\s*$")
_COUNTRY = re.compile(r"^([A-Za-z]{2})(?:-(.+))?$")

# How far to look for working time before concluding there is none, so that a calendar with every
# working day a holiday fails loudly instead of looping.
_SEARCH_DAYS = 366

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
        for number, name in enumerate(_DAY_NAMES):
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
    """Why a rep is off work at a moment, said twice: `said` follows the rep's name in a
    one-line reason ("Alice Adams does not work on Saturdays"), `detail` is the whole of it for
    an explanation ("not a working day (Saturday)")."""

    said: str
    detail: str


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
        weekday = _DAY_NAMES[day.weekday()]
        return Unavailable(f"does not work on {weekday}s", f"not a working day ({weekday})")
    if hours.holidays_country is not None:
        name = _holiday_table(hours.holidays_country, day.year).get(day)
        if name is not None:
            return Unavailable("is on a public holiday", f"on a public holiday ({name})")
    if inside:
        return None
    # Not "{clock:%H:%M}": strftime is the most expensive step left, and most reps considered
    # for a lead at night take this path.
    return Unavailable(
        "is outside working hours",
        f"outside working hours ({clock.hour:02d}:{clock.minute:02d} in {hours.tz}, "
        f"works {_hours_label(start, end)})",
    )


@lru_cache(maxsize=256)
def _hours_label(start: time, end: time) -> str:
    return f"{start:%H:%M}-{end:%H:%M}"


def next_working_start(hours: WorkingHours, now: datetime) -> datetime:
    """The start of the first working period that begins strictly after `now`, in the rep's zone.

    Inside working hours that is the next period after the current one ("out until my next working
    day"); outside them it is the next one to begin, which may be later today. Days off and public
    holidays are skipped. Raises CalendarError when no working time begins within a year.
    """
    moment = _as_utc(now)
    for period_start, _ in _working_periods(hours, moment):
        if period_start > moment:
            start = period_start.astimezone(hours.tz)
            # A period wholly inside the hour the clocks skip (02:00-02:01 on the night they go
            # forward) shows on the wall clock after its own end: the rep is never seen at work
            # in it, so the next one is their next working period.
            if unavailable_reason(hours, start) is None:
                return start
    raise _no_working_time(hours)


def add_working_time(hours: WorkingHours, start: datetime, seconds: int) -> datetime:
    """The moment `seconds` of the rep's working time after `start` have elapsed, in the rep's zone.

    A clock that only runs during working periods: a 15-minute SLA started at 17:55 for a
    09:00-18:00 rep falls due at 09:10 on the next working day, and one started on Saturday counts
    from Monday 09:00. A deadline that uses up a period exactly falls due at its end.

    Daylight saving: each period runs from the instant the rep's wall clock reads `start` to the
    instant it reads `end`, and the clock counts the real seconds in between. So a 22:00-06:00 shift
    holds 7 hours on the night the clocks go forward and 9 on the night they go back, while a
    09:00-17:00 day shift keeps its 8 hours. A boundary that falls in the hour that is skipped is
    read with the offset in force before the change (02:30 becomes 03:30), and one in the hour
    that repeats means its first occurrence; zoneinfo's own defaults, fold=0.

    Raises CalendarError when a year passes with no working time in it.
    """
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")
    moment = _as_utc(start)
    remaining = timedelta(seconds=seconds)
    if not remaining:
        return moment.astimezone(hours.tz)
    for period_start, period_end in _working_periods(hours, moment):
        if period_end <= moment:
            continue
        begin = max(period_start, moment)
        available = period_end - begin
        if remaining <= available:
            return (begin + remaining).astimezone(hours.tz)
        remaining -= available
        moment = period_end
    raise _no_working_time(hours)


def sla_deadline(sla: Sla, rep: Rep, start: datetime, seconds: int) -> datetime:
    """When an SLA of `seconds` given to `rep` at `start` falls due, on the policy's `sla.clock`.

    `wall`: `start` plus `seconds`. `business`: only `rep`'s working time counts, their days off
    and public holidays skipped (`add_working_time`), so a 15-minute SLA given at 17:55 to a
    09:00-18:00 rep falls due at 09:10 on their next working day. A rep who keeps no hours counts
    wall time; one with `holidays` but no `hours` counts every day but their holidays.

    Given in UTC, whatever the zone of `start`. Raises ValueError for a naive `start` or negative
    `seconds`, and CalendarError when a year passes with no working time in it (which a calendar
    of weekly working days and public holidays never does).
    """
    zone = start.tzinfo
    if zone is None:
        raise ValueError(f"start must be timezone-aware, got {start!r}")
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")
    hours = rep.hours
    if hours is not None and sla.clock == "business":
        return add_working_time(hours, start, seconds).astimezone(UTC)
    # The engine computes this for every assigned lead, hence the cached length (an SLA is one
    # of a handful of lengths, and building a timedelta costs more than adding it) and no
    # conversion when `start` is in UTC already. Added in UTC, not in `start`'s zone: aware
    # arithmetic within one zone moves the wall clock, and 00:30 plus an hour would read 01:30
    # on the night that hour does not exist.
    length = _duration(seconds)
    return start + length if zone is UTC else start.astimezone(UTC) + length


@lru_cache(maxsize=256)
def _duration(seconds: int) -> timedelta:
    return timedelta(0, seconds)


def _working_periods(hours: WorkingHours, after: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(start, end) in UTC of each non-empty working period, from the one that may contain `after`.

    Stops once `_SEARCH_DAYS` pass without a working day, so callers' loops are bounded.
    """
    tz, start, end = hours.tz, hours.start, hours.end
    overnight = end < start
    if end == time.max:
        # "Until the end of the day": to midnight, not one microsecond short of it, so that whole
        # days of working time join up and a day holds exactly 24 hours (23 or 25 when the clocks
        # change).
        end, end_offset = time.min, _ONE_DAY
    else:
        end_offset = _ONE_DAY if overnight else timedelta(0)
    day = after.astimezone(tz).date()
    if overnight:
        day -= _ONE_DAY  # yesterday's overnight shift may still be running at `after`
    last_found = day
    while (day - last_found).days <= _SEARCH_DAYS:
        if day.weekday() in hours.days and not (
            hours.holidays_country is not None and is_holiday(hours.holidays_country, day)
        ):
            last_found = day
            period_start = _utc_instant(day, start, tz)
            period_end = _utc_instant(day + end_offset, end, tz)
            # A boundary inside a skipped hour can push the start past the end: no time that day.
            if period_end > period_start:
                yield period_start, period_end
        day += _ONE_DAY


def _utc_instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    # In UTC so that comparisons and subtraction count real time: aware datetimes sharing one
    # ZoneInfo compare and subtract by wall clock, which is wrong across a change of offset.
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def _as_utc(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _no_working_time(hours: WorkingHours) -> CalendarError:
    where = f" with holidays from {hours.holidays_country}" if hours.holidays_country else ""
    return CalendarError(
        f"no working time in the {_SEARCH_DAYS} days ahead for hours "
        f"{hours.start:%H:%M}-{hours.end:%H:%M} on {_describe_days(hours.days)}{where}"
    )


def _describe_days(days: frozenset[int]) -> str:
    return ", ".join(_DAY_NAMES[day][:3].lower() for day in sorted(days))


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
