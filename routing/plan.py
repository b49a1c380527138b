"""The policy laid out for `route`: what a decision reads of a policy, worked out once.

A policy's rules become `Line`s (each rule's parts in one tuple, its condition's gate inline,
runs of rules gated on the same fact), its teams `TeamLine`s, and each minute's team members
`Member`s already checked for skill and working hours. `plan_for(policy)` keeps the plans of the
policies routed lately. All of it is a cache of pure functions of the policy (and the minute):
a decision made with a fresh plan is the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from routing.calendar import Unavailable, unavailability
from routing.conditions import Condition
from routing.decision import METHOD_LABELS, Stage, Step
from routing.policy import Policy, Rep, Team

# Enum members as module constants for the hot path (see `routing.engine`).
_QUALIFY = Stage.QUALIFY
_RULE = Stage.RULE
_REP = Stage.REP

# Steps built in one C call (see `Step`).
_step = tuple.__new__
_NOT_LOOKED_UP: Any = object()


class OffHours(NamedTuple):
    """A rep's skip for being off working hours, written once a minute (`Policy.off_hours`) and
    shared by every decision of that minute: a rep off hours is skipped for every lead of their
    teams, and steps and skips are immutable tuples."""

    step: Step
    skip: tuple[str, str]


def _off_hours_skip(rep_id: str, off: Unavailable | None) -> OffHours | None:
    if off is None:
        return None
    why = off.said
    step = _step(Step, (_REP, rep_id, False, why, None, None, off.specifics))
    return OffHours(step, (rep_id, why))


class Member(NamedTuple):
    """A rep as eligibility sees them in one minute. `step` is set when they can take no lead
    of the minute, whatever the lead: for lacking the skill asked for, or being off working
    hours; `skip` then says why in the one-line reason (None for a skill: that is the rule
    working, not news for the rep)."""

    id: str
    rep: Rep
    step: Step | None
    skip: tuple[str, str] | None
    capacity: int | None


def member_at(
    rep_id: str, rep: Rep, skill: str | None, reasons: dict[str, OffHours | None], now: datetime
) -> Member:
    """`rep_id` checked for `skill` and for working hours at `now`; `reasons` is the minute's
    off-hours memo (`Policy.off_hours`), filled in as reps are looked at."""
    if skill is not None and skill not in rep.skills:
        step = _step(Step, (_REP, rep_id, False, f"does not have skill {skill}", None, None, None))
        return _step(Member, (rep_id, rep, step, None, rep.capacity))
    hours = rep.hours
    if hours is not None:
        off = reasons.get(rep_id, _NOT_LOOKED_UP)
        if off is _NOT_LOOKED_UP:
            off = reasons[rep_id] = _off_hours_skip(rep_id, unavailability(hours, now))
        if off is not None:
            return _step(Member, (rep_id, rep, off.step, off.skip, rep.capacity))
    return _step(Member, (rep_id, rep, None, None, rep.capacity))


class Line(NamedTuple):
    """A rule or qualify rule laid out for the loops in `route`: unpacking one tuple per rule
    costs less than the attribute reads of the rule, its condition, its gate and the gate's miss.

    `field`, `accepted` and `clause` are the condition's gate (`field` None when it has none).
    `absent` is the whole step for a lead that lacks the gate's fact: its value is None then,
    so the step is the same for every such lead. It is None when the policy does not fold the
    field (`Policy.condition_fields`), where a missing folded fact says nothing about the fact.
    `run` is set when the next rules are gated on the same fact (see `Run`).
    """

    name: str
    field: str | None
    accepted: frozenset[str]
    clause: str
    absent: Step | None
    when: Condition
    rule: Any  # the Rule or QualifyRule itself
    run: Run | None = None


# How many values of its fact a `Run` remembers the steps for: the facts rules are gated on
# mostly take a handful of values (a region, a country, a source), but some are free text.
_RUN_MEMO_MAX = 1_000


class Run:
    """Rules in a row whose gates are on the same fact, from one rule to the last of the row.

    A lead whose value closes the first rule's gate often closes the next ones' too (a lead
    from EMEA goes past every NA rule), and the steps of rules settled by their gates depend on
    that value alone. So they are worked out once per value and written all at once.
    """

    __slots__ = ("lines", "memo")

    def __init__(self, lines: tuple[Line, ...]) -> None:
        self.lines = lines
        self.memo: dict[str | None, tuple[Step, ...]] = {}

    def closed(self, value: str | None, folded: str | None) -> tuple[Step, ...]:
        """The steps of the rules from the first on whose gates are closed to a lead whose fact
        is `value` (`folded` once folded), up to the first rule whose gate is open.

        The value is None or a string: the caller has found the first gate closed to it.
        """
        steps = self.memo.get(value)
        if steps is None:
            found = []
            for line in self.lines:
                if folded is not None and folded in line.accepted:
                    break
                found.append(Step(_RULE, line.name, False, line.clause, line.field, value, None))
            steps = tuple(found)
            if len(self.memo) < _RUN_MEMO_MAX:
                self.memo[value] = steps
        return steps


class TeamLine(NamedTuple):
    """What a decision for a team would otherwise look up or format again for every lead."""

    method: str  # the distribution's value, for `Decision.method`
    chose: str  # the chosen rep's step detail
    weights: Mapping[str, int]  # every member's weight; `pick_weighted` reads the eligible ones'


class Plan:
    """What `route` reads of a policy, laid out once per policy (see `plan_for`)."""

    __slots__ = ("_minute", "policy", "qualify", "rules", "teams")

    def __init__(
        self,
        policy: Policy,
        qualify: tuple[Line, ...],
        rules: tuple[Line, ...],
        teams: Mapping[str, TeamLine],
    ) -> None:
        self.policy = policy
        self.qualify = qualify
        self.rules = rules
        self.teams = teams
        # (the off-hours memo of a minute, (team name, skill) -> the team's members then):
        # one tuple, replaced whole when the minute turns, so a thread reads a matching pair.
        self._minute: tuple[dict[str, Any], dict[tuple[str, str | None], list[Member]]] = (
            {},
            {},
        )

    def team_members(
        self, team: Team, skill: str | None, reasons: dict[str, Any], now: datetime
    ) -> list[Member]:
        """`team`'s members checked for `skill` and working hours in the minute of `now`, whose
        off-hours memo is `reasons`: a weighted or least-loaded team checks every member for
        every lead, and this leaves only the checks that depend on the lead and the state."""
        memo, members_of = self._minute
        if memo is not reasons:
            members_of = {}
            self._minute = (reasons, members_of)
        key = (team.name, skill)
        members = members_of.get(key)
        if members is None:
            reps = self.policy.reps
            members = members_of[key] = [
                member_at(rep_id, reps[rep_id], skill, reasons, now) for rep_id in team.members
            ]
        return members


def _line(stage: Stage, name: str, when: Condition, rule: Any, folded: frozenset[str]) -> Line:
    gate = when.gate
    if gate is None or gate.miss.field != gate.field:
        return Line(name, None, frozenset(), "", None, when, rule)
    clause = gate.miss.clause
    absent = None
    if gate.field in folded:
        absent = Step(stage, name, False, clause, gate.field, None, None)
    return Line(name, gate.field, gate.accepted, clause, absent, when, rule)


def _with_runs(lines: tuple[Line, ...], folded: frozenset[str]) -> tuple[Line, ...]:
    """`lines` with each rule followed by rules gated on the same fact given its `Run`.

    Only for facts the policy folds: there a lead's value is None or a string whenever a gate
    is closed to it (`Run.closed`)."""
    with_runs = list(lines)
    for first, line in enumerate(lines):
        if line.field is None or line.field not in folded:
            continue
        last = first
        while last + 1 < len(lines) and lines[last + 1].field == line.field:
            last += 1
        if last > first:
            run = Run(lines[first : last + 1])
            name, field, accepted, clause, absent, when, rule, _ = line
            with_runs[first] = Line(name, field, accepted, clause, absent, when, rule, run)
    return tuple(with_runs)


def _plan_of(policy: Policy) -> Plan:
    folded = policy.condition_fields
    return Plan(
        policy,
        tuple(_line(_QUALIFY, q.name, q.when, q, folded) for q in policy.qualify),
        _with_runs(tuple(_line(_RULE, r.name, r.when, r, folded) for r in policy.rules), folded),
        {
            team.name: TeamLine(
                team.distribution.value,
                f"{METHOD_LABELS[team.distribution]} in team {team.name}",
                {m: rep.weight for m in team.members if (rep := policy.reps.get(m)) is not None},
            )
            for team in policy.teams.values()
        },
    )


# The plans of the policies routed lately, by the policy's id. A policy is immutable, so its
# plan holds as long as the policy is the same object, which the plan keeps alive (so its id
# is not reused while here). Kept here rather than on the policy because a plan holds the
# engine's steps. A few, not one: a process may route under two policies in turn (a live one
# and a simulated edit), and rebuilding a plan for every lead would cost more than it saves.
_plans: dict[int, Plan] = {}
_PLANS_MAX = 8


def plan_for(policy: Policy) -> Plan:
    plan = _plans.get(id(policy))
    if plan is None or plan.policy is not policy:
        if len(_plans) >= _PLANS_MAX:
            _plans.pop(next(iter(_plans)), None)
        plan = _plans[id(policy)] = _plan_of(policy)
    return plan
