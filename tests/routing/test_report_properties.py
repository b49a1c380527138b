"""Properties of the routing report that hold for any leads: tallies of any split merge into the
tally of the whole, a lead's events settle the same in any order and however often they come,
percentiles are the nearest-rank durations to within 1%, and Wilson intervals hold their rate."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.model import Outcome
from routing.report import (
    GROUPINGS,
    EventKind,
    LeadStory,
    OutcomeEvent,
    Tally,
    build_report,
    merge_all,
    outcomes_of,
    percentile,
    report_of_tallies,
    tally_by,
    wilson_interval,
)
from routing.report.stats import RELATIVE_ACCURACY, histogram

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=7)
FIELDS = ("industry", "region", "segment", "employees")


def _moment(seconds: int | None, start: datetime) -> datetime | None:
    return None if seconds is None else start + timedelta(seconds=seconds)


def _later(base: datetime) -> st.SearchStrategy[datetime | None]:
    # Some events come before the step they follow (a touch logged before the claim), some
    # after `now` is irrelevant: everything is known by `now` in the stories drawn.
    offsets = st.one_of(st.none(), st.integers(min_value=-600, max_value=10 * 86400))
    return offsets.map(lambda seconds: _moment(seconds, base))


@st.composite
def stories(draw: st.DrawFn, lead_id: str) -> LeadStory:
    created = NOW - timedelta(seconds=draw(st.integers(min_value=0, max_value=10 * 86400)))
    outcome = draw(st.sampled_from(Outcome))
    team = draw(st.sampled_from([None, "enterprise", "smb"]))
    amount = draw(
        st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=2).map(Decimal))
    )
    return LeadStory(
        lead_id,
        created_at=created,
        outcome=outcome,
        rule=draw(st.sampled_from([None, "EMEA", "Small business"])),
        team=team,
        rep=draw(st.sampled_from([None, "alice", "bob", "carol"])),
        method=draw(st.sampled_from([None, "weighted", "round_robin", "sticky", "direct"])),
        source=draw(st.sampled_from([None, "web", "demo_request"])),
        segment=draw(st.sampled_from([None, "SMB", "Enterprise"])),
        region=draw(st.sampled_from([None, "NA", "EMEA"])),
        policy_version=draw(st.sampled_from([None, "v1", "v2"])),
        arm=draw(st.sampled_from([None, "a", "b"])),
        unmatched=draw(st.booleans()),
        fallback=draw(st.booleans()),
        missing=draw(st.frozensets(st.sampled_from(FIELDS))),
        unmatched_for_want_of=draw(st.frozensets(st.sampled_from(FIELDS))),
        card_posted_at=draw(_later(created)),
        claimed_at=draw(_later(created)),
        claim_due_at=draw(_later(created)),
        claim_misses=draw(st.integers(min_value=0, max_value=2)),
        first_touch_at=draw(_later(created)),
        contact_due_at=draw(_later(created)),
        contact_misses=draw(st.integers(min_value=0, max_value=1)),
        rejects=tuple(draw(st.lists(st.sampled_from(["Other", "Not my territory"]), max_size=2))),
        reassignments=tuple(draw(st.lists(st.sampled_from(["sla_missed"]), max_size=2))),
        converted_at=draw(_later(created)),
        won_at=draw(_later(created)),
        lost_at=draw(_later(created)),
        amount=amount,
        amount_left_out=amount is None and draw(st.booleans()),
    )


@st.composite
def leads(draw: st.DrawFn) -> list[LeadStory]:
    count = draw(st.integers(min_value=0, max_value=25))
    return [draw(stories(f"L-{n}")) for n in range(count)]


def _merged_by_key(parts: list[dict[str | None, Tally]]) -> dict[str | None, Tally]:
    keys = {key for part in parts for key in part}
    return {key: merge_all(part[key] for part in parts if key in part) for key in keys}


@settings(max_examples=60, deadline=None)
@given(leads(), st.sampled_from(GROUPINGS), st.data())
def test_tallies_of_any_split_merge_into_the_tally_of_the_whole(
    stories_drawn: list[LeadStory], by: str, data: st.DataObject
) -> None:
    parts_count = data.draw(st.integers(min_value=1, max_value=4))
    assignment = [
        data.draw(st.integers(min_value=0, max_value=parts_count - 1)) for _ in stories_drawn
    ]
    parts = [
        [s for s, part in zip(stories_drawn, assignment, strict=True) if part == n]
        for n in range(parts_count)
    ]
    window: dict[str, Any] = {"by": by, "now": NOW, "since": SINCE}

    whole = tally_by(stories_drawn, **window)
    merged = _merged_by_key([tally_by(part, **window) for part in parts])

    assert merged == whole
    from_parts = report_of_tallies(merged, by=by, now=NOW, since=SINCE, until=NOW)
    assert from_parts == build_report(stories_drawn, **window)


EVENT_DAYS = st.integers(min_value=0, max_value=30)
AMOUNTS = st.one_of(st.none(), st.sampled_from([Decimal(500), Decimal(1200), Decimal("99.90")]))
CLOSE_DATES = st.one_of(st.none(), st.sampled_from([date(2026, 12, 1), date(2027, 1, 15)]))


def _event(kind: EventKind, day: int, amount: Decimal | None, closes: date | None) -> OutcomeEvent:
    return OutcomeEvent(kind, NOW + timedelta(days=day), amount, closes)


events = st.lists(
    st.builds(_event, st.sampled_from(EventKind), EVENT_DAYS, AMOUNTS, CLOSE_DATES), max_size=8
)


@settings(max_examples=300, deadline=None)
@given(events, st.data())
def test_a_leads_events_settle_the_same_in_any_order_and_however_often_they_come(
    drawn: list[OutcomeEvent], data: st.DataObject
) -> None:
    reordered = data.draw(st.permutations(drawn))
    repeated = data.draw(st.lists(st.sampled_from(drawn), max_size=8)) if drawn else []

    settled = outcomes_of(drawn)

    assert outcomes_of(reordered) == settled
    assert outcomes_of([*drawn, *repeated]) == settled


@settings(max_examples=300, deadline=None)
@given(events)
def test_settled_events_are_consistent(drawn: list[OutcomeEvent]) -> None:
    settled = outcomes_of(drawn)
    assert settled.won_at is None or settled.lost_at is None
    closed = settled.won_at or settled.lost_at
    if closed is not None:
        assert settled.converted_at is not None and settled.converted_at <= closed
    touches = [e.at for e in drawn if e.kind is EventKind.FIRST_TOUCH]
    assert settled.first_touch_at == min(touches, default=None)


FRACTIONS = st.sampled_from(["0.5", "0.9", "0.25", "0.75", "0.99", "1"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(min_value=0.001, max_value=90 * 86400, allow_nan=False), min_size=1, max_size=60
    ),
    FRACTIONS,
)
def test_a_percentile_is_the_nearest_rank_duration_to_within_one_percent(
    durations: list[float], written: str
) -> None:
    ordered = sorted(durations)
    rank = math.ceil(Fraction(written) * len(ordered))  # exact: no floating-point ranks here
    expected = ordered[rank - 1]

    got = percentile(histogram(durations), float(written))

    assert got is not None
    assert abs(got - expected) <= expected * RELATIVE_ACCURACY * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=5000), st.data())
def test_a_wilson_interval_holds_its_rate_inside_zero_and_one(
    trials: int, data: st.DataObject
) -> None:
    successes = data.draw(st.integers(min_value=0, max_value=trials))
    low, high = wilson_interval(successes, trials)
    assert 0.0 <= low <= successes / trials <= high <= 1.0
    mirror_low, mirror_high = wilson_interval(trials - successes, trials)
    assert math.isclose(low, 1 - mirror_high, abs_tol=1e-12)
    assert math.isclose(high, 1 - mirror_low, abs_tol=1e-12)
