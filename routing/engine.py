"""The routing decision: one pure function from a lead and the world as it is to a `Decision`.

    route(lead, policy=..., accounts=..., state=..., now=...) -> Decision

It reads no clock and touches no database: `now` and the `RoutingState` (open loads, who is out
of office, each team's rotation, who holds the open leads of an account or of a person) are passed
in, and the team's next rotation state comes back in the decision for the caller to save.
`simulate`, `/routing why`, the tests and production all run this same function, so what an
admin simulates is what happens live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from routing.accounts import AccountIndex, describe_evidence
from routing.calendar import Unavailable, sla_deadline, unavailability
from routing.conditions import Condition
from routing.distribution import TeamState, pick_least_loaded, pick_weighted
from routing.model import Account, AccountMatch, Lead, OpenLead, Outcome, OutOfOffice
from routing.normalize import Facts, normalize
from routing.policy import Distribution, Policy, Rep, Rule, Target, TargetKind, Team


class Stage(StrEnum):
    NORMALISE = "normalise"
    QUALIFY = "qualify"
    ACCOUNT = "account"
    PERSON = "person"
    STICKY = "sticky"
    RULE = "rule"
    TARGET = "target"
    REP = "rep"
    FALLBACK = "fallback"


class Step(NamedTuple):
    """One line of a decision's trace.

    For a rule: `subject` is its name, `ok` whether it matched, `detail` the clause that decided,
    and `field`/`value` the lead's value for that clause. For a rep: `ok` is True for the rep who
    was chosen, and `detail` says why any other was skipped ("outside working hours").

    A NamedTuple rather than a frozen dataclass: a decision writes a few dozen of these, and
    building a tuple costs a fraction of a frozen dataclass's per-field __setattr__.
    """

    stage: Stage
    subject: str
    ok: bool
    detail: str = ""
    field: str | None = None
    value: Any = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingState:
    """What the engine needs to know about the world besides the policy and the accounts."""

    open_loads: Mapping[str, int] = field(default_factory=dict)
    out_of_office: Mapping[str, OutOfOffice] = field(default_factory=dict)
    teams: Mapping[str, TeamState] = field(default_factory=dict)
    # account id -> reps holding that account's open leads, most recent first (sticky accounts)
    account_reps: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # e-mail address (the `email` fact, `canonical_email`) -> that person's open leads, most
    # recent first, one for each rep holding any (the same person, under another lead id)
    person_leads: Mapping[str, Sequence[OpenLead]] = field(default_factory=dict)


@dataclass(slots=True)
class Decision:
    """What the engine decided and why. Treat it as read-only; it is not frozen only because a
    frozen dataclass's __init__ costs a __setattr__ per field, once per lead."""

    lead_id: str
    outcome: Outcome
    reason: str
    rep: str | None = None
    team: str | None = None
    rule: str | None = None
    method: str | None = None
    queue: str | None = None
    channel: str | None = None
    sla_seconds: int | None = None
    # When the assigned rep's SLA falls due, in UTC, on the policy's `sla.clock` (sla_deadline).
    sla_due_at: datetime | None = None
    account: AccountMatch | None = None
    team_state: TeamState | None = None
    fallback_used: bool = False
    trace: tuple[Step, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)


METHOD_LABELS = {
    Distribution.ROUND_ROBIN: "round robin",
    Distribution.WEIGHTED: "weighted round robin",
    Distribution.LEAST_LOADED: "least loaded",
    "account_owner": "account owner",
    "direct": "named rep",
    "sticky": "sticky account",
    "same_person": "same person",
}
# The rule a decision names when no rule of the policy made it, by its method.
_HELD_RULES = {"sticky": "Sticky account", "same_person": "Same person"}

EMPTY_TEAM_STATE = TeamState()
# For a call without them: read-only, so shared rather than made for every lead.
_NOTHING: Mapping[Any, Any] = MappingProxyType({})
_NO_STATE = RoutingState(_NOTHING, _NOTHING, _NOTHING, _NOTHING, _NOTHING)
_NO_EXCLUSIONS: Mapping[str, str] = _NOTHING

