"""The routing report's one computation: what counts as what, and figures that say when they
know nothing. Properties (merging, the order of events, percentile accuracy) are in
test_report_properties.py."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from routing.engine import route
from routing.leads import parse_lead
from routing.model import Outcome
from routing.policy import Policy
from routing.report import (
    COLUMNS,
    GROUPINGS,
    TOO_FEW,
    EventKind,
    GroupReport,
    LeadStory,
    OutcomeEvent,
    Report,
    build_report,
    csv_row,
    fields_read,
    json_line,
    json_object,
    merge_all,
    outcomes_of,
    percentile,
    proportion,
    report_of_tallies,
    story_of_decision,
    tally_by,
    team_weights,
    wilson_interval,
)
from routing.report.stats import RELATIVE_ACCURACY, histogram
from routing.report.story import field_gaps
from routing.report.window import week_to
from tests.routing.examples import example_policy

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ARRIVED = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
WEEK_AGO = NOW - timedelta(days=7)


def at(**delta: float) -> datetime:
    """A moment after ARRIVED."""
    return ARRIVED + timedelta(**delta)


def story(lead_id: str = "L-1", **fields: Any) -> LeadStory:
    fields.setdefault("created_at", ARRIVED)
    fields.setdefault("outcome", Outcome.ASSIGNED)
    return LeadStory(lead_id, **fields)


def report(*stories: LeadStory, by: str = "all", **kwargs: Any) -> Report:
    kwargs.setdefault("since", WEEK_AGO)
    return build_report(stories, by=by, now=NOW, **kwargs)


def only(*stories: LeadStory, **kwargs: Any) -> GroupReport:
    [group] = report(*stories, **kwargs).groups
    return group


def near(value: float | None, expected: float) -> bool:
    """Within the percentiles' accuracy (and a hair of floating point)."""
    assert value is not None
    return abs(value - expected) <= expected * RELATIVE_ACCURACY * (1 + 1e-9)


# --- the statistics ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "of", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I,
        # method 3 (the Wilson score interval without continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_the_wilson_interval_matches_published_values(
    count: int, of: int, low: float, high: float
) -> None:
    got = wilson_interval(count, of)
    assert (round(got[0], 4), round(got[1], 4)) == (low, high)


def test_a_proportion_of_nothing_has_no_rate_and_no_interval() -> None:
    nothing = proportion(0, 0)
    assert (nothing.rate, nothing.low, nothing.high) == (None, None, None)


def test_a_proportion_of_more_than_all_is_refused() -> None:
    with pytest.raises(ValueError, match="not a proportion"):
        proportion(3, 2)


def test_percentiles_of_small_samples_are_the_nearest_rank_durations() -> None:
    assert near(percentile(histogram([20.0, 10.0]), 0.5), 10.0)
    assert near(percentile(histogram([5.0, 1.0, 4.0, 2.0, 3.0]), 0.5), 3.0)
    assert near(percentile(histogram([5.0, 1.0, 4.0, 2.0, 3.0]), 0.9), 5.0)
    tens = histogram(float(n) for n in range(1, 11))
    assert near(percentile(tens, 0.9), 9.0)
    assert near(percentile(tens, 1.0), 10.0)
    assert near(percentile(histogram([42.0]), 0.5), 42.0)
    assert near(percentile(histogram([42.0]), 0.9), 42.0)


def test_a_percentile_of_no_durations_is_none() -> None:
    assert percentile({}, 0.5) is None


def test_durations_under_a_millisecond_and_negative_ones_are_zero() -> None:
    assert percentile(histogram([-30.0, 0.0, 0.0004]), 0.9) == 0.0


def test_a_percentile_is_a_fraction_of_one_at_most() -> None:
    with pytest.raises(ValueError, match="fraction"):
        percentile(histogram([1.0]), 50)


# --- a lead's outcome events -------------------------------------------------------------------


def test_the_first_touch_is_the_earliest_even_when_reported_last() -> None:
    settled = outcomes_of(
        [
            OutcomeEvent(EventKind.FIRST_TOUCH, at(hours=3)),
            OutcomeEvent(EventKind.FIRST_TOUCH, at(hours=1)),
        ]
    )
    assert settled.first_touch_at == at(hours=1)


