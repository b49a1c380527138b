"""`distribution: performance`: reps weighted by their shrunk conversion rate for leads like this
one, within the team's fairness floor and ceiling over the trailing week.

Expected rates are worked out here by hand or from the drawn data; the week's counts are kept by
the tests from the decisions themselves, never read back from the engine's state.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.decision import Decision, RoutingState
from routing.distribution import TeamState
from routing.engine import route
from routing.model import Lead, Outcome, OutOfOffice
from routing.performance import Fairness, OutcomeCounts, rates_for
from routing.policy import Policy, PolicyError, parse_policy

MONDAY = datetime(2026, 12, 7, 9, tzinfo=UTC)
SEGMENTS = (None, 5, 500, 5000)  # employees: no segment, SMB, MidMarket, Enterprise
SOURCES = (None, "webinar", "Webinar ", "demo_request", "partner")


@cache
def team_policy(
    size: int,
    distribution: str = "performance",
    floor: float | None = None,
    ceiling: float | None = None,
    prior: float | None = None,
) -> Policy:
    reps = "\n".join(f"  - {{id: r{i}, name: Rep{i}}}" for i in range(size))
    members = ", ".join(f"r{i}" for i in range(size))
    extra = ""
    if prior is not None:
        extra += f"\n    performance: {{prior: {prior}}}"
    bounds = {k: v for k, v in (("floor", floor), ("ceiling", ceiling)) if v is not None}
    if bounds:
        extra += "\n    fairness: {" + ", ".join(f"{k}: {v}" for k, v in bounds.items()) + "}"
    return parse_policy(
        f"""
reps:
{reps}
teams:
  ae:
    members: [{members}]
    distribution: {distribution}{extra}
rules:
  - name: Everyone
    assign: {{team: ae}}
