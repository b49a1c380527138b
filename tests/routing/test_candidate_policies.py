"""A whole candidate policy as an experiment's candidate: bundled with the policy (one text, one
version), checked with its problems on the experiment's line, and routing its arm's leads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from routing.engine import route
from routing.experiments import CANDIDATE, CONTROL
from routing.leads import parse_lead
from routing.policy import PolicyError, parse_policy
from routing.policy_bundle import bundle, candidate_files, split
from routing.policy_edits import promote_experiment, stop_experiment

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
MAIN = """\
reps:
  - {id: ann}
  - {id: ben}
teams:
  duo: {members: [ann, ben]}
  solo: {members: [ben]}
rules:
  - name: Everyone
    assign: {team: duo}
experiments:
  - name: solo-rule
    share: 40
    by: lead
    policy: candidate.yml
"""
CANDIDATE_POLICY = """\
reps:
  - {id: ann}
  - {id: ben}
teams:
  solo: {members: [ben]}
rules:
  - name: Solo
    assign: {team: solo}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="routing.yml")
    return [p.format("routing.yml") for p in caught.value.problems if p.severity == "error"]


def test_a_bundle_splits_back_into_the_policy_and_its_candidate() -> None:
    text = bundle(MAIN, {"candidate.yml": CANDIDATE_POLICY, "unused.yml": "x: 1\n"})

    own, candidates = split(text)

    assert candidate_files(MAIN) == ["candidate.yml"]
    assert own == MAIN
    assert list(candidates) == ["candidate.yml"]
    assert candidates["candidate.yml"].text == CANDIDATE_POLICY
    assert candidates["candidate.yml"].first_line == MAIN.count("\n") + 2
    assert bundle(CANDIDATE_POLICY, {"candidate.yml": MAIN}) == CANDIDATE_POLICY


def test_the_version_changes_with_the_candidate_and_the_candidate_arm_routes_by_it() -> None:
    policy = parse_policy(bundle(MAIN, {"candidate.yml": CANDIDATE_POLICY}))
    other = parse_policy(
        bundle(MAIN, {"candidate.yml": CANDIDATE_POLICY.replace("Solo\n", "Just Ben\n")})
    )

    decisions = [
        route(parse_lead({"id": f"L{n}", "email": f"b@f{n}.com"}), policy=policy, now=NOW)
        for n in range(100)
    ]

    assert policy.version != other.version
    (experiment,) = policy.experiments
    assert experiment.describe() == "the policy candidate.yml"
    assert experiment.candidate.version == policy.version
    candidates = [d for d in decisions if d.arm == CANDIDATE]
    controls = [d for d in decisions if d.arm == CONTROL]
    assert 25 <= len(candidates) <= 55
    assert {(d.rule, d.team, d.rep) for d in candidates} == {("Solo", "solo", "ben")}
    assert {d.rule for d in controls} == {"Everyone"}


def test_a_candidate_not_bundled_is_an_error_on_the_experiments_line() -> None:
    assert problems_of(MAIN) == [
        "routing.yml:14:5: experiments[0].policy: the candidate policy `candidate.yml` was not "
        "read with it"
    ]


def test_a_candidates_own_problem_is_reported_with_its_file_and_line() -> None:
    broken = CANDIDATE_POLICY.replace("assign: {team: solo}", "assign: {team: sola}")

    (problem,) = problems_of(bundle(MAIN, {"candidate.yml": broken}))

    assert problem.startswith(
        "routing.yml:14:5: experiments[0].policy: the candidate policy has a problem: "
        "candidate.yml:8:14: rules[0].assign.team: `sola` is not a team defined under teams "
        "(did you mean `solo`?)"
    )


def test_a_candidate_may_not_route_to_reps_or_teams_the_policy_lacks() -> None:
    stranger = CANDIDATE_POLICY.replace("- {id: ben}", "- {id: ben}\n  - {id: zed}").replace(
        "[ben]", "[zed]"
    )

    (problem,) = problems_of(bundle(MAIN, {"candidate.yml": stranger}))

    assert "candidate.yml names rep `zed`, `zed` in team `solo`, which this policy" in problem


def test_a_candidate_and_a_team_in_one_experiment_is_an_error() -> None:
    both = MAIN.replace("policy: candidate.yml", "policy: candidate.yml\n    team: duo")

    problems = problems_of(bundle(both, {"candidate.yml": CANDIDATE_POLICY}))

    assert any("is `policy:` or `team:` with `distribution:`, not both" in p for p in problems)


def test_promote_makes_the_candidate_the_policy_and_stop_keeps_the_control() -> None:
    promoted = promote_experiment(MAIN, "solo-rule", {"candidate.yml": CANDIDATE_POLICY})
    stopped = stop_experiment(MAIN, "solo-rule")

    assert promoted == CANDIDATE_POLICY
    assert stopped == MAIN.split("experiments:")[0]
    assert parse_policy(stopped).experiments == ()


def test_a_candidate_team_may_drop_members_but_not_add_any() -> None:
    fewer = CANDIDATE_POLICY.replace("solo: {members: [ben]}", "duo: {members: [ben]}").replace(
        "{team: solo}", "{team: duo}"
    )
    more = CANDIDATE_POLICY.replace("solo: {members: [ben]}", "solo: {members: [ben, ann]}")

    parse_policy(bundle(MAIN, {"candidate.yml": fewer}))
    (problem,) = problems_of(bundle(MAIN, {"candidate.yml": more}))

    assert "candidate.yml names `ann` in team `solo`, which this policy does not have" in problem


def test_a_candidate_matches_accounts_at_the_policys_threshold() -> None:
    looser = CANDIDATE_POLICY + "accounts: {fuzzy_threshold: 80}\n"

    (problem,) = problems_of(bundle(MAIN, {"candidate.yml": looser}))

    assert "candidate.yml has accounts.fuzzy_threshold 80, this policy 90" in problem