def test_a_won_without_converted_was_converted_when_it_was_won() -> None:
    settled = outcomes_of([OutcomeEvent(EventKind.WON, at(days=3), Decimal("5000"))])
    assert (settled.converted_at, settled.won_at, settled.lost_at) == (at(days=3), at(days=3), None)
    assert settled.amount == Decimal("5000")


def test_repeated_events_settle_as_one() -> None:
    events = [
        OutcomeEvent(EventKind.CONVERTED, at(days=1), Decimal("900")),
        OutcomeEvent(EventKind.LOST, at(days=9), Decimal("900"), date(2026, 11, 25)),
    ]
    assert outcomes_of(events * 3) == outcomes_of(events)


def test_an_opportunity_lost_then_reopened_and_won_is_won_at_the_winning_amount() -> None:
    settled = outcomes_of(
        [
            OutcomeEvent(EventKind.WON, at(days=20), Decimal("12000"), date(2026, 12, 6)),
            OutcomeEvent(EventKind.CONVERTED, at(days=1), Decimal("8000")),
            OutcomeEvent(EventKind.LOST, at(days=9), Decimal("8000"), date(2026, 11, 25)),
        ]
    )
    assert (settled.converted_at, settled.won_at, settled.lost_at) == (
        at(days=1),
        at(days=20),
        None,
    )
    assert (settled.amount, settled.close_date) == (Decimal("12000"), date(2026, 12, 6))


def test_won_and_lost_at_one_instant_settle_as_won_whatever_their_order() -> None:
    won = OutcomeEvent(EventKind.WON, at(days=5))
    lost = OutcomeEvent(EventKind.LOST, at(days=5))
    assert outcomes_of([won, lost]) == outcomes_of([lost, won])
    assert outcomes_of([lost, won]).won_at == at(days=5)


def test_no_events_settle_nothing() -> None:
    assert set(outcomes_of([])) == {None}


# --- a story from a decision -------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy() -> Policy:
    return example_policy()


def test_a_lead_no_rule_matched_is_unmatched_for_want_of_the_fields_its_rules_missed(
    policy: Policy,
) -> None:
    decision = route(
        parse_lead({"id": "L-9", "email": "x@acme-widgets.com"}), policy=policy, now=NOW
    )

    told = story_of_decision(decision, created_at=NOW, fields=fields_read(policy))

    assert told.outcome is Outcome.QUEUED and told.unmatched and not told.fallback
    assert {"industry", "region", "segment", "title", "employees"} <= told.missing
    # The rules missed on these for want of a value. The title is read by a qualify rule, which
    # sends nobody to the fallback; the employee count was never asked (the source gate closed).
    assert told.unmatched_for_want_of == {
        "account.owner",
        "region",
        "industry",
        "source",
        "segment",
    }


def test_a_routed_lead_lacking_a_field_is_missing_it_but_not_unmatched_for_want_of_it(
    policy: Policy,
) -> None:
    lead = parse_lead({"id": "L-3", "email": "cto@bigco.com", "country": "DE"})
    decision = route(lead, policy=policy, now=NOW)

    told = story_of_decision(
        decision, created_at=NOW, fields=fields_read(policy), policy_version="v7"
    )

    assert (told.outcome, told.rule, told.team, told.region) == (
        Outcome.ASSIGNED,
        "EMEA",
        "emea",
        "EMEA",
    )
    assert (told.method, told.policy_version, told.unmatched) == ("least_loaded", "v7", False)
    assert "industry" in told.missing and not told.unmatched_for_want_of


def test_a_blank_field_is_as_missing_as_an_absent_one(policy: Policy) -> None:
    lead = parse_lead({"id": "L-4", "email": "x@acme-widgets.com", "industry": "  "})
    decision = route(lead, policy=policy, now=NOW)
    missing, _ = field_gaps(decision, ["industry"])
    assert missing == {"industry"}


# --- the window and the groups -----------------------------------------------------------------


