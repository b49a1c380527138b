"""The routing decision: one pure function from a lead and the world as it is to a `Decision`.

    route(lead, policy=..., accounts=..., state=..., now=...) -> Decision

It reads no clock and touches no database: `now` and the `RoutingState` (open loads, who is out
of office, each team's rotation, who holds the open leads of an account or of a person) are passed
in, and the team's next rotation state comes back in the decision for the caller to save.
`simulate`, `/routing why`, the tests and production all run this same function, so what an
admin simulates is what happens live.

The stages, in order, are here; `routing.plan` lays the policy out for them once,
`routing.eligibility` says which reps can take the lead, `routing.targets` turns the rule that
matched into the `Decision` (`routing.decision`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from routing.accounts import AccountLookups
from routing.decision import Decision, RoutingState, Stage, Step
from routing.eligibility import Context
from routing.experiments import CANDIDATE, ArmChoice, choose_arm
from routing.model import AccountLookup, AccountMatch, Lead, OpenLead, Outcome
from routing.name_evidence import describe_evidence
from routing.normalize import normalize
from routing.plan import plan_for
from routing.policy import Policy
from routing.targets import Pick, apply_rule, decide_assigned, decide_closed, decide_queued

# For a call without them: read-only, so shared rather than made for every lead.
_NOTHING: Mapping[Any, Any] = MappingProxyType({})
_NO_STATE = RoutingState(_NOTHING, _NOTHING, _NOTHING, _NOTHING, _NOTHING)
_NO_EXCLUSIONS: Mapping[str, str] = _NOTHING

# Enum members as module constants for the hot path: on Python 3.11 `Stage.RULE` goes through
# the enum's metaclass (about 70 ns), and a decision names a stage a few dozen times. The other
# modules of the engine (plan, eligibility, targets) do the same.
_NORMALISE = Stage.NORMALISE
_QUALIFY = Stage.QUALIFY
_ACCOUNT = Stage.ACCOUNT
_RULE = Stage.RULE
_FALLBACK = Stage.FALLBACK

# Trace steps are built with tuple.__new__ on the hot path: one C call, where the NamedTuple's
# own __new__ is a Python function (a decision writes a few dozen steps).
_step = tuple.__new__


def route(
    lead: Lead,
    *,
    policy: Policy,
    now: datetime,
    accounts: AccountLookups | None = None,
    state: RoutingState | None = None,
    excluded: Mapping[str, str] | None = None,
) -> Decision:
    """Decide whose `lead` is.

    `excluded` maps reps who must not get this lead to why, phrased to follow their name
    ("rejected this lead", "let its SLA lapse"). A lead taking part in one of the policy's
    experiments is routed by its arm's policy, the arm in the decision and first in its trace.
    """
    if now.tzinfo is None:
        raise ValueError("route() needs a timezone-aware `now`")
    if not policy.experiments:
        return _route(lead, policy, now, accounts, state, excluded)
    if accounts is not None:
        accounts = _AskedTwice(accounts)  # the arm's look at the account, then the route's
    choice = _arm_of(lead, policy, accounts)
    if choice is None:
        return _route(lead, policy, now, accounts, state, excluded)
    arm_policy = choice.experiment.candidate if choice.arm == CANDIDATE else policy
    decision = _route(lead, arm_policy, now, accounts, state, excluded)
    step = Step(Stage.EXPERIMENT, choice.experiment.name, choice.arm == CANDIDATE, choice.detail())
    decision.trace = (step, *decision.trace)
    decision.experiment = choice.experiment.name
    decision.arm = choice.arm
    return decision


class _AskedTwice:
    """Account lookups where the same question, asked again at once, is answered from the first
    time: a lead in an experiment is matched to its account to choose its arm, then by the
    route of that arm (a candidate policy matches at the same threshold)."""

    __slots__ = ("_accounts", "_found", "_question")

    def __init__(self, accounts: AccountLookups) -> None:
        self._accounts = accounts
        self._question: tuple[object, ...] | None = None
        self._found: AccountLookup | None = None

    def lookup(
        self,
        *,
        domain: str | None,
        company: str | None,
        threshold: float,
        country: str | None = None,
        state: str | None = None,
    ) -> AccountLookup:
        question = (domain, company, threshold, country, state)
        if question != self._question or self._found is None:
            self._found = self._accounts.lookup(
                domain=domain, company=company, threshold=threshold, country=country, state=state
            )
            self._question = question
        return self._found


def _arm_of(lead: Lead, policy: Policy, accounts: AccountLookups | None) -> ArmChoice | None:
    """The lead's arm: its facts and its account looked at once before routing, as the
    experiments' `when:` and `by: account` read them (an ambiguous match is no account)."""
    facts = normalize(lead, policy)
    match = None
    if accounts is not None:
        values = facts.values
        found = accounts.lookup(
            domain=values.get("domain"),
            company=values.get("company"),
            threshold=policy.fuzzy_threshold,
            country=values.get("country"),
            state=values.get("state"),
        )
        if found.match is not None and not found.match.ambiguous:
            match = found.match
    facts.add_account(match)
    return choose_arm(policy.experiments, facts.values, facts.folded, lead.id)