"""
    )


def lead(n: int, employees: int | None = 5000, source: str | None = "webinar") -> Lead:
    return Lead(id=f"L-{n}", email=f"p{n}@example.com", employees=employees, source=source)


def decide(
    policy: Policy,
    lead_: Lead,
    now: datetime,
    team: TeamState,
    outcomes: OutcomeCounts | None = None,
    away: Sequence[str] = (),
) -> Decision:
    state = RoutingState(
        out_of_office={rep: OutOfOffice() for rep in away},
        teams={"ae": team},
        outcomes={"ae": outcomes} if outcomes is not None else {},
    )
    return route(lead_, policy=policy, now=now, state=state)


def chosen_step(decision: Decision) -> str:
    return next(step.detail for step in decision.trace if step.subject == decision.rep and step.ok)


# --- the rates -----------------------------------------------------------------------------------


def test_a_rep_with_few_leads_is_shrunk_toward_the_team_rate() -> None:
    counts = OutcomeCounts.from_rows(
        [("ana", "Enterprise", "webinar", 4, 2), ("bo", "Enterprise", "webinar", 96, 8)]
    )
    rates = rates_for(counts, ["ana", "bo"], "Enterprise", "webinar", prior=20)
    team_rate = 10 / 100
    assert rates.team_rate == pytest.approx(team_rate)
    # ana converted 2 of 4 (50%): with 20 leads' worth of the team's 10% she is at 16.7%.
    assert rates.reps["ana"].shrunk == pytest.approx((2 + 20 * team_rate) / (4 + 20))
    assert rates.reps["ana"].weight == pytest.approx(((2 + 2) / 24) / team_rate)
    assert rates.reps["bo"].shrunk == pytest.approx((8 + 2) / (96 + 20))


def test_a_prior_of_zero_takes_the_reps_own_rate() -> None:
    counts = OutcomeCounts.from_rows([("ana", "SMB", None, 10, 3), ("bo", "SMB", None, 10, 1)])
    rates = rates_for(counts, ["ana", "bo", "cy"], "SMB", None, prior=0)
    assert rates.reps["ana"].shrunk == pytest.approx(0.3)
    assert rates.reps["cy"].shrunk == pytest.approx(0.2)  # no leads: the team's rate


def test_the_segment_and_source_cell_comes_first_then_the_segment_then_all_leads() -> None:
    counts = OutcomeCounts.from_rows(
        [
            ("ana", "Enterprise", "webinar", 10, 5),
            ("bo", "Enterprise", "partner", 10, 1),
            ("bo", "SMB", "partner", 30, 3),
        ]
    )
    members = ["ana", "bo"]
    assert rates_for(counts, members, "Enterprise", "webinar", 20).cell == "Enterprise/webinar"
    by_segment = rates_for(counts, members, "Enterprise", "demo_request", 20)
    assert (by_segment.cell, by_segment.team_rate) == ("Enterprise", pytest.approx(6 / 20))
    overall = rates_for(counts, members, "MidMarket", "webinar", 20)
    assert (overall.cell, overall.team_rate) == ("all", pytest.approx(9 / 50))


def test_sources_are_matched_trimmed_and_in_any_case() -> None:
    counts = OutcomeCounts.from_rows(
        [("ana", "SMB", " Webinar", 10, 4), ("ana", "SMB", "webinar", 10, 0)]
    )
    rates = rates_for(counts, ["ana"], "SMB", "WEBINAR ", 20)
    assert rates.cell == "SMB/webinar"
    assert (rates.reps["ana"].leads, rates.reps["ana"].converted) == (20, 4)


def test_other_teams_reps_do_not_make_a_cell_have_data() -> None:
    counts = OutcomeCounts.from_rows(
        [("zed", "SMB", "webinar", 50, 25), ("ana", "SMB", None, 5, 1)]
    )
    rates = rates_for(counts, ["ana", "bo"], "SMB", "webinar", 20)
    assert rates.cell == "SMB"


# --- the decision and its trace --------------------------------------------------------------


def test_the_trace_says_why_the_rep_was_chosen_in_numbers() -> None:
    policy = team_policy(3, floor=0.5, ceiling=2.0)
    counts = OutcomeCounts.from_rows(
        [
            ("r0", "Enterprise", "webinar", 40, 7),
            ("r1", "Enterprise", "webinar", 40, 3),
            ("r2", "Enterprise", "webinar", 20, 0),
        ]
    )
    day = MONDAY.date().isoformat()
    team = TeamState(days={day: {"r0": 2, "r1": 3, "r2": 3}})
    decision = decide(policy, lead(1), MONDAY, team, counts)
    assert decision.rep == "r0"
    assert decision.method == "performance"
    # 7/40 = 18%; team 10/100; shrunk (7 + 20 * 0.1) / 60 = 15%, weight 1.5.
    assert chosen_step(decision) == (
        "Rep0: 18% converted on 40 Enterprise/webinar leads, shrunk to 15% (team 10%); "
        "weight 1.5; 3 of 9 this week, share 33% within 17%-67%"
    )
    assert "performance-weighted" in decision.reason


def test_the_trace_says_when_a_broader_cell_was_used() -> None:
    policy = team_policy(2)
    counts = OutcomeCounts.from_rows([("r0", "Enterprise", "partner", 10, 2)])
    decision = decide(policy, lead(1), MONDAY, TeamState(), counts)
    assert "[no Enterprise/webinar outcomes: Enterprise leads]" in chosen_step(decision)


def test_with_no_outcomes_the_trace_says_weights_are_equal() -> None:
    decision = decide(team_policy(2), lead(1), MONDAY, TeamState())
    assert chosen_step(decision).startswith("Rep0: no outcomes yet for the team, equal weights")


def test_the_better_converting_rep_gets_more_leads() -> None:
    policy = team_policy(2)
    counts = OutcomeCounts.from_rows(
        [("r0", "Enterprise", "webinar", 200, 60), ("r1", "Enterprise", "webinar", 200, 20)]
    )
    team, got = TeamState(), Counter[str]()
    for n in range(100):
        decision = decide(policy, lead(n), MONDAY, team, counts)
        assert decision.team_state is not None and decision.rep is not None
        team, got[decision.rep] = decision.team_state, got[decision.rep] + 1
    # Team 80/400 = 20%; shrunk (60 + 4) / 220 = 29.1% and (20 + 4) / 220 = 10.9%: weights 1.45
    # and 0.55 of the team's rate, so r0's share is 1.45 / 2.
    assert got["r0"] == pytest.approx(100 * 1.45 / 2, abs=1)


def test_a_rep_at_the_ceiling_is_passed_over_and_the_trace_says_so() -> None:
    policy = team_policy(4, ceiling=1.5)
    counts = OutcomeCounts.from_rows([("r0", "Enterprise", "webinar", 100, 90)])
    day = MONDAY.date().isoformat()
    # 11 leads this week counting this one: the cap is ceil(1.5 * 11 / 4) = 5, and r0 has 5.
    team = TeamState(days={day: {"r0": 5, "r1": 2, "r2": 2, "r3": 1}})
    decision = decide(policy, lead(1), MONDAY, team, counts)
    assert decision.rep != "r0"
    skipped = [s for s in decision.trace if s.subject == "r0" and not s.ok]
    assert [s.detail for s in skipped] == ["is at the fairness ceiling (5 leads this week)"]


def test_a_rep_under_the_floor_is_picked_first() -> None:
    policy = team_policy(3, floor=0.6)
    counts = OutcomeCounts.from_rows([("r0", "Enterprise", "webinar", 100, 90)])
    day = MONDAY.date().isoformat()
    # 10 leads counting this one: the floor is 0.6 * 10 / 3 = 2 leads, r2 has 1.
    team = TeamState(days={day: {"r0": 5, "r1": 3, "r2": 1}})
    decision = decide(policy, lead(1), MONDAY, team, counts)
    assert decision.rep == "r2"
    assert chosen_step(decision).endswith("below the fairness floor, so first")


def test_leads_older_than_a_week_no_longer_count() -> None:
    policy = team_policy(2, ceiling=1.0)
    eight_days_ago = (MONDAY - timedelta(days=7)).date().isoformat()
    six_days_ago = (MONDAY - timedelta(days=6)).date().isoformat()
    team = TeamState(days={eight_days_ago: {"r1": 50}, six_days_ago: {"r0": 1}})
    decision = decide(policy, lead(1), MONDAY, team)
    assert decision.rep == "r1"  # r0 has 1 of the week, r1 none: r0 is at the ceiling
    assert decision.team_state is not None
    assert set(decision.team_state.days) == {six_days_ago, MONDAY.date().isoformat()}


def test_when_every_available_rep_is_at_the_ceiling_it_gives_way_rather_than_queue_the_lead() -> (
    None
):
    """The others away, the one rep in is over the ceiling after a lead or two: the ceiling
    keeps leads from piling on one rep while others wait, and here nobody is waiting."""
    policy = team_policy(3, ceiling=1.0)
    day = MONDAY.date().isoformat()
    team = TeamState(days={day: {"r0": 3, "r1": 0, "r2": 0}})
    decision = decide(policy, lead(1), MONDAY, team, away=["r1", "r2"])
    assert (decision.outcome, decision.rep) == (Outcome.ASSIGNED, "r0")
    assert chosen_step(decision).endswith("at the fairness ceiling, so it gives way")


# --- the policy ----------------------------------------------------------------------------------


def test_the_new_keys_are_read() -> None:
    team = team_policy(2, floor=0.5, ceiling=2.0, prior=35).teams["ae"]
    assert (team.prior, team.fairness) == (35, Fairness(floor=0.5, ceiling=2.0))
    assert team_policy(2).teams["ae"].fairness is None  # no bounds unless asked for


@pytest.mark.parametrize(
    ("team_yaml", "line", "message"),
    [
        (
            "distribution: performance\n    fairness: {floor: 1.5}",
            6,
            "the floor is a fraction of an equal share from 0 to 1, not 1.5",
        ),
        (
            "distribution: performance\n    fairness: {ceiling: 0.5}",
            6,
            "the ceiling is a multiple of an equal share from 1 to 100, not 0.5",
        ),
        (
            "distribution: performance\n    fairness: {flor: 0.5}",
            6,
            "unknown key `flor` (did you mean `floor`?)",
        ),
        (
            "distribution: performance\n    performance: {prior: -1}",
            6,
            "the prior is a number of leads from 0 to 100000, not -1",
        ),
        (
            "distribution: performance\n    performance: {window: 2h}",
            6,
            "the outcome window is at least a day",
        ),
        (
            "distribution: weighted\n    fairness: {floor: 0.5}",
            6,
            "`fairness` applies to `distribution: performance` only (this team's is weighted)",
        ),
    ],
)
def test_check_refuses_bad_performance_keys_with_their_line(
    team_yaml: str, line: int, message: str
) -> None:
    text = (
        "reps: [{id: ana}]\nteams:\n  ae:\n    members: [ana]\n    "
        + team_yaml
        + "\nrules:\n  - {name: All, assign: {team: ae}}\n"
    )
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, source="routing.yml")
    report = raised.value.report()
    assert message in report, report
    assert f"routing.yml:{line}:" in report, report


# --- properties ----------------------------------------------------------------------------------

outcome_rows = st.lists(
    st.tuples(
        st.sampled_from(["r0", "r1", "r2", "r3", "r4"]),
        st.sampled_from(["SMB", "MidMarket", "Enterprise", None]),
        st.sampled_from(SOURCES),
        st.integers(0, 200),
    ).flatmap(
        lambda t: st.tuples(*(st.just(x) for x in t), st.integers(0, t[3]))  # converted <= leads
    ),
    max_size=30,
)
arrival = st.tuples(
    st.sampled_from(SEGMENTS),
    st.sampled_from(SOURCES),
    st.sampled_from([0, 0, 0, 0, 1, 2]),  # days since the previous lead
    st.sets(st.integers(0, 4), max_size=4),  # who is out of office
)


def _week_counts(history: list[tuple[int, str]], today: int) -> Counter[str]:
    return Counter(rep for day, rep in history if today - 6 <= day <= today)


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 5),
    arrivals=st.lists(arrival, min_size=1, max_size=60),
    fairness=st.sampled_from([(None, None), (0.5, 2.0), (1.0, 1.0), (0.8, None), (None, 1.2)]),
    all_available=st.booleans(),
)
def test_with_no_outcome_data_it_picks_exactly_as_weighted_with_equal_weights(
    size: int,
    arrivals: list[tuple[int | None, str | None, int, set[int]]],
    fairness: tuple[float | None, float | None],
    all_available: bool,
) -> None:
    # Bounds that can change a pick only do so when availability differs between reps: with
    # everyone in, the rotation already keeps every share within one lead.
    if not all_available and fairness != (None, None):
        fairness = (None, None)
    performance = team_policy(size, "performance", *fairness)
    weighted = team_policy(size, "weighted")
    now = MONDAY
    perf_team, weighted_team = TeamState(), TeamState()
    for n, (employees, source, days, out) in enumerate(arrivals):
        now += timedelta(days=days)
        away = () if all_available else [f"r{i}" for i in out if i < size]
        a = decide(performance, lead(n, employees, source), now, perf_team, OutcomeCounts(), away)
        b = decide(weighted, lead(n, employees, source), now, weighted_team, None, away)
        assert (a.outcome, a.rep) == (b.outcome, b.rep), f"lead {n}"
        perf_team = a.team_state or perf_team
        weighted_team = b.team_state or weighted_team


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(2, 5),
    rows=outcome_rows,
    arrivals=st.lists(arrival, min_size=1, max_size=80),
    bounds=st.sampled_from([(0.5, 2.0), (0.8, 1.25), (1.0, 1.0), (0.0, 3.0), (0.3, 1.5)]),
    prior=st.sampled_from([0, 5, 20]),
    all_available=st.booleans(),
)
def test_the_fairness_bounds_hold_over_any_run(
    size: int,
    rows: list[tuple[str, str | None, str | None, int, int]],
    arrivals: list[tuple[int | None, str | None, int, set[int]]],
    bounds: tuple[float, float],
    prior: float,
    all_available: bool,
) -> None:
    floor, ceiling = bounds
    policy = team_policy(size, floor=floor, ceiling=ceiling, prior=prior)
    counts = OutcomeCounts.from_rows(rows)
    members = [f"r{i}" for i in range(size)]
    team, today = TeamState(), 0
    history: list[tuple[int, str]] = []  # (day, rep) of every lead the team gave, kept here
    for n, (employees, source, days, out) in enumerate(arrivals):
        today += days
        away = set() if all_available else {f"r{i}" for i in out if i < size}
        available = [m for m in members if m not in away]
        week = _week_counts(history, today)
        picked = sum(week.values()) + 1  # the week's leads, this one included
        cap = math.ceil(ceiling * picked / size - 1e-9)
        floor_line = floor * picked / size
        now = MONDAY + timedelta(days=today)
        decision = decide(policy, lead(n, employees, source), now, team, counts, sorted(away))
        under = [m for m in available if week[m] < floor_line - 1e-9]
        open_reps = [m for m in available if week[m] + 1 <= cap]
        if decision.rep is None:
            assert not available, f"lead {n} found nobody while {available} were there"
            continue
        rep = decision.rep
        assert rep in available
        # Nobody is given a lead that takes them past the ceiling of the week so far, unless
        # everyone there is at it (the others away): then the ceiling gives way ...
        if open_reps:
            assert week[rep] + 1 <= cap, f"lead {n}: {rep} had {week[rep]} of {picked - 1}"
        # ... and a rep under the floor goes first, the one furthest under.
        if under:
            assert week[rep] == min(week[m] for m in under), f"lead {n}: {rep} over {under}"
        history.append((today, rep))
        assert decision.team_state is not None
        team = decision.team_state
        if all_available and history[0][0] >= today - 6:
            # With everyone in and no day gone from the week, every share is within its bounds
            # after every lead: under the ceiling, and less than one lead short of the floor.
            after = _week_counts(history, today)
            total = sum(after.values())
            for m in members:
                assert after[m] <= math.ceil(ceiling * total / size - 1e-9), (m, after)
                assert after[m] > floor * total / size - 1, (m, after)


def test_performance_picks_leave_a_weighted_rotation_on_the_same_team_as_it_was() -> None:
    """An experiment runs `performance` beside `weighted` on one team (or a team switches from
    one to the other): each keeps credits of its own, in its own units, so neither bends the
    other (a rep's performance weight is about a hundred, a weighted one's a few)."""
    from datetime import date

    from routing.distribution import pick_weighted
    from routing.performance import pick_performance

    reps = ["ann", "ben", "cy"]
    state = TeamState()
    for _ in range(50):  # the candidate arm: ann converts best
        pick, _capped = pick_performance(
            reps, reps, {"ann": 250, "ben": 60, "cy": 40}, state, None, date(2026, 12, 7)
        )
        assert pick is not None
        state = pick.state
    got: Counter[str] = Counter()
    for _ in range(30):  # the control arm: equal weights, as if the candidate had not run
        rep, state = pick_weighted(reps, {}, state)
        assert rep is not None
        got[rep] += 1
    assert got == {"ann": 10, "ben": 10, "cy": 10}