# Enum members as module constants for the hot path: on Python 3.11 `Stage.RULE` goes through
# the enum's metaclass (about 70 ns), and a decision names a stage a few dozen times.
_NORMALISE = Stage.NORMALISE
_QUALIFY = Stage.QUALIFY
_ACCOUNT = Stage.ACCOUNT
_RULE = Stage.RULE
_REP = Stage.REP
_FALLBACK = Stage.FALLBACK
_ROUND_ROBIN = Distribution.ROUND_ROBIN
_WEIGHTED = Distribution.WEIGHTED
_TEAM = TargetKind.TEAM
_QUEUE = TargetKind.QUEUE
_ASSIGNED = Outcome.ASSIGNED
_QUEUED = Outcome.QUEUED


@dataclass(slots=True)
class _Pick:
    rep: str
    team: str | None
    method: str
    team_state: TeamState | None = None


class _Context:
    """One routing run: the inputs, the trace being written, and the eligibility checks."""

    __slots__ = (
        "ambiguous",
        "away",
        "excluded",
        "facts",
        "loads",
        "match",
        "now",
        "off_hours",
        "plan",
        "policy",
        "reps",
        "skips",
        "state",
        "steps",
    )

    def __init__(
        self,
        policy: Policy,
        state: RoutingState,
        now: datetime,
        excluded: Mapping[str, str],
        facts: Facts,
        plan: _Plan,
    ) -> None:
        self.policy = policy
        self.plan = plan
        self.state = state
        self.now = now
        # Held directly: `eligible` reads them for every team member considered.
        self.reps = policy.reps
        self.away = state.out_of_office
        self.loads = state.open_loads
        self.off_hours: dict[str, _OffHours | None] | None = None  # looked up when first needed
        self.excluded = excluded
        self.facts = facts
        self.match: AccountMatch | None = None
        # The accounts of an ambiguous match (`_ambiguous`), when there was one.
        self.ambiguous: tuple[Account, ...] = ()
        self.steps: list[Step] = []
        # (rep id, why) in the order met; `why` follows the rep's name: "is outside working hours".
        # Reps passed over only for lacking the rule's skill are traced but left out of the
        # one-line reason: that is the rule working, not news for the rep.
        self.skips: list[tuple[str, str]] = []

    def eligible(self, rep_id: str, skill: str | None = None) -> bool:
        """Whether `rep_id` can take this lead now; if not, the skip goes into the trace."""
        return bool(self.eligible_among((rep_id,), skill, first=True))

    def eligible_among(
        self, rep_ids: Iterable[str], skill: str | None = None, *, first: bool = False
    ) -> list[str]:
        """Those of `rep_ids` who can take this lead now, in order; each skip goes into the trace.

        With `first`, the checks stop at the first eligible rep (a round robin's pick).
        """
        reasons = self.off_hours_now()
        reps = self.reps
        # A generator: with `first`, the reps after the first eligible one are not looked at.
        members = (_member(rep_id, reps[rep_id], skill, reasons, self.now) for rep_id in rep_ids)
        return self.eligible_members(members, first=first)

    def off_hours_now(self) -> dict[str, _OffHours | None]:
        memo = self.off_hours
        if memo is None:
            memo = self.off_hours = self.policy.off_hours.at(self.now)
        return memo

    def eligible_members(self, members: Iterable[_Member], *, first: bool = False) -> list[str]:
        """`eligible_among` for members whose skill and working hours are already checked.

        The hottest code of a decision: a weighted or least-loaded team checks every member.
        Hence one loop over the members rather than a call each, with what it reads held in
        locals, and strings built only for a skip. What holds for the whole minute (skills,
        working hours) comes with the member (`_Plan.team_members`), and the checks that
        depend on the lead and the state are made first, so that the skips are the same as
        checking everything in turn.
        """
        away_of = self.away
        loads = self.loads
        excluded = self.excluded or None  # tested once a member, and mostly empty
        now = self.now
        steps = self.steps
        skips = self.skips
        eligible: list[str] = []
        for rep_id, rep, step, skip, capacity in members:
            if excluded is not None:
                why = excluded.get(rep_id)
                if why is not None:
                    self.skip(rep_id, why)
                    continue
            away = away_of.get(rep_id)
            if away is not None and away.covers(now):
                short, note = _away_reason(away, rep)
                self.skip(rep_id, short, note)
                continue
            if step is not None:
                steps.append(step)
                if skip is not None:
                    skips.append(skip)
                continue
            if capacity is not None:
                load = loads.get(rep_id, 0)
                if load >= capacity:
                    self.skip(rep_id, f"is at capacity ({load}/{capacity} open leads)")
                    continue
            eligible.append(rep_id)
            if first:
                break
        return eligible

    def skip(
        self, rep_id: str, why: str, note: str | None = None, *, in_reason: bool = True
    ) -> bool:
        self.steps.append(_step(Step, (_REP, rep_id, False, why, None, None, note)))
        if in_reason:
            self.skips.append((rep_id, why))
        return False

    def chose(self, rep_id: str, how: str) -> None:
        self.steps.append(_step(Step, (_REP, rep_id, True, how, None, None, None)))