def test_an_empty_window_has_no_groups_and_a_total_that_makes_up_nothing() -> None:
    made = report(by="rule")

    assert made.groups == ()
    total = made.total
    assert (total.group, total.leads, total.too_few) == ("all", 0, True)
    assert total.assigned.rate is None and total.converted.rate is None
    assert total.time_to_claim.p50 is None and total.claim_sla.rate is None
    assert total.rejects_per_100 is None and total.pipeline is None and total.fairness == ()
    line = json_object(total)
    assert line["conversion_rate"] is None and line["time_to_claim_p50_s"] is None


def test_a_lead_counts_in_the_window_it_arrived_in_from_its_start_up_to_its_end() -> None:
    start, end = ARRIVED, ARRIVED + timedelta(days=1)
    stories = [
        story("before", created_at=start - timedelta(microseconds=1)),
        story("first", created_at=start),
        story("last", created_at=end - timedelta(microseconds=1)),
        story("after", created_at=end),
    ]
    assert report(*stories, since=start, until=end).total.leads == 2


def test_without_an_end_the_window_runs_to_now_and_without_a_start_from_the_beginning() -> None:
    stories = [story("old", created_at=NOW - timedelta(days=400)), story("future", created_at=NOW)]
    made = build_report(stories, by="all", now=NOW)
    assert (made.since, made.until, made.total.leads) == (None, NOW, 1)


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="the window is empty"):
        build_report([], by="all", now=NOW, since=NOW, until=WEEK_AGO)


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware `now`"):
        build_report([], by="all", now=NOW.replace(tzinfo=None))


def test_an_unknown_grouping_is_refused_with_the_ones_there_are() -> None:
    with pytest.raises(ValueError, match="rule, team, rep"):
        build_report([], by="colour", now=NOW)


def test_groups_come_most_leads_first_and_leads_without_a_value_last() -> None:
    stories = [
        story("1", rule="Small business"),
        story("2", rule="EMEA"),
        story("3", rule="EMEA"),
        story("4", rule=None, outcome=Outcome.QUEUED, unmatched=True),
        story("5", rule="Alpha"),
    ]
    made = report(*stories, by="rule")
    assert [(g.group, g.leads) for g in made.groups] == [
        ("EMEA", 2),
        ("Alpha", 1),
        ("Small business", 1),
        (None, 1),
    ]
    assert made.total.leads == 5 and made.total.group == "all"


@pytest.mark.parametrize("by", GROUPINGS)
def test_every_grouping_puts_each_lead_in_one_group(by: str) -> None:
    stories = [
        story("1", rule="A", team="t", rep="ann", source="web", segment="SMB", region="NA"),
        story("2", rule="B", team="u", rep="bob", source="ads", policy_version="v2", arm="b"),
    ]
    made = report(*stories, by=by)
    assert sum(group.leads for group in made.groups) == 2


def test_the_total_is_the_groups_merged() -> None:
    stories = [
        story("1", rule="A", claimed_at=at(minutes=3), rejects=("Other",)),
        story("2", rule="B", claimed_at=at(minutes=30), won_at=at(days=2), amount=Decimal(10)),
    ]
    tallies = tally_by(stories, by="rule", now=NOW, since=WEEK_AGO)
    whole = tally_by(stories, by="all", now=NOW, since=WEEK_AGO)
    assert merge_all(tallies.values()) == whole["all"]
    made = report_of_tallies(tallies, by="rule", now=NOW, since=WEEK_AGO, until=NOW)
    assert made.total == replace(report(*stories).total, by="rule")


# --- volume and outcomes -----------------------------------------------------------------------


def test_outcome_shares_unmatched_and_fallback_are_of_all_the_groups_leads() -> None:
    group = only(
        story("1"),
        story("2"),
        story("3", outcome=Outcome.QUEUED, unmatched=True),
        story("4", outcome=Outcome.QUEUED, fallback=True),
        story("5", outcome=Outcome.NURTURE),
        story("6", outcome=Outcome.DISQUALIFIED),
    )
    shares = [group.assigned, group.queued, group.nurture, group.disqualified]
    assert [(s.count, s.of) for s in shares] == [(2, 6), (2, 6), (1, 6), (1, 6)]
    assert (group.unmatched.count, group.fallback.count) == (1, 1)
    assert group.queued.rate == pytest.approx(1 / 3)


