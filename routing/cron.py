"""Cron expressions as admins write them: standard crontab, five fields, where day-of-week 0 (and
7) is Sunday and 1 is Monday.

APScheduler 3 reads day-of-week numbers differently (0 is Monday), so "0 9 * * 1-5" passed to it
as written fires Tuesday to Saturday. The day-of-week field is therefore translated to day names
before APScheduler sees it; the other four fields mean the same to both.
"""

from __future__ import annotations

from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_trigger(expression: str, timezone: tzinfo | str) -> CronTrigger:
    """The trigger for a standard five-field crontab line in `timezone`. Raises ValueError."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields, this one has {len(fields)}")
    minute, hour, day, month, weekdays = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_weekdays(weekdays),
        timezone=timezone,
    )


def _weekdays(field: str) -> str:
    """A standard day-of-week field as the list of day names it selects ("*" stays "*")."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        body, slash, step_text = part.partition("/")
        step = _number(step_text, "step") if slash else 1
        if step < 1:
            raise ValueError(f"day-of-week step must be 1 or more in {part!r}")
        if body == "*":
            first, last = 0, 6
        elif "-" in body:
            start, _, end = body.partition("-")
            first, last = _day(start), _day(end)
        else:
            first = _day(body)
            last = 6 if slash else first  # "1/2": from Monday, every other day
        if first > last:
            raise ValueError(f"day-of-week range {body!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_DAY_NAMES[day] for day in sorted(days))


def _day(text: str) -> int:
    name = text.strip().lower()
    if name.isdigit():
        number = int(name)
        if number > 7:
            raise ValueError(f"day of week {text!r} is not 0-7 (0 and 7 are Sunday)")
        return number
    if name[:3] in _DAY_NAMES and len(name) >= 3:
        return _DAY_NAMES.index(name[:3])
    raise ValueError(f"{text!r} is not a day of the week (0-7 or sun-sat)")


def _number(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a {what}")
    return int(text)
