from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from routing import working_time
from routing.calendar import (
    CalendarError,
    WorkingHours,
    holiday_name,
    is_holiday,
    parse_days,
    parse_hours,
    unavailable_reason,
    validate_holidays_country,
)
from routing.working_time import add_working_time, next_working_start

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
EVERY_DAY = frozenset(range(7))

# 2026: Monday 2 March is an ordinary working week. New York changes its clocks on Sunday 8 March
# and Sunday 1 November, London on Sunday 29 March and Sunday 25 October.
OFFICE = WorkingHours(start=time(9), end=time(17, 30), tz=LONDON, holidays_country="GB")
NINE_TO_SIX = WorkingHours(start=time(9), end=time(18), tz=LONDON, holidays_country="GB")
NIGHTS = WorkingHours(start=time(22), end=time(6), tz=NEW_YORK)


def at(tz: ZoneInfo, day: str, clock: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=tz)


def utc(day: str, clock: str) -> datetime:
    return at(ZoneInfo("UTC"), day, clock)


def hours_offset(moment: datetime) -> float:
    offset = moment.utcoffset()
    assert offset is not None
    return offset / timedelta(hours=1)


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["09:00-17:30", "9:00-17:30", "09:00 - 17:30", "  09:00-17:30 ", "09:00–17:30"]
)
def test_working_hours_are_read_in_the_ways_admins_write_them(text: str) -> None:
    assert parse_hours(text) == (time(9), time(17, 30))


def test_an_end_before_the_start_is_read_as_an_overnight_shift() -> None:
    assert parse_hours("22:00-06:00") == (time(22), time(6))


@pytest.mark.parametrize(
    "text", ["25:00-17:00", "09:60-17:00", "09:00-24:00", "9-5", "09:00", "", "nine to five"]
)
def test_a_time_range_that_cannot_be_read_says_how_to_write_one(text: str) -> None:
    with pytest.raises(CalendarError) as raised:
        parse_hours(text)
    assert str(raised.value) == f"{text!r} is not a time range; write it like 09:00-17:30"


def test_hours_that_start_and_end_at_the_same_time_are_refused() -> None:
    with pytest.raises(CalendarError, match="starts and ends at the same time"):
        parse_hours("09:00-09:00")


@pytest.mark.parametrize(
    ("value", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon,wed,fri", {0, 2, 4}),
        (["sat", "sun"], {5, 6}),
        ("Monday - Friday", {0, 1, 2, 3, 4}),
        ("TUES, thurs", {1, 3}),
        ("sun-thu", {6, 0, 1, 2, 3}),
        (["mon-wed", "friday"], {0, 1, 2, 4}),
        ("sat", {5}),
    ],
)
def test_working_days_are_read_as_abbreviations_full_names_lists_and_ranges(
    value: str | list[str], days: set[int]
) -> None:
    assert parse_days(value) == frozenset(days)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("funday", "'funday' is not a day of the week; write days like mon-fri or mon,wed,fri"),
        ("mon-", "'mon-' is not a day of the week; write days like mon-fri or mon,wed,fri"),
        ("mo,tu", "'mo' is not a day of the week; write days like mon-fri or mon,wed,fri"),
        ("", "'' names no days; write days like mon-fri or mon,wed,fri"),
        ([], "[] names no days; write days like mon-fri or mon,wed,fri"),
    ],
)
def test_days_that_cannot_be_read_say_how_to_write_them(
    value: str | list[str], message: str
) -> None:
    with pytest.raises(CalendarError) as raised:
        parse_days(value)
    assert str(raised.value) == message


