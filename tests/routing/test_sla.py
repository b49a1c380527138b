"""The SLA deadline: the wall clock and the business-hours clock (`sla.clock`), in the engine's
decision and in `sla_deadline`, and the working-time arithmetic under them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from routing.calendar import WorkingHours, holiday_name, unavailable_reason
from routing.decision import Decision
from routing.engine import route
from routing.leads import parse_lead
from routing.model import Outcome
from routing.overrides import assigned_by_hand
from routing.policy import Policy, PolicyError, Rep, Sla, parse_policy
from routing.working_time import add_working_time, sla_deadline

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
EVERY_DAY = frozenset(range(7))

# 2026: London changes its clocks on Sundays 29 March and 25 October, New York on Sundays 8 March
# and 1 November. Tuesday 3 March is an ordinary working day in both.
LONDON_REP = WorkingHours(start=time(9), end=time(18), tz=LONDON, holidays_country="GB")
NEW_YORK_REP = WorkingHours(start=time(9), end=time(18), tz=NEW_YORK, holidays_country="US")


def at(tz: ZoneInfo, day: str, clock: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=tz)


def policy_with(clock: str, sla: str = "15m", **rep: Any) -> Policy:
    """One rep, `ann`, given every lead by the one rule, with the SLA on `clock`."""
    return parse_policy(
        json.dumps(
            {
                "timezone": "Europe/London",
                "reps": [{"id": "ann", "name": "Ann", **rep}],
                "sla": {"default": sla, "clock": clock},
                "qualify": [
                    {"name": "Spam", "when": {"source": "spam"}, "outcome": "disqualified"}
                ],
                "rules": [
                    {"name": "Partners", "when": {"source": "partner"}, "assign": "queue"},
                    {"name": "Everyone", "assign": {"rep": "ann"}},
                ],
            }
        )
    )


@cache
def sla_on(clock: str) -> Sla:
    return policy_with(clock).sla


def decide(policy: Policy, now: datetime, **fields: Any) -> Decision:
    return route(parse_lead({"id": "L-1", **fields}), policy=policy, now=now)


# --- the decision's deadline ------------------------------------------------------------------


def test_on_the_wall_clock_an_assigned_lead_is_due_its_sla_after_now() -> None:
    policy = policy_with("wall", hours="09:00-18:00")
    now = at(LONDON, "2026-03-03", "17:55")
    decision = decide(policy, now)
    assert decision.outcome is Outcome.ASSIGNED
    assert decision.sla_due_at == now + timedelta(minutes=15)


def test_on_the_business_clock_an_sla_offered_at_17_55_falls_due_at_09_10_next_morning() -> None:
    policy = policy_with("business", hours="09:00-18:00", holidays="GB")
    decision = decide(policy, at(LONDON, "2026-03-03", "17:55"))
    assert decision.sla_due_at == at(LONDON, "2026-03-04", "09:10")
    assert decision.sla_seconds == 15 * 60  # the length stays the admin's 15 minutes


def test_the_business_clock_uses_the_reps_own_zone_and_holidays() -> None:
    # Wednesday 25 Nov 2026 17:55 in New York; Thursday is Thanksgiving, Friday is a working day.
    policy = policy_with(
        "business", hours="09:00-18:00", timezone="America/New_York", holidays="US"
    )
    decision = decide(policy, at(NEW_YORK, "2026-11-25", "17:55"))
    assert decision.sla_due_at == at(NEW_YORK, "2026-11-27", "09:10")


def test_the_deadline_is_given_in_utc_on_either_clock() -> None:
    now = at(LONDON, "2026-06-02", "17:55")  # BST, UTC+1
    for clock, due in (("wall", "17:10"), ("business", "08:10")):
        decision = decide(policy_with(clock, hours="09:00-18:00"), now)
        assert decision.sla_due_at is not None
        assert decision.sla_due_at.tzinfo is UTC
        day = "2026-06-02" if clock == "wall" else "2026-06-03"
        assert decision.sla_due_at == at(ZoneInfo("UTC"), day, due)


def test_the_business_clock_leaves_the_reason_and_the_trace_as_they_were() -> None:
    now = at(LONDON, "2026-03-03", "17:55")
    wall = decide(policy_with("wall", hours="09:00-18:00"), now)
    business = decide(policy_with("business", hours="09:00-18:00"), now)
    assert business.sla_due_at != wall.sla_due_at
    assert (business.reason, business.trace) == (wall.reason, wall.trace)


def test_on_the_business_clock_a_rep_who_keeps_no_hours_counts_wall_time() -> None:
    now = at(LONDON, "2026-03-07", "23:55")  # a Saturday night
    decision = decide(policy_with("business"), now)
    assert decision.sla_due_at == now + timedelta(minutes=15)


def test_on_the_business_clock_a_rep_with_holidays_but_no_hours_skips_only_the_holidays() -> None:
    # Good Friday, 3 April 2026, is a public holiday in Great Britain; Saturday is not.
    assert holiday_name("GB", date(2026, 4, 3)) is not None
    assert holiday_name("GB", date(2026, 4, 4)) is None
    policy = policy_with("business", sla="1h", holidays="GB")
    decision = decide(policy, at(LONDON, "2026-04-02", "23:30"))
    assert decision.sla_due_at == at(LONDON, "2026-04-04", "00:30")


def test_leads_that_are_not_assigned_have_no_deadline() -> None:
    policy = policy_with("business", hours="09:00-18:00")
    now = at(LONDON, "2026-03-03", "10:00")
    queued = decide(policy, now, source="partner")
    disqualified = decide(policy, now, source="spam")
    assert (queued.outcome, disqualified.outcome) == (Outcome.QUEUED, Outcome.DISQUALIFIED)
    assert queued.sla_due_at is None and disqualified.sla_due_at is None


def test_a_wall_clock_sla_counts_real_time_across_the_night_the_clocks_go_forward() -> None:
    policy = policy_with("wall", sla="1h")
    now = at(LONDON, "2026-03-29", "00:30")  # GMT; at 01:00 the clocks jump to 02:00 BST
    due = decide(policy, now).sla_due_at
    assert due is not None
    assert due.astimezone(UTC) - now.astimezone(UTC) == timedelta(hours=1)
    local = due.astimezone(LONDON)
    assert (local.hour, local.minute) == (2, 30)


# --- sla_deadline, for a start the service chooses ----------------------------------------------


def rep_with(hours: WorkingHours | None) -> Rep:
    return Rep(id="ann", name="Ann", tz=hours.tz if hours else LONDON, hours=hours)


def test_sla_deadline_follows_the_policys_clock() -> None:
    wall, business = sla_on("wall"), sla_on("business")
    rep = rep_with(LONDON_REP)
    friday_evening = at(LONDON, "2026-03-06", "17:30")
    assert sla_deadline(wall, rep, friday_evening, 3600) == at(LONDON, "2026-03-06", "18:30")
    assert sla_deadline(business, rep, friday_evening, 3600) == at(LONDON, "2026-03-09", "09:30")


def test_sla_deadline_of_zero_seconds_is_the_start_itself_even_outside_working_hours() -> None:
    business = sla_on("business")
    sunday = at(LONDON, "2026-03-08", "12:00")
    due = sla_deadline(business, rep_with(LONDON_REP), sunday, 0)
    assert due == sunday
    assert due.tzinfo is UTC


@pytest.mark.parametrize("clock", ["wall", "business"])
def test_sla_deadline_refuses_a_naive_start_and_a_negative_length(clock: str) -> None:
    sla = sla_on(clock)
    with pytest.raises(ValueError, match="timezone-aware"):
        sla_deadline(sla, rep_with(LONDON_REP), datetime(2026, 3, 3, 10), 60)
    with pytest.raises(ValueError, match="must not be negative"):
        sla_deadline(sla, rep_with(LONDON_REP), at(LONDON, "2026-03-03", "10:00"), -1)


def test_working_days_that_name_no_day_are_refused_when_the_policy_loads() -> None:
    for days in ([], ""):
        with pytest.raises(PolicyError) as caught:
            parse_policy(
                json.dumps({"reps": [{"id": "ann", "hours": "09:00-18:00", "days": days}]})
            )
        assert "reps[0].days" in caught.value.report()
        assert "names no days" in caught.value.report()


# --- working-time arithmetic --------------------------------------------------------------------


def test_an_sla_started_before_the_working_day_counts_from_its_start() -> None:
    due = add_working_time(LONDON_REP, at(LONDON, "2026-03-03", "07:30"), 15 * 60)
    assert due == at(LONDON, "2026-03-03", "09:15")


def test_an_sla_started_at_the_end_of_the_day_counts_from_the_next_morning() -> None:
    due = add_working_time(LONDON_REP, at(LONDON, "2026-03-03", "18:00"), 15 * 60)
    assert due == at(LONDON, "2026-03-04", "09:15")


def test_an_sla_that_ends_exactly_at_the_end_of_the_day_is_due_that_evening() -> None:
    due = add_working_time(LONDON_REP, at(LONDON, "2026-03-03", "09:00"), 9 * 3600)
    assert due == at(LONDON, "2026-03-03", "18:00")


def test_a_holiday_counts_only_for_the_reps_own_country() -> None:
    # Thanksgiving, Thursday 26 Nov 2026: a New York rep is off, a London rep works.
    wednesday = "2026-11-25"
    assert add_working_time(NEW_YORK_REP, at(NEW_YORK, wednesday, "17:55"), 900) == at(
        NEW_YORK, "2026-11-27", "09:10"
    )
    assert add_working_time(LONDON_REP, at(LONDON, wednesday, "17:55"), 900) == at(
        LONDON, "2026-11-26", "09:10"
    )


def test_twenty_working_hours_from_friday_afternoon_fall_due_on_tuesday() -> None:
    # Friday 14:00-18:00 is 4 hours, Monday 9, Tuesday the last 7.
    due = add_working_time(LONDON_REP, at(LONDON, "2026-03-06", "14:00"), 20 * 3600)
    assert due == at(LONDON, "2026-03-10", "16:00")


@pytest.mark.parametrize(
    ("tz", "day", "utc_start", "utc_end"),
    [
        (LONDON, "2026-03-29", "08:00", "17:00"),  # spring forward: BST from 01:00 GMT
        (LONDON, "2026-10-25", "09:00", "18:00"),  # fall back: GMT from 01:00 GMT
        (NEW_YORK, "2026-03-08", "13:00", "22:00"),  # spring forward: EDT
        (NEW_YORK, "2026-11-01", "14:00", "23:00"),  # fall back: EST
    ],
)
def test_a_nine_to_six_day_holds_nine_hours_on_the_days_the_clocks_change(
    tz: ZoneInfo, day: str, utc_start: str, utc_end: str
) -> None:
    hours = WorkingHours(start=time(9), end=time(18), tz=tz, days=EVERY_DAY)
    nine = at(tz, day, "09:00")
    assert nine.astimezone(UTC) == at(ZoneInfo("UTC"), day, utc_start)
    due = add_working_time(hours, nine, 9 * 3600)
    assert due == at(tz, day, "18:00")
    assert due.astimezone(UTC) == at(ZoneInfo("UTC"), day, utc_end)
    # One more second of work waits for nine the next morning.
    next_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    assert add_working_time(hours, nine, 9 * 3600 + 1) == at(tz, next_day, "09:00:01")


def test_an_sla_carried_over_the_autumn_weekend_in_new_york_resumes_on_the_new_offset() -> None:
    # Friday 30 Oct 17:30 EDT (UTC-4); Monday 2 Nov is EST (UTC-5).
    due = add_working_time(NEW_YORK_REP, at(NEW_YORK, "2026-10-30", "17:30"), 3600)
    assert due == at(NEW_YORK, "2026-11-02", "09:30")
    assert due.astimezone(UTC) == datetime(2026, 11, 2, 14, 30, tzinfo=UTC)


def test_whole_days_of_working_time_join_up_without_losing_a_microsecond() -> None:
    # What the policy builds for a rep with holidays but no hours: every day, all day.
    all_day = WorkingHours(
        start=time.min, end=time.max, days=EVERY_DAY, tz=LONDON, holidays_country="GB"
    )
    start = at(LONDON, "2026-03-03", "23:50")
    assert add_working_time(all_day, start, 15 * 60) == at(LONDON, "2026-03-04", "00:05")
    assert add_working_time(all_day, start, 2 * 86400) == at(LONDON, "2026-03-05", "23:50")
    # The night the clocks go forward, Sunday holds 23 real hours.
    due = add_working_time(all_day, at(LONDON, "2026-03-29", "00:00"), 23 * 3600)
    assert due == at(LONDON, "2026-03-30", "00:00")


# --- properties -------------------------------------------------------------------------------

ZONES = [
    LONDON,
    NEW_YORK,
    ZoneInfo("America/Los_Angeles"),
    ZoneInfo("Asia/Kolkata"),
    ZoneInfo("Australia/Sydney"),
]
# The clocks change between 00:00 and 04:00 local time in all of ZONES. Boundaries from 04:00 on
# are read the same way by the wall clock (`unavailable_reason`) and by the working-time
# arithmetic; inside that window the two deliberately differ (see `add_working_time`).
minutes_of_day = st.builds(time, st.integers(0, 23), st.integers(0, 59))
minutes_from_four = st.builds(time, st.integers(4, 23), st.integers(0, 59))
countries = st.sampled_from([None, "GB", "US-CA"])


@st.composite
def working_hours(draw: st.DrawFn, clock: st.SearchStrategy[time] = minutes_of_day) -> WorkingHours:
    if clock is minutes_of_day and draw(st.integers(0, 9)) == 0:
        start, end = time.min, time.max  # all day, as for a rep with holidays but no hours
    else:
        start, end = draw(clock), draw(clock)
        assume(start != end)
    return WorkingHours(
        start=start,
        end=end,
        days=draw(st.frozensets(st.integers(0, 6), min_size=1)),
        tz=draw(st.sampled_from(ZONES)),
        holidays_country=draw(countries),
    )


moments = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2030, 12, 31),
    timezones=st.sampled_from(ZONES),
)
durations = st.integers(0, 2 * 86400)


def utc(moment: datetime) -> datetime:
    # Datetimes sharing one ZoneInfo compare by wall clock, which is not time order across a
    # change of offset; UTC is.
    return moment.astimezone(UTC)


@settings(max_examples=200, deadline=None)
@given(hours=working_hours(), start=moments, first=durations, second=durations)
def test_adding_working_time_in_two_goes_is_the_same_as_adding_it_in_one(
    hours: WorkingHours, start: datetime, first: int, second: int
) -> None:
    in_two = add_working_time(hours, add_working_time(hours, start, first), second)
    assert utc(in_two) == utc(add_working_time(hours, start, first + second))


@settings(max_examples=200, deadline=None)
@given(hours=working_hours(minutes_from_four), start=moments, seconds=st.integers(1, 2 * 86400))
def test_a_deadline_falls_inside_working_time_or_at_the_end_of_it(
    hours: WorkingHours, start: datetime, seconds: int
) -> None:
    due = add_working_time(hours, start, seconds)
    assert utc(due) > utc(start)
    # The last microsecond before the deadline is one the rep works.
    assert unavailable_reason(hours, due - timedelta(microseconds=1)) is None


@settings(max_examples=200, deadline=None)
@given(hours=working_hours(), start=moments, seconds=durations)
def test_a_business_deadline_is_never_before_the_wall_deadline(
    hours: WorkingHours, start: datetime, seconds: int
) -> None:
    rep = rep_with(hours)
    wall = sla_deadline(sla_on("wall"), rep, start, seconds)
    business = sla_deadline(sla_on("business"), rep, start, seconds)
    assert utc(wall) - utc(start) == timedelta(seconds=seconds)
    assert utc(business) >= utc(wall)
    assert business.tzinfo is UTC and wall.tzinfo is UTC


@st.composite
def long_enough_hours(draw: st.DrawFn) -> WorkingHours:
    hours = draw(working_hours(minutes_from_four))
    shift = (datetime.combine(date.min, hours.end) - datetime.combine(date.min, hours.start)) % (
        timedelta(days=1)
    )
    assume(shift >= timedelta(hours=2))
    return hours


@settings(max_examples=100, deadline=None)
@given(
    hours=long_enough_hours(),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)).map(
        lambda naive: naive.replace(second=0, microsecond=0, tzinfo=UTC)
    ),
    minutes=st.integers(0, 180),
)
def test_a_deadline_is_where_a_minute_by_minute_count_of_working_time_ends(
    hours: WorkingHours, start: datetime, minutes: int
) -> None:
    # A slow, obviously right model: walk the clock a minute at a time from `start` and count the
    # minutes the rep is available (every offset in ZONES is whole minutes, so none is split).
    moment, left = start, minutes
    while left:
        if unavailable_reason(hours, moment) is None:
            left -= 1
        moment += timedelta(minutes=1)
    assert utc(add_working_time(hours, start, minutes * 60)) == moment


def test_the_explanation_says_when_the_sla_counts_only_working_hours() -> None:
    from routing.explain import explain

    now = at(LONDON, "2026-03-03", "17:55")
    business = policy_with("business", hours="09:00-18:00")
    wall = policy_with("wall", hours="09:00-18:00")
    assert "within 15m of working hours" in explain(decide(business, now), business)
    assert "of working hours" not in explain(decide(wall, now), wall)


# --- the SLA by source ------------------------------------------------------------------------

NO_CONDITION_ON_SOURCE = {
    "reps": [{"id": "ann", "name": "Ann"}, {"id": "bob", "name": "Bob"}],
    "managers": [{"id": "maria", "name": "Maria"}],
    "sla": {"default": "5s", "by_source": {"Webinar": "1h"}},
    "rules": [{"name": "Everyone", "assign": {"rep": "ann"}}],
}


def test_a_source_sla_applies_when_no_rule_mentions_the_source() -> None:
    policy = parse_policy(json.dumps(NO_CONDITION_ON_SOURCE))
    now = at(LONDON, "2026-03-03", "10:00")
    decision = decide(policy, now, source="webinar")
    assert decision.sla_seconds == 3600
    assert decision.sla_due_at == now + timedelta(hours=1)
    assert decide(policy, now, source="Chat").sla_seconds == 5


def test_a_lead_assigned_by_hand_gets_the_sla_of_its_source_too() -> None:
    policy = parse_policy(json.dumps(NO_CONDITION_ON_SOURCE))
    now = at(LONDON, "2026-03-03", "10:00")
    lead = parse_lead({"id": "L-1", "source": " WEBINAR "})
    decision = assigned_by_hand(lead, policy=policy, rep="bob", by="maria", now=now)
    assert decision.sla_seconds == 3600
