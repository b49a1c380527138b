"""Digest crons are standard crontab (0 and 7 are Sunday), whatever APScheduler numbers days as."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from routing.cron import crontab_trigger

MONDAY = datetime(2026, 11, 16, tzinfo=UTC)


def fire_days(expression: str) -> list[str]:
    """The weekdays (Mon..Sun) a cron fires on during the week from Monday 16 Nov 2026."""
    trigger = crontab_trigger(expression, "UTC")
    days, previous, now = [], None, MONDAY
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or (fire - MONDAY).days >= 7:
            return days
        days.append(f"{fire:%a}")
        previous, now = fire, fire.replace(hour=23, minute=59)


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 9 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 9 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 9 * * 0", ["Sun"]),
        ("0 9 * * 7", ["Sun"]),
        ("0 9 * * 1,3,5", ["Mon", "Wed", "Fri"]),
        ("0 9 * * 0-6/2", ["Tue", "Thu", "Sat", "Sun"]),
        ("0 9 * * */3", ["Wed", "Sat", "Sun"]),
        ("0 9 * * 5-7", ["Fri", "Sat", "Sun"]),
        ("0 9 * * *", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
        ("0 9 * * Friday", ["Fri"]),
    ],
)
def test_day_of_week_means_what_it_means_in_crontab(expression: str, days: list[str]) -> None:
    assert fire_days(expression) == days


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 9 * *", "5 fields"),
        ("0 9 * * 8", "0-7"),
        ("0 9 * * 5-1", "backwards"),
        ("0 9 * * funday", "not a day of the week"),
        ("0 9 * * */0", "step"),
        ("61 9 * * 1", "59"),
    ],
)
def test_a_malformed_cron_is_refused(expression: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        crontab_trigger(expression, "UTC")