def test_working_hours_default_to_monday_to_friday() -> None:
    assert WorkingHours(start=time(9), end=time(17), tz=LONDON).days == frozenset(range(5))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"end": time(9)}, "start and end at 09:00"),
        ({"days": frozenset()}, "at least one working day"),
        ({"days": frozenset({7})}, "numbered 0 \\(Monday\\) to 6 \\(Sunday\\)"),
        ({"holidays_country": "Narnia"}, "is not a country code"),
        ({"start": time(9, tzinfo=UTC)}, "give the time zone as tz"),
    ],
)
def test_working_hours_that_cannot_be_used_are_refused_when_built(
    changes: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {"start": time(9), "end": time(17), "tz": LONDON, **changes}
    with pytest.raises(CalendarError, match=message):
        WorkingHours(**fields)  # type: ignore[arg-type]


# --- public holidays -------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["GB", "US", "US-CA", "GB-SCT", "gb-sct", " DE-BY "])
def test_supported_holiday_countries_and_subdivisions_are_accepted(code: str) -> None:
    assert validate_holidays_country(code) is None


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("GBR", "'GBR' is not a country code; write a two-letter ISO code like GB"),
        ("", "'' is not a country code"),
        ("ZZ", "there is no public holiday calendar for 'ZZ'"),
        ("US-ZZ", "'ZZ' is not a subdivision of US in 'US-ZZ'; use one of AK, AL,"),
        ("GB-Scotland", "use one of ENG, NIR, SCT, WLS"),
        ("AX-1", "AX has one public holiday calendar with no subdivisions; write AX"),
    ],
)
def test_an_unusable_holiday_country_is_explained(code: str, message: str) -> None:
    problem = validate_holidays_country(code)
    assert problem is not None
    assert message in problem


def test_christmas_2026_is_a_holiday_in_great_britain_and_christmas_eve_is_not() -> None:
    assert is_holiday("GB", date(2026, 12, 25))
    assert not is_holiday("GB", date(2026, 12, 24))


def test_boxing_day_2026_falls_on_a_saturday_and_is_observed_on_monday_28th() -> None:
    assert holiday_name("GB", date(2026, 12, 26)) == "Boxing Day"
    assert holiday_name("GB", date(2026, 12, 28)) == "Boxing Day (observed)"


def test_a_subdivision_adds_its_own_holidays() -> None:
    assert holiday_name("GB-SCT", date(2026, 11, 30)) == "Saint Andrew's Day"
    assert not is_holiday("GB", date(2026, 11, 30))
    assert is_holiday("US-CA", date(2026, 11, 27))
    assert not is_holiday("US", date(2026, 11, 27))


def test_looking_up_an_unknown_holiday_country_raises_a_calendar_error() -> None:
    with pytest.raises(CalendarError, match="no public holiday calendar for 'ZZ'"):
        is_holiday("ZZ", date(2026, 1, 1))


# --- unavailable_reason ----------------------------------------------------------------------


def test_a_rep_is_available_inside_working_hours() -> None:
    assert unavailable_reason(OFFICE, at(LONDON, "2026-03-03", "11:00")) is None


def test_working_hours_include_their_start_and_exclude_their_end() -> None:
    assert unavailable_reason(OFFICE, at(LONDON, "2026-03-03", "09:00")) is None
    assert unavailable_reason(OFFICE, at(LONDON, "2026-03-03", "17:30")) == (
        "outside working hours (17:30 in Europe/London, works 09:00-17:30)"
    )


def test_before_working_hours_the_reason_gives_the_reps_local_time_and_hours() -> None:
    assert unavailable_reason(OFFICE, at(LONDON, "2026-03-03", "08:59:59")) == (
        "outside working hours (08:59 in Europe/London, works 09:00-17:30)"
    )


def test_a_rep_is_not_available_at_the_weekend() -> None:
    assert unavailable_reason(OFFICE, at(LONDON, "2026-03-07", "11:00")) == (
        "not a working day (Saturday)"
    )


def test_a_rep_is_not_available_on_a_public_holiday() -> None:
    assert unavailable_reason(OFFICE, at(LONDON, "2026-12-25", "11:00")) == (
        "on a public holiday (Christmas Day)"
    )
    assert unavailable_reason(OFFICE, at(LONDON, "2026-12-28", "11:00")) == (
        "on a public holiday (Boxing Day (observed))"
    )


def test_a_holiday_on_a_day_off_is_reported_as_the_day_off() -> None:
    assert unavailable_reason(OFFICE, at(LONDON, "2026-12-26", "11:00")) == (
        "not a working day (Saturday)"
    )


