"""What ends an experiment (its text promoted or stopped) and what judges it (the arms'
differences, their intervals and the sentence on whether they mean anything yet)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routing.distribution import Distribution
from routing.engine import route
from routing.leads import parse_lead
from routing.policy import parse_policy
from routing.policy_edits import (
    UnknownExperiment,
    experiment_names,
    promote_experiment,
    stop_experiment,
)
from routing.report import build_report, story_of_decision
from routing.report.arms import compare_arms, difference, leads_needed
from routing.report.figures import TOO_FEW
from routing.report.stats import proportion

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)

POLICY = """\
# The sales floor's policy.
reps:
  - {id: ann}   # mornings
  - {id: ben}
teams:
  duo:
    members: [ann, ben]
    distribution: round_robin  # the control
rules:
  - name: Everyone
    assign: {team: duo}
experiments:
  # Try least loaded on a third of the accounts.
  - name: loads
    share: 33
    team: duo
    distribution: least_loaded
  - name: weights
    share: 10
    team: duo
    distribution: weighted
"""


def test_promote_applies_the_candidate_removes_the_experiment_and_keeps_the_rest() -> None:
    promoted = promote_experiment(POLICY, "loads")

    policy = parse_policy(promoted)
    assert policy.teams["duo"].distribution is Distribution.LEAST_LOADED
    assert [e.name for e in policy.experiments] == ["weights"]
    assert "# The sales floor's policy." in promoted and "- {id: ann}   # mornings" in promoted
    assert "    distribution: least_loaded # the control\n" in promoted


def test_stop_removes_the_experiment_and_changes_nothing_else() -> None:
    stopped = stop_experiment(stop_experiment(POLICY, "loads"), "weights")

    policy = parse_policy(stopped)
    assert policy.experiments == ()
    assert policy.teams["duo"].distribution is Distribution.ROUND_ROBIN
    assert "experiments" not in stopped
    assert stopped.startswith("# The sales floor's policy.\nreps:\n  - {id: ann}   # mornings\n")


def test_an_unknown_experiment_is_named_with_those_there_are() -> None:
    with pytest.raises(UnknownExperiment) as caught:
        promote_experiment(POLICY, "load")

    assert str(caught.value) == (
        "the policy has no experiment named `load` (its experiments: loads, weights)"
    )
    with pytest.raises(UnknownExperiment, match=r"\(it has none\)"):
        stop_experiment(stop_experiment(stop_experiment(POLICY, "loads"), "weights"), "loads")
    assert experiment_names(POLICY) == ["loads", "weights"]


# --- judging the arms ---------------------------------------------------------------------------


def test_a_large_difference_on_enough_leads_is_meaningful() -> None:
    result = difference("conversion", proportion(10, 200), proportion(40, 200))

    assert result.difference == pytest.approx(0.15)
    assert result.low is not None and result.high is not None and 0 < result.low < result.high
    assert result.verdict.startswith("conversion: the candidate's is higher, +15.0 pts")
    assert result.verdict.endswith("a meaningful difference")


def test_a_small_difference_is_not_yet_meaningful_and_says_how_many_more_leads() -> None:
    result = difference("claim SLA", proportion(50, 100), proportion(60, 100))

    assert result.low is not None and result.low < 0 < (result.high or 0)
    needed = leads_needed(0.5, 0.6)
    assert result.verdict == (
        f"claim SLA: not yet meaningful, +10.0 pts (95% interval {result.low * 100:+.1f} pts to "
        f"{result.high * 100:+.1f} pts); if the difference holds, about {needed - 100:,} more "
        "leads per arm would tell"
    )


def test_the_leads_needed_match_the_textbook_figure_for_50_against_60_percent() -> None:
    # Fleiss's table (no continuity correction), alpha 0.05 two-sided, power 0.80: 388 each.
    assert leads_needed(0.5, 0.6) == 388
    assert leads_needed(0.6, 0.5) == 388


def test_an_interval_that_leaves_out_zero_on_too_few_leads_is_not_called_meaningful() -> None:
    # 5 of 8 converted against 0 of 4: Newcombe's interval leaves out zero (+4.0 to +86.3 pts),
    # but Fisher's exact test gives p = 0.08, and the report calls fewer than 30 too few.
    result = difference("conversion", proportion(0, 4), proportion(5, 8))

    assert result.low is not None and result.low > 0
    assert "meaningful" not in result.verdict
    assert result.verdict == (
        "conversion: too few leads to tell yet (4 in the control, 8 in the candidate; "
        f"{TOO_FEW} in each at least), +62.5 pts (95% interval +4.0 pts to +86.3 pts)"
    )


def test_a_difference_on_too_few_leads_says_how_many_more_would_tell() -> None:
    result = difference("claim SLA", proportion(5, 10), proportion(6, 10))

    more = leads_needed(0.5, 0.6) - 10
    assert result.verdict.startswith("claim SLA: too few leads to tell yet (10 in the control, ")
    assert result.verdict.endswith(
        f"; if the difference holds, about {more:,} more leads per arm would tell"
    )


def test_the_same_share_on_too_few_leads_is_not_called_no_difference() -> None:
    result = difference("conversion", proportion(1, 3), proportion(1, 3))

    assert result.verdict.startswith("conversion: too few leads to tell yet (3 in the control")
    assert "no difference" not in result.verdict


def test_an_arm_without_data_is_said_so() -> None:
    result = difference("contact SLA", proportion(0, 0), proportion(3, 4))

    assert result.difference is None and result.verdict == "contact SLA: no data in an arm yet"


def test_a_report_by_arm_pairs_each_experiments_arms() -> None:
    policy = parse_policy(
        POLICY.replace("share: 33\n    team", "share: 33\n    by: lead\n    team")
    )
    stories = []
    for n in range(300):
        lead = parse_lead({"id": f"L{n}", "email": f"buyer@firm{n}.com"})
        decision = route(lead, policy=policy, now=NOW)
        stories.append(
            story_of_decision(decision, created_at=NOW - timedelta(minutes=n + 1), fields=())
        )

    report = build_report(stories, by="arm", now=NOW)
    (loads,) = [c for c in compare_arms(report) if c.experiment == "loads"]

    assert loads.control is not None and loads.candidate is not None
    assert loads.control.group == "loads/control" and loads.candidate.group == "loads/candidate"
    arms_total = sum(g.leads for g in report.groups if g.group and g.group.startswith("loads/"))
    assert arms_total == 300
    assert [d.figure for d in loads.differences] == ["conversion", "claim SLA", "contact SLA"]
    conversion, claim, contact = loads.differences
    # No lead converted in either arm yet; none was claimed, so no SLA was kept or missed.
    assert conversion.verdict.startswith("conversion: no difference seen yet, +0.0 pts")
    assert claim.verdict == "claim SLA: no data in an arm yet"
    assert contact.verdict == "contact SLA: no data in an arm yet"
    with pytest.raises(ValueError, match="grouped by arm"):
        compare_arms(build_report(stories, by="rule", now=NOW))


def test_promoting_a_plain_distribution_over_a_performance_team_drops_its_performance_keys() -> (
    None
):
    text = POLICY.replace(
        "    distribution: round_robin  # the control\n",
        "    distribution: performance\n    fairness: {floor: 0.5, ceiling: 2}\n",
    )
    parse_policy(text)

    promoted = promote_experiment(text, "loads")

    assert parse_policy(promoted).teams["duo"].distribution is Distribution.LEAST_LOADED
    assert "fairness" not in promoted