def test_a_group_under_thirty_leads_says_it_has_too_few() -> None:
    assert TOO_FEW == 30
    few = [story(str(n)) for n in range(TOO_FEW - 1)]
    assert only(*few).too_few
    assert not only(*few, story("enough")).too_few


# --- speed -------------------------------------------------------------------------------------


def test_time_to_card_claim_and_first_touch_run_from_arrival() -> None:
    group = only(
        story(
            "1",
            card_posted_at=at(seconds=0.004),
            claimed_at=at(minutes=4),
            first_touch_at=at(hours=2),
        ),
        story("2", card_posted_at=at(seconds=0.002), claimed_at=at(minutes=10)),
        story("3", card_posted_at=at(seconds=0.003)),
    )
    assert group.time_to_card.leads == 3 and near(group.time_to_card.p50, 0.003)
    assert near(group.time_to_card.p90, 0.004)
    assert group.time_to_claim.leads == 2 and near(group.time_to_claim.p50, 240)
    assert near(group.time_to_claim.p90, 600)
    assert group.time_to_first_touch.leads == 1 and near(group.time_to_first_touch.p50, 7200)


def test_a_first_touch_logged_before_the_claim_is_still_the_first_touch() -> None:
    early = story(
        claimed_at=at(minutes=20),
        first_touch_at=at(minutes=5),
        contact_due_at=at(minutes=20, hours=1),
    )
    group = only(early)
    assert near(group.time_to_first_touch.p50, 300) and near(group.time_to_claim.p50, 1200)
    assert (group.contact_sla.count, group.contact_sla.of) == (1, 1)


# --- the SLAs ----------------------------------------------------------------------------------


def claim(**fields: Any) -> LeadStory:
    fields.setdefault("card_posted_at", at(seconds=1))
    fields.setdefault("claim_due_at", at(minutes=15))
    return story(**fields)


@pytest.mark.parametrize(
    ("lead", "met", "checked", "pending"),
    [
        (claim(claimed_at=at(minutes=15)), 1, 1, 0),  # claimed at the due time: met
        (claim(claimed_at=at(minutes=16)), 0, 1, 0),  # late
        (claim(claimed_at=at(minutes=2), claim_misses=1), 0, 1, 0),  # an earlier offer lapsed
        (claim(), 0, 1, 0),  # the due time passed unclaimed
        (claim(claim_due_at=NOW + timedelta(minutes=5)), 0, 0, 1),  # not yet due
        (claim(card_posted_at=None, claim_due_at=None), 0, 0, 0),  # the card never arrived
        (story(outcome=Outcome.QUEUED), 0, 0, 0),  # a queued lead has no SLA
    ],
)
def test_a_claim_sla_is_met_by_a_claim_in_time_and_charged_only_once_the_card_arrived(
    lead: LeadStory, met: int, checked: int, pending: int
) -> None:
    group = only(lead)
    assert (group.claim_sla.count, group.claim_sla.of, group.claim_sla_pending) == (
        met,
        checked,
        pending,
    )


def contact(**fields: Any) -> LeadStory:
    fields.setdefault("claimed_at", at(minutes=3))
    fields.setdefault("contact_due_at", at(hours=4))
    return claim(**fields)


@pytest.mark.parametrize(
    ("lead", "met", "checked", "pending"),
    [
        (contact(first_touch_at=at(hours=1)), 1, 1, 0),
        (contact(first_touch_at=at(hours=5)), 0, 1, 0),  # touched late
        (contact(first_touch_at=at(hours=1), contact_misses=1), 0, 1, 0),  # it lapsed before
        (contact(), 0, 1, 0),  # the due time passed untouched
        (contact(contact_due_at=NOW + timedelta(hours=1)), 0, 0, 1),  # not yet due
        (contact(claimed_at=None, contact_due_at=None), 0, 0, 0),  # not claimed: no contact SLA
        (contact(contact_due_at=None), 0, 0, 0),  # the policy sets no contact SLA
    ],
)
def test_a_contact_sla_runs_from_the_claim_to_the_first_touch(
    lead: LeadStory, met: int, checked: int, pending: int
) -> None:
    group = only(lead)
    assert (group.contact_sla.count, group.contact_sla.of, group.contact_sla_pending) == (
        met,
        checked,
        pending,
    )