# Trace steps are built with tuple.__new__ on the hot path: one C call, where the NamedTuple's
# own __new__ is a Python function (a decision writes a few dozen steps).
_step = tuple.__new__
_NOT_LOOKED_UP: Any = object()


class _OffHours(NamedTuple):
    """A rep's skip for being off working hours, written once a minute (`Policy.off_hours`) and
    shared by every decision of that minute: a rep off hours is skipped for every lead of their
    teams, and steps and skips are immutable tuples."""

    step: Step
    skip: tuple[str, str]


def _off_hours(rep_id: str, off: Unavailable | None) -> _OffHours | None:
    if off is None:
        return None
    why = off.said
    return _OffHours(_step(Step, (_REP, rep_id, False, why, None, None, off.detail)), (rep_id, why))


class _Member(NamedTuple):
    """A rep as eligibility sees them in one minute. `step` is set when they can take no lead
    of the minute, whatever the lead: for lacking the skill asked for, or being off working
    hours; `skip` then says why in the one-line reason (None for a skill: that is the rule
    working, not news for the rep)."""

    id: str
    rep: Rep
    step: Step | None
    skip: tuple[str, str] | None
    capacity: int | None


def _member(
    rep_id: str, rep: Rep, skill: str | None, reasons: dict[str, _OffHours | None], now: datetime
) -> _Member:
    """`rep_id` checked for `skill` and for working hours at `now`; `reasons` is the minute's
    off-hours memo (`Policy.off_hours`), filled in as reps are looked at."""
    if skill is not None and skill not in rep.skills:
        step = _step(Step, (_REP, rep_id, False, f"does not have skill {skill}", None, None, None))
        return _step(_Member, (rep_id, rep, step, None, rep.capacity))
    hours = rep.hours
    if hours is not None:
        off = reasons.get(rep_id, _NOT_LOOKED_UP)
        if off is _NOT_LOOKED_UP:
            off = reasons[rep_id] = _off_hours(rep_id, unavailability(hours, now))
        if off is not None:
            return _step(_Member, (rep_id, rep, off.step, off.skip, rep.capacity))
    return _step(_Member, (rep_id, rep, None, None, rep.capacity))


def _away_reason(away: OutOfOffice, rep: Rep) -> tuple[str, str | None]:
    return _away_text(away.until, rep.tz), away.reason


@lru_cache(maxsize=4096)
def _away_text(until: datetime | None, tz: ZoneInfo) -> str:
    # Cached: an absent rep is skipped, and this formatted, for every lead of their teams.
    if until is None:
        return "is out of office"
    return f"is out of office until {until.astimezone(tz):%a %d %b %H:%M %Z}"


class _Line(NamedTuple):
    """A rule or qualify rule laid out for the loops in `route`: unpacking one tuple per rule
    costs less than the attribute reads of the rule, its condition, its gate and the gate's miss.

    `field`, `accepted` and `clause` are the condition's gate (`field` None when it has none).
    `absent` is the whole step for a lead that lacks the gate's fact: its value is None then,
    so the step is the same for every such lead. It is None when the policy does not fold the
    field (`Policy.condition_fields`), where a missing folded fact says nothing about the fact.
    `run` is set when the next rules are gated on the same fact (see `_Run`).
    """

    name: str
    field: str | None
    accepted: frozenset[str]
    clause: str
    absent: Step | None
    when: Condition
    rule: Any  # the Rule or QualifyRule itself
    run: _Run | None = None


# How many values of its fact a `_Run` remembers the steps for: the facts rules are gated on
# mostly take a handful of values (a region, a country, a source), but some are free text.
_RUN_MEMO_MAX = 1_000


class _Run:
    """Rules in a row whose gates are on the same fact, from one rule to the last of the row.

    A lead whose value closes the first rule's gate often closes the next ones' too (a lead
    from EMEA goes past every NA rule), and the steps of rules settled by their gates depend on
    that value alone. So they are worked out once per value and written all at once.
    """

    __slots__ = ("lines", "memo")

    def __init__(self, lines: tuple[_Line, ...]) -> None:
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


