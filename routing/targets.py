"""From a rule that matched to a decision: its target resolved to a rep or a queue.

A team picks by its distribution among the members who can take the lead, a named rep or the
account owner takes it if they can, a queue takes it as it is; when nobody can, the rule's own
fallback is tried, then the policy's. The one-line reason is written here, and the `Decision`
built, for these and for the decisions `route` settles before the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from routing.decision import METHOD_LABELS, Decision, Stage, Step
from routing.distribution import Distribution, TeamState, pick_least_loaded, pick_weighted
from routing.eligibility import Context
from routing.model import Outcome
from routing.performance import NO_OUTCOMES, explain_pick, pick_performance, rates_for
from routing.plan import Member
from routing.policy import Rule, Target, TargetKind, Team
from routing.working_time import sla_deadline

# The rule a decision names when no rule of the policy made it, by its method.
_HELD_RULES = {"sticky": "Sticky account", "same_person": "Same person"}
EMPTY_TEAM_STATE = TeamState()

# Enum members as module constants for the hot path (see `routing.engine`).
_FALLBACK = Stage.FALLBACK
_ROUND_ROBIN = Distribution.ROUND_ROBIN
_WEIGHTED = Distribution.WEIGHTED
_PERFORMANCE = Distribution.PERFORMANCE
_TEAM = TargetKind.TEAM
_QUEUE = TargetKind.QUEUE
_ASSIGNED = Outcome.ASSIGNED
_QUEUED = Outcome.QUEUED

_step = tuple.__new__  # steps built in one C call (see `Step`)


@dataclass(slots=True)
class Pick:
    """The rep a decision gives the lead to, the team they were picked from, and how."""

    rep: str
    team: str | None
    method: str
    team_state: TeamState | None = None


def apply_rule(ctx: Context, rule: Rule) -> Decision:
    target = rule.assign
    if target.kind is _QUEUE:
        return decide_queued(ctx, target, rule, f"{rule.name} → {target.name} queue")
    pick = _resolve(ctx, target)
    if pick is not None:
        return decide_assigned(ctx, pick, rule, _assigned_reason(ctx, rule.name, pick))
    failed = _failure(ctx, target)
    if rule.fallback is not None:
        detail = "the rule's fallback"
        ctx.steps.append(
            _step(Step, (_FALLBACK, rule.fallback.describe(), True, detail, None, None, None))
        )
        if rule.fallback.kind is _QUEUE:
            return decide_queued(
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
            return decide_assigned(ctx, pick, rule, reason, fallback=True)
        failed = f"{failed}; nobody in fallback {rule.fallback.describe()} either"
    policy_fallback = ctx.policy.fallback
    detail = "the policy's fallback"
    ctx.steps.append(
        _step(Step, (_FALLBACK, policy_fallback.describe(), True, detail, None, None, None))
    )
    return decide_queued(
        ctx,
        policy_fallback,
        rule,
        f"{rule.name} · {failed} → {policy_fallback.name} queue",
        fallback=True,
    )


def _resolve(ctx: Context, target: Target) -> Pick | None:
    policy = ctx.policy
    if target.kind is _TEAM:
        assert target.name is not None
        return _pick_from_team(ctx, policy.teams[target.name], target.skill)
    if target.kind is TargetKind.REP:
        assert target.name is not None
        if ctx.eligible(target.name):
            ctx.chose(target.name, "named by the rule")
            return Pick(target.name, policy.first_team_of(target.name), "direct")
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
            return Pick(owner, policy.first_team_of(owner), "account_owner")
        return None
    raise AssertionError(f"queue targets are not resolved to reps: {target}")


def _pick_from_team(ctx: Context, team: Team, skill: str | None) -> Pick | None:
    state = ctx.state.teams.get(team.name, EMPTY_TEAM_STATE)
    line = ctx.plan.teams[team.name]
    members = ctx.plan.team_members(team, skill, ctx.off_hours_now(), ctx.now)
    if team.distribution is _ROUND_ROBIN:
        # `pick_round_robin` spelled out: the members, in rotation order, go through one pass of
        # the eligibility checks that stops at the first eligible one, rather than one call each.
        rotation = _rotated(members, team.members, state.last_rep)
        found = ctx.eligible_members(rotation, first=True)
        rep = found[0] if found else None
        new_state = (
            TeamState(rep, state.current, state.days, state.performance)
            if rep is not None
            else state
        )
    else:
        eligible = ctx.eligible_members(members)
        if team.distribution is _WEIGHTED:
            rep, new_state = pick_weighted(eligible, line.weights, state)
        elif team.distribution is _PERFORMANCE:
            return _pick_by_performance(ctx, team, eligible, state, line.method)
        else:
            rep, new_state = pick_least_loaded(team.members, eligible, ctx.state.open_loads, state)
    if rep is None:
        return None
    ctx.chose(rep, line.chose)
    return Pick(rep, team.name, line.method, new_state)


def _pick_by_performance(
    ctx: Context, team: Team, eligible: list[str], state: TeamState, method: str
) -> Pick | None:
    counts = ctx.state.outcomes.get(team.name, NO_OUTCOMES)
    facts = ctx.facts
    rates = rates_for(
        counts, team.members, facts.values.get("segment"), facts.lead.source, team.prior
    )
    pick, at_ceiling = pick_performance(
        team.members, eligible, rates.weights(eligible), state, team.fairness, _utc_day(ctx.now)
    )
    for rep_id, week in at_ceiling:
        ctx.skip(
            rep_id,
            f"is at the fairness ceiling ({week} leads this week)",
            in_reason=pick is None,
        )
    if pick is None:
        return None
    ctx.chose(pick.rep, explain_pick(ctx.policy.rep_name(pick.rep), pick, rates))
    return Pick(pick.rep, team.name, method, pick.state)


def _utc_day(now: datetime) -> date:
    return now.astimezone(UTC).date()


def _rotated(members: list[Member], ids: Sequence[str], last_rep: str | None) -> list[Member]:
    """`members` (one for each of `ids`) in `rotation_order(ids, last_rep)`."""
    if last_rep is None or last_rep not in ids:
        return members
    start = ids.index(last_rep) + 1
    return [*members[start:], *members[:start]]


def _skip_summary(ctx: Context, shown: int = 2) -> str:
    parts = [f"{ctx.policy.rep_name(rep_id)} {why}" for rep_id, why in ctx.skips[:shown]]
    if len(ctx.skips) > shown:
        parts.append(f"{len(ctx.skips) - shown} more skipped")
    return "; ".join(parts)


def _failure(ctx: Context, target: Target) -> str:
    """Why a target yielded no rep, for the one-line reason."""
    if target.kind is _TEAM:
        text = f"nobody in {target.describe()} available"
        return f"{text} ({_skip_summary(ctx)})" if ctx.skips else text
    if ctx.skips:  # a named rep or the account owner, who was unavailable
        return _skip_summary(ctx)
    return ctx.steps[-1].detail  # the account had no owner, or one who is not a rep


def _assigned_reason(ctx: Context, rule_name: str, pick: Pick) -> str:
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


def _sla_seconds(ctx: Context, rule: Rule | None) -> int:
    if rule is not None and rule.sla_seconds is not None:
        return rule.sla_seconds
    return ctx.policy.sla.seconds_for(ctx.facts.lead.source)


# The decisions below are built with positional arguments, in the order of Decision's fields
# (lead_id, outcome, reason, rep, team, rule, method, queue, channel, sla_seconds, sla_due_at,
# account, team_state, fallback_used, trace, facts): a class called with keywords is handed
# them as a dict, which for sixteen fields costs 0.4 µs a decision. A test pins the order.


def decide_assigned(
    ctx: Context, pick: Pick, rule: Rule | None, reason: str, *, fallback: bool = False
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


def decide_queued(
    ctx: Context, target: Target, rule: Rule | None, reason: str, *, fallback: bool = False
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


def decide_closed(ctx: Context, outcome: Outcome, reason: str, *, rule: str) -> Decision:
    # Keywords here: only leads that qualify rules end are decided this way.
    return Decision(
        lead_id=ctx.facts.lead.id,
        outcome=outcome,
        reason=reason,
        rule=rule,
        trace=tuple(ctx.steps),
        facts=ctx.facts.values,
    )