def test_holidays_are_ignored_when_the_rep_has_no_holiday_country() -> None:
    hours = WorkingHours(start=time(9), end=time(17, 30), tz=LONDON)
    assert unavailable_reason(hours, at(LONDON, "2026-12-25", "11:00")) is None


def test_a_rep_in_los_angeles_is_judged_by_los_angeles_time_when_now_is_in_utc() -> None:
    hours = WorkingHours(start=time(9), end=time(17, 30), tz=LOS_ANGELES)
    assert unavailable_reason(hours, utc("2026-03-04", "15:12")) == (
        "outside working hours (07:12 in America/Los_Angeles, works 09:00-17:30)"
    )
    assert unavailable_reason(hours, utc("2026-03-04", "17:00")) is None
    # Saturday in UTC is still Friday evening in Los Angeles.
    assert unavailable_reason(hours, utc("2026-03-07", "02:00")) == (
        "outside working hours (18:00 in America/Los_Angeles, works 09:00-17:30)"
    )
    # And early Monday in UTC is still Sunday there.
    assert unavailable_reason(hours, utc("2026-03-09", "05:00")) == "not a working day (Sunday)"


def test_an_overnight_shift_belongs_to_the_day_it_starts_on() -> None:
    assert unavailable_reason(NIGHTS, at(NEW_YORK, "2026-03-06", "23:00")) is None
    assert unavailable_reason(NIGHTS, at(NEW_YORK, "2026-03-07", "03:00")) is None
    assert unavailable_reason(NIGHTS, at(NEW_YORK, "2026-03-07", "22:30")) == (
        "not a working day (Saturday)"
    )
    assert unavailable_reason(NIGHTS, at(NEW_YORK, "2026-03-09", "03:00")) == (
        "not a working day (Sunday)"
    )
    assert unavailable_reason(NIGHTS, at(NEW_YORK, "2026-03-03", "12:00")) == (
        "outside working hours (12:00 in America/New_York, works 22:00-06:00)"
    )


def test_an_overnight_shift_is_off_when_it_would_start_on_a_holiday() -> None:
    hours = WorkingHours(start=time(22), end=time(6), tz=LONDON, holidays_country="GB")
    assert unavailable_reason(hours, at(LONDON, "2026-12-24", "23:00")) is None
    assert unavailable_reason(hours, at(LONDON, "2026-12-25", "03:00")) is None
    assert unavailable_reason(hours, at(LONDON, "2026-12-25", "23:00")) == (
        "on a public holiday (Christmas Day)"
    )


@pytest.mark.parametrize(
    ("tz", "before", "after"),
    [(LONDON, "2026-03-28", "2026-03-29"), (NEW_YORK, "2026-03-07", "2026-03-08")],
)
def test_on_the_day_the_clocks_go_forward_hours_follow_the_new_local_time(
    tz: ZoneInfo, before: str, after: str
) -> None:
    hours = WorkingHours(start=time(9), end=time(17), tz=tz, days=EVERY_DAY)
    # The same UTC hour is 08:30 local the day before and 09:30 local once the clocks have moved.
    utc_hour = "08:30" if tz is LONDON else "13:30"
    assert unavailable_reason(hours, utc(before, utc_hour)) is not None
    assert unavailable_reason(hours, utc(after, utc_hour)) is None


@pytest.mark.parametrize(
    ("tz", "night", "first_pass", "second_pass"),
    [
        (LONDON, "2026-10-24", utc("2026-10-25", "00:30"), utc("2026-10-25", "01:30")),
        (NEW_YORK, "2026-10-31", utc("2026-11-01", "05:30"), utc("2026-11-01", "06:30")),
    ],
)
def test_a_night_shift_covers_both_passes_of_the_hour_repeated_when_the_clocks_go_back(
    tz: ZoneInfo, night: str, first_pass: datetime, second_pass: datetime
) -> None:
    hours = WorkingHours(start=time(22), end=time(6), tz=tz, days=EVERY_DAY)
    assert first_pass.astimezone(tz).time() == second_pass.astimezone(tz).time() == time(1, 30)
    assert unavailable_reason(hours, first_pass) is None
    assert unavailable_reason(hours, second_pass) is None