class _TeamLine(NamedTuple):
    """What a decision for a team would otherwise look up or format again for every lead."""

    method: str  # the distribution's value, for `Decision.method`
    chose: str  # the chosen rep's step detail
    weights: Mapping[str, int]  # every member's weight; `pick_weighted` reads the eligible ones'


class _Plan:
    """What `route` reads of a policy, laid out once per policy (see `_plan`)."""

    __slots__ = ("_minute", "policy", "qualify", "rules", "teams")

    def __init__(
        self,
        policy: Policy,
        qualify: tuple[_Line, ...],
        rules: tuple[_Line, ...],
        teams: Mapping[str, _TeamLine],
    ) -> None:
        self.policy = policy
        self.qualify = qualify
        self.rules = rules
        self.teams = teams
        # (the off-hours memo of a minute, (team name, skill) -> the team's members then):
        # one tuple, replaced whole when the minute turns, so a thread reads a matching pair.
        self._minute: tuple[dict[str, Any], dict[tuple[str, str | None], list[_Member]]] = (
            {},
            {},
        )

    def team_members(
        self, team: Team, skill: str | None, reasons: dict[str, Any], now: datetime
    ) -> list[_Member]:
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
                _member(rep_id, reps[rep_id], skill, reasons, now) for rep_id in team.members
            ]
        return members


def _line(stage: Stage, name: str, when: Condition, rule: Any, folded: frozenset[str]) -> _Line:
    gate = when.gate
    if gate is None or gate.miss.field != gate.field:
        return _Line(name, None, frozenset(), "", None, when, rule)
    clause = gate.miss.clause
    absent = None
    if gate.field in folded:
        absent = Step(stage, name, False, clause, gate.field, None, None)
    return _Line(name, gate.field, gate.accepted, clause, absent, when, rule)


def _with_runs(lines: tuple[_Line, ...], folded: frozenset[str]) -> tuple[_Line, ...]:
    """`lines` with each rule followed by rules gated on the same fact given its `_Run`.

    Only for facts the policy folds: there a lead's value is None or a string whenever a gate
    is closed to it (`_Run.closed`)."""
    with_runs = list(lines)
    for first, line in enumerate(lines):
        if line.field is None or line.field not in folded:
            continue
        last = first
        while last + 1 < len(lines) and lines[last + 1].field == line.field:
            last += 1
        if last > first:
            with_runs[first] = line._replace(run=_Run(lines[first : last + 1]))
    return tuple(with_runs)