def test_sla_compliance_is_a_share_with_its_interval() -> None:
    leads = [claim(lead_id=str(n), claimed_at=at(minutes=1)) for n in range(8)]
    leads += [claim(lead_id=f"late{n}", claimed_at=at(hours=1)) for n in range(2)]
    sla = only(*leads).claim_sla
    assert (sla.count, sla.of, sla.rate) == (8, 10, 0.8)
    assert (round(sla.low or 0, 4), round(sla.high or 0, 4)) == (0.4902, 0.9433)


# --- misroute signals --------------------------------------------------------------------------


def test_rejects_and_reassignments_are_counted_per_100_leads_by_reason() -> None:
    group = only(
        story("1", rejects=("Not my territory", "Not a fit / junk"), reassignments=("sla_missed",)),
        story("2", rejects=("Not my territory",)),
        story("3"),
        story("4", reassignments=("sla_missed", "rep_out_of_office")),
    )
    assert group.rejects == {"Not my territory": 2, "Not a fit / junk": 1}
    assert list(group.reassignments) == ["sla_missed", "rep_out_of_office"]
    assert (group.rejects_per_100, group.reassignments_per_100) == (75.0, 75.0)
    line = json_object(group)
    assert (line["rejects"], line["reassignments"]) == (3, 3)
    assert line["rejects_per_100_by_reason"] == {"Not my territory": 50.0, "Not a fit / junk": 25.0}


# --- fairness ----------------------------------------------------------------------------------


def picked(lead_id: str, team: str, rep: str, method: str = "weighted") -> LeadStory:
    return story(lead_id, team=team, rep=rep, method=method)


def test_a_weighted_teams_reps_are_measured_against_their_weights(policy: Policy) -> None:
    weights = team_weights(policy)
    assert weights["enterprise"] == {"alice": 2, "bob": 1}
    assert weights["smb"] == {"carol": 1, "bob": 1}  # round robin: equal shares

    leads = [picked(f"a{n}", "enterprise", "alice") for n in range(5)]
    leads += [picked(f"b{n}", "enterprise", "bob") for n in range(4)]
    [team] = only(*leads, teams=weights).fairness

    assert (team.team, team.leads) == ("enterprise", 9)
    assert [(r.rep, r.leads, r.expected, r.deviation) for r in team.reps] == [
        ("alice", 5, 6.0, -1.0),
        ("bob", 4, 3.0, 1.0),
    ]
    assert team.max_deviation == 1.0
    assert team.reps[0].expected_share == pytest.approx(2 / 3)


def test_a_member_who_got_nothing_shows_with_their_share_and_a_stranger_with_none() -> None:
    leads = [picked("1", "smb", "carol", "round_robin"), picked("2", "smb", "zed", "round_robin")]
    [team] = only(*leads, teams={"smb": {"carol": 1, "bob": 1}}).fairness
    assert [(r.rep, r.leads, r.expected) for r in team.reps] == [
        ("carol", 1, 1.0),
        ("bob", 0, 1.0),
        ("zed", 1, 0.0),  # no longer in the team: no share
    ]
    assert team.max_deviation == 1.0


def test_a_team_with_no_weights_given_shares_equally_among_those_it_gave_to() -> None:
    leads = [
        picked("1", "emea", "dan", "least_loaded"),
        picked("2", "emea", "erin", "least_loaded"),
    ]
    [team] = only(*leads).fairness
    assert [(r.rep, r.expected_share) for r in team.reps] == [("dan", 0.5), ("erin", 0.5)]


def test_only_leads_the_rotation_gave_count_for_fairness() -> None:
    leads = [
        picked("1", "enterprise", "alice", "sticky"),
        picked("2", "enterprise", "alice", "account_owner"),
        picked("3", "enterprise", "alice", "direct"),
        picked("4", "enterprise", "alice", "same_person"),
        story("5", team="enterprise", outcome=Outcome.QUEUED, method="weighted"),
    ]
    assert only(*leads).fairness == ()