def test_a_naive_now_is_refused() -> None:
    naive = datetime(2026, 3, 3, 11, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        unavailable_reason(OFFICE, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_working_start(OFFICE, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_time(OFFICE, naive, 60)


# --- next_working_start ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(("2026-03-03", "11:00"), ("2026-03-04", "09:00"), id="inside hours"),
        pytest.param(("2026-03-03", "09:00"), ("2026-03-04", "09:00"), id="at the start"),
        pytest.param(("2026-03-03", "19:00"), ("2026-03-04", "09:00"), id="after hours"),
        pytest.param(("2026-03-03", "07:00"), ("2026-03-03", "09:00"), id="before hours"),
        pytest.param(("2026-03-06", "21:00"), ("2026-03-09", "09:00"), id="friday night"),
        pytest.param(("2026-03-07", "12:00"), ("2026-03-09", "09:00"), id="saturday"),
        pytest.param(("2026-12-24", "16:00"), ("2026-12-29", "09:00"), id="before christmas"),
    ],
)
def test_next_working_start_is_the_start_of_the_next_working_period(
    now: tuple[str, str], expected: tuple[str, str]
) -> None:
    start = next_working_start(OFFICE, at(LONDON, *now))
    assert start == at(LONDON, *expected)
    assert start.tzinfo is LONDON


def test_next_working_start_answers_in_the_reps_zone_when_now_is_in_utc() -> None:
    hours = WorkingHours(start=time(9), end=time(17, 30), tz=LOS_ANGELES)
    start = next_working_start(hours, utc("2026-03-07", "01:00"))
    assert start == at(LOS_ANGELES, "2026-03-09", "09:00")
    assert start.tzinfo is LOS_ANGELES
    assert hours_offset(start) == -7  # Daylight time has begun by Monday 9 March.


def test_next_working_start_from_inside_a_night_shift_skips_the_weekend() -> None:
    assert next_working_start(NIGHTS, at(NEW_YORK, "2026-03-07", "03:00")) == (
        at(NEW_YORK, "2026-03-09", "22:00")
    )


def test_a_start_time_skipped_by_the_clocks_going_forward_is_read_with_the_old_offset() -> None:
    hours = WorkingHours(start=time(2, 30), end=time(10), tz=NEW_YORK, days=EVERY_DAY)
    start = next_working_start(hours, at(NEW_YORK, "2026-03-07", "12:00"))
    assert start.replace(tzinfo=None) == datetime(2026, 3, 8, 3, 30)
    assert hours_offset(start) == -4


def test_a_start_time_repeated_by_the_clocks_going_back_means_its_first_occurrence() -> None:
    hours = WorkingHours(start=time(1, 30), end=time(10), tz=NEW_YORK, days=EVERY_DAY)
    start = next_working_start(hours, at(NEW_YORK, "2026-10-31", "12:00"))
    assert start.replace(tzinfo=None) == datetime(2026, 11, 1, 1, 30)
    assert hours_offset(start) == -4


# --- add_working_time ------------------------------------------------------------------------


def test_a_deadline_inside_working_hours_is_plain_addition() -> None:
    assert add_working_time(NINE_TO_SIX, at(LONDON, "2026-03-03", "10:00"), 1800) == (
        at(LONDON, "2026-03-03", "10:30")
    )


def test_a_fifteen_minute_sla_started_at_17_55_falls_due_at_09_10_next_working_day() -> None:
    assert add_working_time(NINE_TO_SIX, at(LONDON, "2026-03-03", "17:55"), 15 * 60) == (
        at(LONDON, "2026-03-04", "09:10")
    )


def test_a_deadline_that_uses_up_the_day_exactly_falls_due_at_its_end() -> None:
    assert add_working_time(NINE_TO_SIX, at(LONDON, "2026-03-03", "17:45"), 15 * 60) == (
        at(LONDON, "2026-03-03", "18:00")
    )


def test_an_sla_started_on_friday_evening_counts_from_monday_morning() -> None:
    assert add_working_time(NINE_TO_SIX, at(LONDON, "2026-03-06", "17:55"), 15 * 60) == (
        at(LONDON, "2026-03-09", "09:10")
    )
    assert add_working_time(NINE_TO_SIX, at(LONDON, "2026-03-06", "20:00"), 3600) == (
        at(LONDON, "2026-03-09", "10:00")
    )


def test_an_sla_started_on_saturday_counts_from_monday_at_nine() -> None:
    assert add_working_time(NINE_TO_SIX, at(LONDON, "2026-03-07", "11:00"), 15 * 60) == (
        at(LONDON, "2026-03-09", "09:15")
    )


def test_an_sla_skips_public_holidays() -> None:
    # Friday 25 Dec is Christmas, then the weekend, then Monday 28 Dec is Boxing Day observed.
    assert add_working_time(NINE_TO_SIX, at(LONDON, "2026-12-24", "17:55"), 15 * 60) == (
        at(LONDON, "2026-12-29", "09:10")
    )


def test_a_long_sla_spans_several_working_days() -> None:
    assert add_working_time(NINE_TO_SIX, at(LONDON, "2026-03-05", "09:00"), 20 * 3600) == (
        at(LONDON, "2026-03-09", "11:00")
    )


def test_an_sla_during_a_night_shift_carries_over_to_the_next_night() -> None:
    assert add_working_time(NIGHTS, at(NEW_YORK, "2026-03-06", "05:00"), 2 * 3600) == (
        at(NEW_YORK, "2026-03-06", "23:00")
    )


def test_a_zero_length_sla_is_due_at_once_in_the_reps_zone() -> None:
    due = add_working_time(OFFICE, utc("2026-03-07", "12:00"), 0)
    assert due == utc("2026-03-07", "12:00")
    assert due.tzinfo is LONDON


def test_a_negative_sla_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        add_working_time(OFFICE, at(LONDON, "2026-03-03", "10:00"), -1)


def test_a_deadline_is_given_in_the_reps_zone_when_started_in_utc() -> None:
    hours = WorkingHours(start=time(9), end=time(17, 30), tz=LOS_ANGELES)
    due = add_working_time(hours, utc("2026-03-04", "15:12"), 600)
    assert due == at(LOS_ANGELES, "2026-03-04", "09:10")
    assert due.tzinfo is LOS_ANGELES


@pytest.mark.parametrize(
    ("tz", "saturday", "sunday"),
    [(LONDON, "2026-03-28", "2026-03-29"), (NEW_YORK, "2026-03-07", "2026-03-08")],
)
def test_a_night_shift_is_an_hour_shorter_when_the_clocks_go_forward(
    tz: ZoneInfo, saturday: str, sunday: str
) -> None:
    hours = WorkingHours(start=time(22), end=time(6), tz=tz, days=EVERY_DAY)
    # 22:00 to 06:00 holds 7 real hours that night, so the eighth hour is worked on Sunday night.
    assert add_working_time(hours, at(tz, saturday, "22:00"), 7 * 3600) == at(tz, sunday, "06:00")
    assert add_working_time(hours, at(tz, saturday, "22:00"), 8 * 3600) == at(tz, sunday, "23:00")


@pytest.mark.parametrize(
    ("tz", "saturday", "sunday"),
    [(LONDON, "2026-10-24", "2026-10-25"), (NEW_YORK, "2026-10-31", "2026-11-01")],
)
def test_a_night_shift_is_an_hour_longer_when_the_clocks_go_back(
    tz: ZoneInfo, saturday: str, sunday: str
) -> None:
    hours = WorkingHours(start=time(22), end=time(6), tz=tz, days=EVERY_DAY)
    # 22:00 to 06:00 holds 9 real hours that night: eight of them end at 05:00 on the new clock.
    assert add_working_time(hours, at(tz, saturday, "22:00"), 8 * 3600) == at(tz, sunday, "05:00")
    assert add_working_time(hours, at(tz, saturday, "22:00"), 9 * 3600) == at(tz, sunday, "06:00")


@pytest.mark.parametrize(
    ("tz", "spring", "autumn"),
    [(LONDON, "2026-03-29", "2026-10-25"), (NEW_YORK, "2026-03-08", "2026-11-01")],
)
def test_a_day_shift_on_a_day_the_clocks_change_keeps_its_length(
    tz: ZoneInfo, spring: str, autumn: str
) -> None:
    hours = WorkingHours(start=time(9), end=time(17), tz=tz, days=EVERY_DAY)
    for day in (spring, autumn):
        assert add_working_time(hours, at(tz, day, "09:00"), 8 * 3600) == at(tz, day, "17:00")


def test_an_sla_carried_over_the_spring_change_resumes_at_nine_on_the_new_clock() -> None:
    hours = WorkingHours(start=time(9), end=time(17), tz=LONDON, days=EVERY_DAY)
    due = add_working_time(hours, at(LONDON, "2026-03-28", "16:30"), 3600)
    assert due == at(LONDON, "2026-03-29", "09:30")
    assert hours_offset(due) == 1


def test_a_calendar_with_no_working_time_for_a_year_raises_instead_of_looping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(working_time, "is_holiday", lambda country, day: True)
    with pytest.raises(CalendarError, match="no working time in the 366 days ahead"):
        add_working_time(OFFICE, at(LONDON, "2026-03-03", "10:00"), 60)
    with pytest.raises(CalendarError, match="no working time in the 366 days ahead"):
        next_working_start(OFFICE, at(LONDON, "2026-03-03", "10:00"))


# --- properties ------------------------------------------------------------------------------

ZONES = [LONDON, NEW_YORK, LOS_ANGELES, ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Sydney")]
# Whole minutes keep every shift at least a minute long, so a duration of a few working days
# cannot send the search decades ahead.
minutes = st.builds(time, st.integers(0, 23), st.integers(0, 59))


@st.composite
def working_hours(draw: st.DrawFn) -> WorkingHours:
    start, end = draw(minutes), draw(minutes)
    assume(start != end)
    return WorkingHours(
        start=start,
        end=end,
        days=draw(st.frozensets(st.integers(0, 6), min_size=1)),
        tz=draw(st.sampled_from(ZONES)),
        holidays_country=draw(st.sampled_from([None, "GB", "US-CA"])),
    )


moments = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2035, 12, 31),
    timezones=st.sampled_from(ZONES),
)