def _plan_of(policy: Policy) -> _Plan:
    folded = policy.condition_fields
    return _Plan(
        policy,
        tuple(_line(_QUALIFY, q.name, q.when, q, folded) for q in policy.qualify),
        _with_runs(tuple(_line(_RULE, r.name, r.when, r, folded) for r in policy.rules), folded),
        {
            team.name: _TeamLine(
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
_plans: dict[int, _Plan] = {}
_PLANS_MAX = 8


def _plan(policy: Policy) -> _Plan:
    plan = _plans.get(id(policy))
    if plan is None or plan.policy is not policy:
        if len(_plans) >= _PLANS_MAX:
            _plans.pop(next(iter(_plans)), None)
        plan = _plans[id(policy)] = _plan_of(policy)
    return plan


def route(
    lead: Lead,
    *,
    policy: Policy,
    now: datetime,
    accounts: AccountIndex | None = None,
    state: RoutingState | None = None,
    excluded: Mapping[str, str] | None = None,
) -> Decision:
    """Decide whose `lead` is.

    `excluded` maps reps who must not get this lead to why, phrased to follow their name
    ("rejected this lead", "let its SLA lapse").
    """
    if now.tzinfo is None:
        raise ValueError("route() needs a timezone-aware `now`")
    facts = normalize(lead, policy)
    plan = _plan(policy)
    ctx = _Context(policy, state or _NO_STATE, now, excluded or _NO_EXCLUSIONS, facts, plan)
    if facts.notes:
        ctx.steps.append(Step(_NORMALISE, "lead", True, "; ".join(facts.notes)))

    # Every lead is checked against every qualify rule and most rules, each writing a step:
    # these loops read their lookups from locals, and each rule's parts from its `_Line`.
    add_step = ctx.steps.append
    extend_steps = ctx.steps.extend
    value_of = facts.values.get
    folded = facts.folded  # `add_account` adds the account's facts to these same dicts
    for name, field_name, accepted, clause, absent, when, qualify, _ in plan.qualify:
        # The gate inline, as in the rules loop below.
        if field_name is not None:
            actual = folded.get(field_name)
            if actual is None or (type(actual) is str and actual not in accepted):
                if actual is None and absent is not None:
                    add_step(absent)
                    continue
                value = value_of(field_name)
                add_step(_step(Step, (_QUALIFY, name, False, clause, field_name, value, None)))
                continue
        miss = when.check(folded)
        if miss is None:
            add_step(_step(Step, (_QUALIFY, name, True, when.description, None, None, None)))
            outcome = Outcome(qualify.outcome)
            return _decide(ctx, outcome, f"{name} → {outcome.value}", rule=name)
        field_name = miss.field
        value = value_of(field_name) if field_name else None
        add_step(_step(Step, (_QUALIFY, name, False, miss.clause, field_name, value, None)))

    ctx.match = _match_account(ctx, accounts)
    facts.add_account(ctx.match)
    if ctx.ambiguous and policy.on_ambiguous == "queue":
        names = " or ".join(account.name for account in ctx.ambiguous)
        reason = f"Ambiguous account ({names}) → {policy.fallback.name} queue"
        return _queue(ctx, policy.fallback, None, reason, fallback=True)

    # Whoever holds open leads of this person, then of this account, keeps them together.
    person_leads = ctx.state.person_leads
    if person_leads:
        email = facts.values["email"]
        held = person_leads.get(email) if email is not None else None
        if held:
            same = _same_person(ctx, email, held)
            if same is not None:
                holder = policy.rep_name(same.pick.rep)
                reason = f"Same person as open lead {same.lead_id} · {holder} holds it"
                return _assign(ctx, same.pick, None, reason)

    if policy.sticky_accounts and ctx.match is not None:
        sticky = _sticky(ctx, ctx.match)
        if sticky is not None:
            holder = policy.rep_name(sticky.rep)
            reason = f"Sticky account {ctx.match.account.name} · {holder} holds its open leads"
            return _assign(ctx, sticky, None, reason)

    lines = plan.rules
    count = len(lines)
    at = 0
    while at < count:
        name, field_name, accepted, clause, absent, when, rule, run = lines[at]
        at += 1
        # `Gate` inline (see its docstring): most rules a lead goes past miss on their first
        # clause, and this settles those without the one or two calls of `when.check`. When
        # the gate's fact is not set at all, the whole step was written in advance; when the
        # next rules are gated on the same fact, their steps may have been too (`_Run`).
        if field_name is not None:
            actual = folded.get(field_name)
            if actual is None or (type(actual) is str and actual not in accepted):
                if run is not None:
                    closed = run.closed(value_of(field_name), actual)
                    extend_steps(closed)
                    at += len(closed) - 1
                    continue
                if actual is None and absent is not None:
                    add_step(absent)
                    continue
                value = value_of(field_name)
                add_step(_step(Step, (_RULE, name, False, clause, field_name, value, None)))
                continue
        miss = when.check(folded)
        if miss is not None:
            field_name = miss.field
            value = value_of(field_name) if field_name else None
            add_step(_step(Step, (_RULE, name, False, miss.clause, field_name, value, None)))
            continue
        add_step(_step(Step, (_RULE, name, True, when.description, None, None, None)))
        return _apply_rule(ctx, rule)

    ctx.steps.append(Step(_FALLBACK, policy.fallback.name or "unmatched", True, "no rule matched"))
    return _queue(ctx, policy.fallback, None, f"No rule matched → {policy.fallback.name} queue")


def _match_account(ctx: _Context, accounts: AccountIndex | None) -> AccountMatch | None:
    facts = ctx.facts
    if accounts is None:
        return None
    values = facts.values
    domain = values.get("domain")
    company = values.get("company")
    found = accounts.lookup(
        domain=domain,
        company=company,
        threshold=ctx.policy.fuzzy_threshold,
        country=values.get("country"),
        state=values.get("state"),
    )
    match = found.match
    if match is None:
        if domain and company:
            looked = f"domain {domain}, company '{company}'"
        elif domain or company:
            looked = f"domain {domain}" if domain else f"company '{company}'"
        else:
            looked = "nothing to match on"
        detail = f"no account matched ({looked})"
        closest = found.closest
        if closest is not None:
            evidence = describe_evidence(found.evidence)
            detail = f"{detail}; closest '{closest.account.name}' {closest.score:g}: {evidence}"
        ctx.steps.append(_step(Step, (_ACCOUNT, "none", False, detail, None, None, None)))
        return None
    if match.method == "domain":
        detail = "matched by domain"
    else:
        detail = f"matched by company name, score {match.score:g}"
        if match.evidence:
            detail = f"{detail}: {describe_evidence(match.evidence)}"
        else:
            detail = f"{detail}: the same words"
        runner_up = match.runner_up
        if runner_up is not None and not match.ambiguous:
            detail = f"{detail}; runner-up '{runner_up.account.name}' {runner_up.score:g}"
    if match.ambiguous:
        _ambiguous(ctx, match)
        return None
    ctx.steps.append(_step(Step, (_ACCOUNT, match.account.name, True, detail, None, None, None)))
    return match


def _ambiguous(ctx: _Context, match: AccountMatch) -> None:
    """Two accounts or more nearly as likely: no account is picked; the policy says whether
    the rules route the lead as if none matched (`rules`) or it waits in the fallback queue
    for a person to pick (`queue`, which `route` settles before the rules)."""
    named = [match.account, *(other.account for other in match.ambiguous)]
    scores = [match.score, *(other.score for other in match.ambiguous)]
    candidates = " or ".join(
        f"'{account.name}' ({account.id}, {score:g})"
        for account, score in zip(named, scores, strict=True)
    )
    then = (
        "the fallback queue picks"
        if ctx.policy.on_ambiguous == "queue"
        else "routed by the rules without an account"
    )
    setting = f"accounts.on_ambiguous: {ctx.policy.on_ambiguous}"
    evidence = describe_evidence(match.evidence) or "the same words"
    detail = (
        f"{candidates} are nearly as likely; {then} ({setting}); "
        f"evidence for '{match.account.name}': {evidence}"
    )
    ctx.steps.append(_step(Step, (_ACCOUNT, "ambiguous", False, detail, None, None, None)))
    ctx.ambiguous = tuple(named)


class _Held(NamedTuple):
    pick: _Pick
    lead_id: str  # the open lead the rep holds


def _same_person(ctx: _Context, email: str, held: Sequence[OpenLead]) -> _Held | None:
    """The rep holding an open lead of the person `email` is, if one can take this lead too.

    Like a sticky account: the holders in turn, most recent first, each checked as any rep is
    (out of office, off hours, at capacity, rejected this lead), the skips in the trace."""
    lead_id = ctx.facts.lead.id
    others = [open_lead for open_lead in held if open_lead.lead_id != lead_id]
    if not others:
        return None
    rep_id = _first_holder(ctx, Stage.PERSON, email, (o.rep for o in others), "their open lead")
    if rep_id is None:
        detail = "no rep holding their open lead is available"
        ctx.steps.append(Step(Stage.PERSON, email, False, detail))
        return None
    lead = next(o.lead_id for o in others if o.rep == rep_id)
    ctx.steps.append(Step(Stage.PERSON, email, True, f"{rep_id} holds their open lead {lead}"))
    ctx.chose(rep_id, f"holds this person's open lead {lead}")
    return _Held(_Pick(rep_id, ctx.policy.first_team_of(rep_id), "same_person"), lead)


def _sticky(ctx: _Context, match: AccountMatch) -> _Pick | None:
    holders = ctx.state.account_reps.get(match.account.id)
    if not holders:
        return None
    name = match.account.name
    rep_id = _first_holder(ctx, Stage.STICKY, name, holders, "its open leads")
    if rep_id is not None:
        ctx.steps.append(Step(Stage.STICKY, name, True, f"{rep_id} holds its open leads"))
        ctx.chose(rep_id, "holds this account's open leads")
        return _Pick(rep_id, ctx.policy.first_team_of(rep_id), "sticky")
    ctx.steps.append(Step(Stage.STICKY, name, False, "no rep holding its open leads is available"))
    return None


def _first_holder(
    ctx: _Context, stage: Stage, subject: str, holders: Iterable[str], what: str
) -> str | None:
    """The first of `holders` who can take this lead now. One who is no longer a rep of the
    policy is passed over with a step saying so; the others' skips are written by `eligible`."""
    reps = ctx.policy.reps
    for rep_id in holders:
        if rep_id not in reps:
            detail = f"{rep_id} holds {what} but is not a rep of the policy"
            ctx.steps.append(Step(stage, subject, False, detail))
            continue
        if ctx.eligible(rep_id):
            return rep_id
    return None


def _apply_rule(ctx: _Context, rule: Rule) -> Decision:
    target = rule.assign
    if target.kind is _QUEUE:
        return _queue(ctx, target, rule, f"{rule.name} → {target.name} queue")
    pick = _resolve(ctx, target)
    if pick is not None:
        return _assign(ctx, pick, rule, _assigned_reason(ctx, rule.name, pick))
    failed = _failure(ctx, target)
    if rule.fallback is not None:
        detail = "the rule's fallback"
        ctx.steps.append(
            _step(Step, (_FALLBACK, rule.fallback.describe(), True, detail, None, None, None))
        )
        if rule.fallback.kind is _QUEUE:
            return _queue(
                ctx,
                rule.fallback,
                rule,
                f"{rule.name} · {failed} → {rule.fallback.name} queue",
                fallback=True,
            )
        already_said = {rep_id for rep_id, _ in ctx.skips}
        ctx.skips.clear()
        pick = _resolve(ctx, rule.fallback)
        if pick is not None:
            label = METHOD_LABELS.get(pick.method, pick.method)
            reason = f"{rule.name} · {failed} → fallback {rule.fallback.describe()} · {label}"
            ctx.skips = [skip for skip in ctx.skips if skip[0] not in already_said]
            if ctx.skips:
                reason += f" · {_skip_summary(ctx)}"
            return _assign(ctx, pick, rule, reason, fallback=True)
        failed = f"{failed}; nobody in fallback {rule.fallback.describe()} either"
    policy_fallback = ctx.policy.fallback
    detail = "the policy's fallback"
    ctx.steps.append(
        _step(Step, (_FALLBACK, policy_fallback.describe(), True, detail, None, None, None))
    )
    return _queue(
        ctx,
        policy_fallback,
        rule,
        f"{rule.name} · {failed} → {policy_fallback.name} queue",
        fallback=True,
    )


def _resolve(ctx: _Context, target: Target) -> _Pick | None:
    policy = ctx.policy
    if target.kind is _TEAM:
        assert target.name is not None
        return _pick_from_team(ctx, policy.teams[target.name], target.skill)
    if target.kind is TargetKind.REP:
        assert target.name is not None
        if ctx.eligible(target.name):
            ctx.chose(target.name, "named by the rule")
            return _Pick(target.name, policy.first_team_of(target.name), "direct")
        return None
    if target.kind is TargetKind.ACCOUNT_OWNER:
        owner = ctx.match.account.owner if ctx.match else None
        if owner is None:
            ctx.steps.append(
                Step(
                    Stage.TARGET,
                    "account owner",
                    False,
                    "the lead matched no account with an owner",
                )
            )
            return None
        if owner not in policy.reps:
            ctx.steps.append(
                Step(
                    Stage.TARGET,
                    "account owner",
                    False,
                    f"the account's owner {owner} is not a rep in the policy",
                )
            )
            return None
        if ctx.eligible(owner):
            ctx.chose(owner, f"owns {ctx.match.account.name if ctx.match else 'the account'}")
            return _Pick(owner, policy.first_team_of(owner), "account_owner")
        return None
    raise AssertionError(f"queue targets are not resolved to reps: {target}")


def _pick_from_team(ctx: _Context, team: Team, skill: str | None) -> _Pick | None:
    state = ctx.state.teams.get(team.name, EMPTY_TEAM_STATE)
    line = ctx.plan.teams[team.name]
    members = ctx.plan.team_members(team, skill, ctx.off_hours_now(), ctx.now)
    if team.distribution is _ROUND_ROBIN:
        # `pick_round_robin` spelled out: the members, in rotation order, go through one pass of
        # the eligibility checks that stops at the first eligible one, rather than one call each.
        rotation = _rotated(members, team.members, state.last_rep)
        found = ctx.eligible_members(rotation, first=True)
        rep = found[0] if found else None
        new_state = TeamState(rep, state.current) if rep is not None else state
    else:
        eligible = ctx.eligible_members(members)
        if team.distribution is _WEIGHTED:
            rep, new_state = pick_weighted(eligible, line.weights, state)
        else:
            rep, new_state = pick_least_loaded(team.members, eligible, ctx.state.open_loads, state)
    if rep is None:
        return None
    ctx.chose(rep, line.chose)
    return _Pick(rep, team.name, line.method, new_state)


def _rotated(members: list[_Member], ids: Sequence[str], last_rep: str | None) -> list[_Member]:
    """`members` (one for each of `ids`) in `rotation_order(ids, last_rep)`."""
    if last_rep is None or last_rep not in ids:
        return members
    start = ids.index(last_rep) + 1
    return [*members[start:], *members[:start]]


def _skip_summary(ctx: _Context, shown: int = 2) -> str:
    parts = [f"{ctx.policy.rep_name(rep_id)} {why}" for rep_id, why in ctx.skips[:shown]]
    if len(ctx.skips) > shown:
        parts.append(f"{len(ctx.skips) - shown} more skipped")
    return "; ".join(parts)


def _failure(ctx: _Context, target: Target) -> str:
    """Why a target yielded no rep, for the one-line reason."""
    if target.kind is _TEAM:
        text = f"nobody in {target.describe()} available"
        return f"{text} ({_skip_summary(ctx)})" if ctx.skips else text
    if ctx.skips:  # a named rep or the account owner, who was unavailable
        return _skip_summary(ctx)
    return ctx.steps[-1].detail  # the account had no owner, or one who is not a rep


def _assigned_reason(ctx: _Context, rule_name: str, pick: _Pick) -> str:
    policy = ctx.policy
    if pick.method == "account_owner":
        account = ctx.match.account.name if ctx.match else "the account"
        parts = [rule_name, f"{policy.rep_name(pick.rep)} owns {account}"]
    elif pick.method == "direct":
        parts = [rule_name, f"named rep {policy.rep_name(pick.rep)}"]
    else:
        parts = [rule_name, METHOD_LABELS.get(pick.method, pick.method)]
    if ctx.skips:
        parts.append(_skip_summary(ctx))
    return " · ".join(parts)


def _sla_seconds(ctx: _Context, rule: Rule | None) -> int:
    if rule is not None and rule.sla_seconds is not None:
        return rule.sla_seconds
    return ctx.policy.sla.seconds_for(ctx.facts.lead.source)


# The decisions below are built with positional arguments, in the order of Decision's fields
# (lead_id, outcome, reason, rep, team, rule, method, queue, channel, sla_seconds, sla_due_at,
# account, team_state, fallback_used, trace, facts): a class called with keywords is handed
# them as a dict, which for sixteen fields costs 0.4 µs a decision. A test pins the order.


def _assign(
    ctx: _Context, pick: _Pick, rule: Rule | None, reason: str, *, fallback: bool = False
) -> Decision:
    policy = ctx.policy
    sla_seconds = _sla_seconds(ctx, rule)
    due = sla_deadline(policy.sla, policy.reps[pick.rep], ctx.now, sla_seconds)
    rule_name = rule.name if rule else _HELD_RULES[pick.method]
    facts = ctx.facts
    return Decision(
        facts.lead.id,
        _ASSIGNED,
        reason,
        pick.rep,
        pick.team,
        rule_name,
        pick.method,
        None,  # queue
        None,  # channel
        sla_seconds,
        due,
        ctx.match,
        pick.team_state,
        fallback,
        tuple(ctx.steps),
        facts.values,
    )


def _queue(
    ctx: _Context, target: Target, rule: Rule | None, reason: str, *, fallback: bool = False
) -> Decision:
    facts = ctx.facts
    rule_name = rule.name if rule else None
    return Decision(
        facts.lead.id,
        _QUEUED,
        reason,
        None,  # rep
        None,  # team
        rule_name,
        None,  # method
        target.name,  # queue
        target.channel,
        None,  # sla_seconds
        None,  # sla_due_at
        ctx.match,
        None,  # team_state
        fallback,
        tuple(ctx.steps),
        facts.values,
    )


def _decide(ctx: _Context, outcome: Outcome, reason: str, *, rule: str) -> Decision:
    # Keywords here: only leads that qualify rules end are decided this way.
    return Decision(
        lead_id=ctx.facts.lead.id,
        outcome=outcome,
        reason=reason,
        rule=rule,
        trace=tuple(ctx.steps),
        facts=ctx.facts.values,
    )