def test_a_lead_the_rotation_gave_on_arrival_counts_for_fairness_wherever_it_is_now() -> None:
    # The rep let it lapse until the watchdog queued it: the rotation still gave it to them.
    lapsed = picked("1", "emea", "dan", "round_robin")
    lapsed = replace(lapsed, outcome=Outcome.QUEUED, current_rep=None, claim_misses=3)
    [team] = only(lapsed, picked("2", "emea", "erin", "round_robin")).fairness
    assert [(r.rep, r.leads) for r in team.reps] == [("dan", 1), ("erin", 1)]


# --- data health -------------------------------------------------------------------------------


def test_data_health_shows_each_field_the_rules_read_missing_and_sending_leads_to_fallback() -> (
    None
):
    group = only(
        story("1", missing=frozenset({"industry"})),
        story(
            "2",
            outcome=Outcome.QUEUED,
            unmatched=True,
            missing=frozenset({"industry", "region"}),
            unmatched_for_want_of=frozenset({"industry"}),
        ),
        story("3"),
        story("4"),
        story("5"),
        fields=("industry", "region", "source"),
    )
    assert [
        (h.field, h.missing.count, h.missing.rate, h.unmatched_for_want_of)
        for h in group.data_health
    ] == [
        ("industry", 2, 0.4, 1),
        ("region", 1, 0.2, 0),
        ("source", 0, 0.0, 0),
    ]


def test_without_a_list_of_fields_data_health_shows_those_seen_missing() -> None:
    group = only(story("1", missing=frozenset({"title", "country"})))
    assert [h.field for h in group.data_health] == ["country", "title"]


# --- conversion --------------------------------------------------------------------------------


def test_conversion_is_of_all_leads_and_the_win_rate_of_the_opportunities_closed() -> None:
    leads = [
        story("won", converted_at=at(days=1), won_at=at(days=9), amount=Decimal("12000.50")),
        story("lost", converted_at=at(days=1), lost_at=at(days=9), amount=Decimal("3000")),
        story("open", converted_at=at(days=2), amount=Decimal("1000")),
        story("won without converted", won_at=at(days=3)),
        *(story(f"cold{n}") for n in range(6)),
    ]
    group = only(*leads)
    assert (group.converted.count, group.converted.of, group.converted.rate) == (4, 10, 0.4)
    assert (round(group.converted.low or 0, 4), round(group.converted.high or 0, 4)) == (
        0.1682,
        0.6873,
    )
    assert (group.won.count, group.won.of, group.lost) == (2, 3, 1)
    assert group.pipeline == Decimal("16000.50") and group.priced == 3
    assert group.won_amount == Decimal("12000.50")


def test_a_group_without_opportunities_has_no_win_rate_and_no_pipeline() -> None:
    group = only(story("1"), story("2"))
    assert group.converted.rate == 0.0 and group.converted.high is not None
    assert (group.won.rate, group.pipeline, group.won_amount) == (None, None, None)


# --- the lines ---------------------------------------------------------------------------------


ISSUE_KEYS = {
    "group",
    "leads",
    "assigned",
    "queued",
    "time_to_claim_p50_s",
    "time_to_first_touch_p50_s",
    "claim_sla_met",
    "contact_sla_met",
    "rejects",
    "reassignments",
    "converted",
    "won",
    "conversion_rate",
    "conversion_ci_low",
    "conversion_ci_high",
}


def test_a_json_line_has_the_keys_the_issue_promises_with_null_where_there_is_no_data() -> None:
    group = only(story("1", rule="EMEA", claimed_at=at(seconds=181)), by="rule")

    line = json.loads(json_line(group))

    assert set(line) >= ISSUE_KEYS
    assert list(line) == [*COLUMNS, "fairness", "data_health"]
    assert (line["group"], line["by"], line["leads"], line["too_few"]) == ("EMEA", "rule", 1, True)
    claim_p50 = line["time_to_claim_p50_s"]  # good to 1%, so three significant digits
    assert near(claim_p50, 181) and claim_p50 == float(f"{claim_p50:.3g}")
    assert line["time_to_first_touch_p50_s"] is None
    assert line["claim_sla_met"] is None and line["win_rate"] is None
    assert (line["conversion_rate"], line["conversion_ci_low"]) == (0.0, 0.0)
    assert line["conversion_ci_high"] == 0.7935