@settings(max_examples=300, deadline=None)
@given(
    hours=working_hours(),
    start=moments,
    durations=st.lists(st.integers(0, 3 * 86400), min_size=2, max_size=2),
)
def test_a_deadline_is_never_before_its_start_and_grows_with_the_duration(
    hours: WorkingHours, start: datetime, durations: list[int]
) -> None:
    shorter, longer = sorted(durations)
    due_shorter = add_working_time(hours, start, shorter)
    due_longer = add_working_time(hours, start, longer)
    # Compared in UTC: datetimes sharing one ZoneInfo compare by wall clock, which is not time order
    # across a change of offset.
    assert due_shorter.astimezone(UTC) >= start.astimezone(UTC)
    assert due_longer.astimezone(UTC) >= due_shorter.astimezone(UTC)
    assert due_longer.tzinfo is hours.tz


@settings(max_examples=300, deadline=None)
@given(hours=working_hours(), now=moments)
def test_a_rep_is_available_at_the_start_of_their_next_working_period(
    hours: WorkingHours, now: datetime
) -> None:
    start = next_working_start(hours, now)
    assert start.astimezone(UTC) > now.astimezone(UTC)
    assert unavailable_reason(hours, start) is None


def test_a_working_period_wholly_in_the_skipped_hour_is_passed_over() -> None:
    """02:00-02:01 in New York does not happen on 12 March 2028 (02:00 becomes 03:00): the
    next working period after that morning's start is the following night's."""
    hours = WorkingHours(
        start=time(2, 0), end=time(2, 1), days=frozenset(range(7)), tz=ZoneInfo("America/New_York")
    )
    start = next_working_start(hours, datetime(2028, 3, 11, 7, 0, tzinfo=ZoneInfo("Europe/London")))
    assert start == datetime(2028, 3, 13, 2, 0, tzinfo=ZoneInfo("America/New_York"))
    assert unavailable_reason(hours, start) is None
