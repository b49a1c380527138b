"""Counting a rep's working time forward: their next working start, a length of working time
added to a moment, and an SLA's deadline on the policy's clock.

Reads the rep's `WorkingHours` as `routing.calendar` does (overnight shifts belong to the day
they start on, days off and public holidays are skipped), and counts real seconds in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from routing.calendar import DAY_NAMES, CalendarError, WorkingHours, is_holiday, unavailable_reason
from routing.policy import Rep, Sla

# How far to look for working time before concluding there is none, so that a calendar with every
# working day a holiday fails loudly instead of looping.
_SEARCH_DAYS = 366

_ONE_DAY = timedelta(days=1)


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
    return ", ".join(DAY_NAMES[day][:3].lower() for day in sorted(days))