def _route(
    lead: Lead,
    policy: Policy,
    now: datetime,
    accounts: AccountLookups | None,
    state: RoutingState | None,
    excluded: Mapping[str, str] | None,
) -> Decision:
    facts = normalize(lead, policy)
    plan = plan_for(policy)
    ctx = Context(policy, state or _NO_STATE, now, excluded or _NO_EXCLUSIONS, facts, plan)
    if facts.notes:
        ctx.steps.append(Step(_NORMALISE, "lead", True, "; ".join(facts.notes)))

    # Every lead is checked against every qualify rule and most rules, each writing a step:
    # these loops read their lookups from locals, and each rule's parts from its `Line`.
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
            return decide_closed(ctx, outcome, f"{name} → {outcome.value}", rule=name)
        field_name = miss.field
        value = value_of(field_name) if field_name else None
        add_step(_step(Step, (_QUALIFY, name, False, miss.clause, field_name, value, None)))

    ctx.match = _match_account(ctx, accounts)
    facts.add_account(ctx.match)
    if ctx.ambiguous and policy.on_ambiguous == "queue":
        names = " or ".join(account.name for account in ctx.ambiguous)
        reason = f"Ambiguous account ({names}) → {policy.fallback.name} queue"
        return decide_queued(ctx, policy.fallback, None, reason, fallback=True)

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
                return decide_assigned(ctx, same.pick, None, reason)

    if policy.sticky_accounts and ctx.match is not None:
        sticky = _sticky(ctx, ctx.match)
        if sticky is not None:
            holder = policy.rep_name(sticky.rep)
            reason = f"Sticky account {ctx.match.account.name} · {holder} holds its open leads"
            return decide_assigned(ctx, sticky, None, reason)

    lines = plan.rules
    count = len(lines)
    at = 0
    while at < count:
        name, field_name, accepted, clause, absent, when, rule, run = lines[at]
        at += 1
        # `Gate` inline (see its docstring): most rules a lead goes past miss on their first
        # clause, and this settles those without the one or two calls of `when.check`. When
        # the gate's fact is not set at all, the whole step was written in advance; when the
        # next rules are gated on the same fact, their steps may have been too (`Run`).
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
        return apply_rule(ctx, rule)

    ctx.steps.append(Step(_FALLBACK, policy.fallback.name or "unmatched", True, "no rule matched"))
    return decide_queued(
        ctx, policy.fallback, None, f"No rule matched → {policy.fallback.name} queue"
    )


def _match_account(ctx: Context, accounts: AccountLookups | None) -> AccountMatch | None:
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


def _ambiguous(ctx: Context, match: AccountMatch) -> None:
    """Two accounts or more nearly as likely: no account is picked; the policy says whether
    the rules route the lead as if none matched (`rules`) or it waits in the fallback queue
    for a person to pick (`queue`, which `route` settles before the rules)."""
    named = [match.account, *[other.account for other in match.ambiguous]]
    scores = [match.score, *[other.score for other in match.ambiguous]]
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
    pick: Pick
    lead_id: str  # the open lead the rep holds


def _same_person(ctx: Context, email: str, held: Sequence[OpenLead]) -> _Held | None:
    """The rep holding an open lead of the person `email` is, if one can take this lead too.

    Like a sticky account: the holders in turn, most recent first, each checked as any rep is
    (out of office, off hours, at capacity, rejected this lead), the skips in the trace."""
    lead_id = ctx.facts.lead.id
    others = [open_lead for open_lead in held if open_lead.lead_id != lead_id]
    if not others:
        return None
    rep_id = _first_holder(ctx, Stage.PERSON, email, [o.rep for o in others], "their open lead")
    if rep_id is None:
        detail = "no rep holding their open lead is available"
        ctx.steps.append(Step(Stage.PERSON, email, False, detail))
        return None
    lead = next(o.lead_id for o in others if o.rep == rep_id)
    ctx.steps.append(Step(Stage.PERSON, email, True, f"{rep_id} holds their open lead {lead}"))
    ctx.chose(rep_id, f"holds this person's open lead {lead}")
    return _Held(Pick(rep_id, ctx.policy.first_team_of(rep_id), "same_person"), lead)


def _sticky(ctx: Context, match: AccountMatch) -> Pick | None:
    holders = ctx.state.account_reps.get(match.account.id)
    if not holders:
        return None
    name = match.account.name
    rep_id = _first_holder(ctx, Stage.STICKY, name, holders, "its open leads")
    if rep_id is not None:
        ctx.steps.append(Step(Stage.STICKY, name, True, f"{rep_id} holds its open leads"))
        ctx.chose(rep_id, "holds this account's open leads")
        return Pick(rep_id, ctx.policy.first_team_of(rep_id), "sticky")
    ctx.steps.append(Step(Stage.STICKY, name, False, "no rep holding its open leads is available"))
    return None


def _first_holder(
    ctx: Context, stage: Stage, subject: str, holders: Iterable[str], what: str
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