def test_a_csv_row_has_the_same_columns_with_empty_cells_for_null() -> None:
    group = only(story("1", rejects=("Other", "Other", "Not my territory")))
    row = csv_row(group)
    assert tuple(row) == COLUMNS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerow(row)
    [read] = csv.DictReader(io.StringIO(out.getvalue()))
    assert (read["group"], read["too_few"], read["win_rate"]) == ("all", "true", "")
    assert read["rejects_per_100_by_reason"] == "Other: 200.0; Not my territory: 100.0"


def test_amounts_are_numbers_in_json_and_exact_in_csv() -> None:
    group = only(story("1", won_at=at(days=1), amount=Decimal("1234.5")))
    assert json_object(group)["pipeline"] == 1234.5
    assert csv_row(group)["won_amount"] == "1234.5"


# --- currencies --------------------------------------------------------------------------------


def test_an_opportunity_whose_amount_was_in_another_currency_counts_but_adds_no_amount() -> None:
    leads = [
        story("won", won_at=at(days=9), amount=Decimal("1000")),
        story("won in pounds", won_at=at(days=9), amount_left_out=True),
        story("lost in pounds", lost_at=at(days=9), amount_left_out=True),
        story("open", converted_at=at(days=2), amount=Decimal("500")),
    ]

    group = only(*leads, currency="USD")

    assert (group.won.count, group.lost, group.converted.count) == (2, 1, 4)
    assert (group.pipeline, group.priced, group.won_amount) == (Decimal(1500), 2, Decimal(1000))
    assert group.amounts_left_out == 2
    assert group.currency == "USD"


def test_a_lead_without_an_opportunity_has_no_amount_to_leave_out() -> None:
    group = only(story("cold", amount_left_out=True), currency="EUR")

    assert group.amounts_left_out == 0


def test_amounts_left_out_add_up_when_tallies_merge() -> None:
    stories = [story(f"L{n}", won_at=at(days=1), amount_left_out=n % 2 == 0) for n in range(5)]
    halves = [tally_by(stories[:2], by="all", now=NOW), tally_by(stories[2:], by="all", now=NOW)]

    merged = merge_all(tally for half in halves for tally in half.values())

    assert merged.amounts_left_out == 3


def test_the_lines_name_the_currency_and_the_amounts_left_out() -> None:
    group = only(
        story("1", won_at=at(days=1), amount=Decimal("1234.5")),
        story("2", won_at=at(days=1), amount_left_out=True),
        currency="GBP",
    )

    line = json_object(group)
    row = csv_row(group)

    assert (line["won_amount"], line["currency"], line["amounts_left_out"]) == (1234.5, "GBP", 1)
    assert (row["won_amount"], row["currency"], row["amounts_left_out"]) == ("1234.5", "GBP", "1")


def test_without_a_currency_set_the_lines_leave_it_empty_and_amounts_are_plain_numbers() -> None:
    group = only(story("1", won_at=at(days=1), amount=Decimal("10")))

    assert (json_object(group)["currency"], csv_row(group)["currency"]) == (None, "")
    assert json_object(group)["pipeline"] == 10.0


@pytest.mark.parametrize(
    ("now", "since", "hours"),
    [
        # An ordinary week: 168 hours, from 09:00 the Monday before.
        (datetime(2026, 11, 16, 8, 0, tzinfo=UTC), datetime(2026, 11, 9, 8, 0, tzinfo=UTC), 168),
        # The clocks went back on Sunday 25 October: from 09:00 CEST, 169 hours.
        (datetime(2026, 10, 26, 8, 0, tzinfo=UTC), datetime(2026, 10, 19, 7, 0, tzinfo=UTC), 169),
        # They went forward on Sunday 29 March: from 09:00 CET, 167 hours.
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), datetime(2026, 3, 23, 8, 0, tzinfo=UTC), 167),
    ],
)
def test_a_managers_week_runs_from_the_same_time_on_her_clock_seven_days_before(
    now: datetime, since: datetime, hours: int
) -> None:
    week = week_to(now, ZoneInfo("Europe/Berlin"))
    assert (week.since, week.until) == (since, now)
    assert week.length == timedelta(hours=hours)
