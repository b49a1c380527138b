"""Experiments in the policy and the engine: the checks, the arm a lead is in (stable, in
proportion, one for a whole account), and the candidate arm routed by its distribution."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from routing.accounts import AccountIndex
from routing.decision import RoutingState, Stage
from routing.distribution import Distribution
from routing.engine import route
from routing.experiments import CANDIDATE, CONTROL, position_of
from routing.explain import explain
from routing.leads import parse_lead
from routing.model import Account, Lead
from routing.policy import Policy, PolicyError, parse_policy

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]

BASE = """\
reps:
  - {id: ann}
  - {id: ben}
  - {id: cat}
teams:
  trio: {members: [ann, ben, cat]}
rules:
  - name: Everyone
    assign: {team: trio}
"""


def with_experiment(body: str) -> str:
    return BASE + "experiments:\n" + textwrap.indent(textwrap.dedent(body), "  ")


LEAST_LOADED = with_experiment(
    """\
    - name: loads
      share: 30
      by: lead
      team: trio
      distribution: least_loaded
    """
)


def policy_of(text: str) -> Policy:
    return parse_policy(text, source="routing.yml")


def problems_of(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="routing.yml")
    return [p.format("routing.yml") for p in caught.value.problems]


def lead(lead_id: str, email: str | None = None, **fields: object) -> Lead:
    return parse_lead(
        {"id": lead_id, "email": email or f"buyer@{lead_id.lower()}.example", **fields}
    )


# --- the policy ---------------------------------------------------------------------------------


def test_an_experiment_on_an_unknown_team_is_an_error_on_its_line() -> None:
    text = LEAST_LOADED.replace("team: trio\n    distribution", "team: tiro\n    distribution")

    problems = problems_of(text)

    assert problems == [
        "routing.yml:14:5: experiments[0].team: `tiro` is not a team defined under teams "
        "(did you mean `trio`?)"
    ]


def test_an_experiment_without_its_candidate_says_what_it_needs() -> None:
    text = with_experiment("- {name: half, share: 50, team: trio}\n")

    (problem,) = problems_of(text)

    assert problem.startswith("routing.yml:11:")
    assert "a team candidate needs both `team:` and `distribution:` (no `distribution:`)" in problem


def test_a_share_must_be_a_percent_strictly_between_0_and_100() -> None:
    problems = problems_of(LEAST_LOADED.replace("share: 30", "share: 100"))

    assert len(problems) == 1
    assert problems[0].startswith("routing.yml:12:")
    assert "experiments[0].share" in problems[0]


def test_two_experiments_of_one_name_are_an_error_and_an_unknown_key_has_a_hint() -> None:
    twice = with_experiment(
        """\
        - {name: loads, share: 30, team: trio, distribution: least_loaded}
        - {name: loads, share: 30, team: trio, distribution: weighted}
        """
    )
    assert any("duplicate experiment name `loads`" in p for p in problems_of(twice))
    typo = LEAST_LOADED.replace("share: 30", "shares: 30")
    assert any("shares" in p and "share" in p.split("shares", 1)[1] for p in problems_of(typo))


def test_a_candidate_like_the_control_is_a_warning() -> None:
    policy = policy_of(LEAST_LOADED.replace("least_loaded", "round_robin"))

    (warning,) = [w for w in policy.warnings if w.path[0] == "experiments"]
    assert warning.severity == "warning"
    assert warning.format("routing.yml") == (
        "routing.yml:15:5: warning: experiments[0].distribution: team trio already uses "
        "round_robin: both arms would route alike"
    )


def test_the_candidate_arm_has_the_teams_new_distribution_and_the_same_version() -> None:
    policy = policy_of(LEAST_LOADED)

    (experiment,) = policy.experiments
    assert experiment.candidate.teams["trio"].distribution is Distribution.LEAST_LOADED
    assert policy.teams["trio"].distribution is Distribution.ROUND_ROBIN
    assert experiment.candidate.version == policy.version != ""
    assert experiment.candidate.experiments == ()


# --- the arm ------------------------------------------------------------------------------------


def test_the_candidate_arm_takes_close_to_its_share_of_many_leads() -> None:
    policy = policy_of(LEAST_LOADED)

    arms = [route(lead(f"L{n}"), policy=policy, now=NOW).arm for n in range(6000)]

    # The hash is fixed, so this count is too; the bounds are 4 standard deviations of a
    # binomial(6000, 0.3) either side, what a fair hash keeps to.
    share = arms.count(CANDIDATE) / len(arms)
    assert 0.276 < share < 0.324
    assert arms.count(CONTROL) + arms.count(CANDIDATE) == len(arms)


def test_a_share_of_10_percent_by_account_puts_about_a_tenth_of_accounts_in_the_candidate() -> None:
    policy = policy_of(
        LEAST_LOADED.replace("share: 30", "share: 10").replace("by: lead", "by: account")
    )

    arms = [route(lead(f"L{n}"), policy=policy, now=NOW).arm for n in range(6000)]

    assert 0.085 < arms.count(CANDIDATE) / len(arms) < 0.115


def test_every_lead_of_one_company_domain_is_in_one_arm_by_account() -> None:
    policy = policy_of(LEAST_LOADED.replace("by: lead", "by: account"))

    by_domain: dict[str, set[str | None]] = {}
    for n in range(400):
        domain = f"company{n % 40}.com"
        decision = route(lead(f"L{n}", f"person{n}@{domain}"), policy=policy, now=NOW)
        by_domain.setdefault(domain, set()).add(decision.arm)

    assert all(len(arms) == 1 for arms in by_domain.values())
    assert {arm for arms in by_domain.values() for arm in arms} == {CONTROL, CANDIDATE}


def test_by_account_goes_by_the_matched_account_whatever_the_leads_domains() -> None:
    policy = policy_of(LEAST_LOADED.replace("by: lead", "by: account"))
    accounts = AccountIndex([Account("001A", "Globex Corporation", domain="globex.example")])

    decisions = [
        route(
            lead(f"L{n}", f"buyer{n}@gmail.com", company="Globex Corporation"),
            policy=policy,
            now=NOW,
            accounts=accounts,
        )
        for n in range(30)
    ]

    assert len({d.arm for d in decisions}) == 1
    assert "by account 001A" in decisions[0].trace[0].detail


def test_by_lead_splits_the_leads_of_one_company_between_arms() -> None:
    policy = policy_of(LEAST_LOADED)

    arms = {
        route(lead(f"L{n}", f"p{n}@acme.example"), policy=policy, now=NOW).arm for n in range(60)
    }

    assert arms == {CONTROL, CANDIDATE}


def test_the_hash_is_the_same_in_another_process_with_another_hash_seed() -> None:
    keys = [f"account 00{n}" for n in range(5)]
    here = [position_of("loads", key) for key in keys]
    code = (
        "from routing.experiments import position_of; "
        f"print([position_of('loads', k) for k in {keys!r}])"
    )

    there = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"},
    ).stdout

    assert there.strip() == repr(here)


def test_leads_outside_the_experiments_when_take_no_part() -> None:
    policy = policy_of(
        LEAST_LOADED.replace("by: lead\n", "by: lead\n    when: {source: webinar}\n")
    )

    outside = route(lead("L1", source="ads"), policy=policy, now=NOW)
    inside = route(lead("L1", source="Webinar"), policy=policy, now=NOW)

    assert outside.arm is None and outside.experiment is None
    assert all(step.stage is not Stage.EXPERIMENT for step in outside.trace)
    assert inside.experiment == "loads" and inside.arm in (CONTROL, CANDIDATE)


def test_the_candidate_arm_picks_the_least_loaded_rep_where_the_control_goes_round() -> None:
    policy = policy_of(LEAST_LOADED)
    state = RoutingState(open_loads={"ann": 5, "ben": 9, "cat": 0})
    decisions = [route(lead(f"L{n}"), policy=policy, now=NOW, state=state) for n in range(60)]

    candidates = [d for d in decisions if d.arm == CANDIDATE]
    controls = [d for d in decisions if d.arm == CONTROL]

    assert candidates and controls
    # Against the same state: least loaded always gives cat, round robin starts with ann.
    assert {d.rep for d in candidates} == {"cat"}
    assert {d.method for d in candidates} == {"least_loaded"}
    assert {d.rep for d in controls} == {"ann"}
    assert {d.method for d in controls} == {"round_robin"}


def test_the_trace_and_the_explanation_say_the_arm_and_why() -> None:
    policy = policy_of(LEAST_LOADED)
    decisions = [route(lead(f"L{n}"), policy=policy, now=NOW) for n in range(40)]
    candidate = next(d for d in decisions if d.arm == CANDIDATE)
    control = next(d for d in decisions if d.arm == CONTROL)

    first = candidate.trace[0]
    assert first.stage is Stage.EXPERIMENT and first.subject == "loads" and first.ok
    position = position_of("loads", f"lead {candidate.lead_id}")
    assert first.detail == (
        f"experiment loads: candidate arm (hash {position:.2f} < share 0.30, "
        f"by lead {candidate.lead_id})"
    )
    assert (
        "control arm (hash" in control.trace[0].detail and "≥ share 0.30" in control.trace[0].detail
    )
    assert "Experiment: experiment loads: candidate arm" in explain(candidate, policy)


def test_a_policy_without_experiments_records_no_arm() -> None:
    decision = route(lead("L1"), policy=policy_of(BASE), now=NOW)

    assert decision.arm is None and decision.experiment is None


def test_a_hash_just_under_the_share_is_shown_with_the_digits_that_tell_them_apart() -> None:
    policy = policy_of(LEAST_LOADED)
    (experiment,) = policy.experiments
    # Leads whose hash rounds to the share at two decimals: found, not assumed.
    close = [n for n in range(20000) if f"{position_of('loads', f'lead L{n}'):.2f}" == "0.30"]
    assert close

    for n in close[:20]:
        detail = route(lead(f"L{n}"), policy=policy, now=NOW).trace[0].detail
        shown = detail.split("(hash ")[1].split(",")[0]  # "0.298 < share 0.300"
        hash_text, sign, _, share_text = shown.split(" ")
        assert hash_text != share_text
        assert (float(hash_text) < float(share_text)) == (sign == "<")
    assert experiment.share == 30


def test_a_lead_in_an_experiment_is_matched_to_its_account_once() -> None:
    """The arm is chosen on the lead's account, and the arm's route matches the same account:
    one lookup, not two (a name lookup is most of a decision's time)."""
    from routing.accounts import AccountIndex
    from routing.model import Account, AccountLookup

    index = AccountIndex([Account("A1", "Initech", "initech.com", None)])
    asked: list[tuple[object, ...]] = []

    class Counted:
        def lookup(self, **question: object) -> AccountLookup:
            asked.append(tuple(question.values()))
            return index.lookup(**question)  # type: ignore[arg-type]

    policy = parse_policy(
        "reps:\n  - {id: ann}\n  - {id: ben}\n"
        "teams:\n  pair: {members: [ann, ben], distribution: round_robin}\n"
        "rules:\n  - {name: All, assign: {team: pair}}\n"
        "experiments:\n  - {name: loads, share: 50, team: pair, distribution: least_loaded}\n"
    )
    decision = route(
        Lead("L-1", email="pm@initech.com", company="Initech"),
        policy=policy,
        now=datetime(2026, 12, 7, 15, 0, tzinfo=UTC),
        accounts=Counted(),
    )
    assert decision.arm is not None and decision.account is not None
    assert len(asked) == 1
