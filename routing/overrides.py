"""Decisions made around the rules rather than by them: the watchdog giving up on a lead nobody
claims, and a manager handing a queued lead to a rep of their choosing.

They come out as the engine's own `Decision`, trace included, so they are stored, explained by
`/routing why` and carded exactly like a routed one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from routing.decision import Decision, Stage, Step
from routing.model import Lead, Outcome
from routing.normalize import normalize
from routing.policy import Policy
from routing.working_time import sla_deadline


def queued_after_misses(
    lead: Lead, *, policy: Policy, missed_by: Sequence[str], uncontacted: bool = False
) -> Decision:
    """The lead goes to the fallback queue: `missed_by` (rep ids, oldest first) each let its SLA
    lapse, and the policy allows no more reassignments. `uncontacted`: the last of them claimed
    it and let its contact SLA lapse (the others may have let either lapse)."""
    facts = normalize(lead, policy)
    queue = policy.fallback.name or "unmatched"
    names = ", ".join(policy.rep_name(rep) for rep in missed_by)
    misses = len(missed_by)
    what = "contacted in time" if uncontacted else "claimed"
    who = f"missed by {names}" if uncontacted else f"not claimed by {names}"
    detail = f"{who}; sla.max_reassignments is {policy.sla.max_reassignments}"
    return Decision(
        lead_id=lead.id,
        outcome=Outcome.QUEUED,
        # Who let it lapse is in the reason, so a manager's alert names whom to ask.
        reason=(
            f"Not {what} after {misses} offer{'s' if misses != 1 else ''} ({names}) → {queue} queue"
        ),
        rule="SLA watchdog",
        queue=queue,
        channel=policy.fallback.channel,
        fallback_used=True,
        trace=(Step(Stage.FALLBACK, queue, True, detail),),
        facts=facts.values,
    )


def assigned_by_hand(lead: Lead, *, policy: Policy, rep: str, by: str, now: datetime) -> Decision:
    """`by` (a manager) gives the lead to `rep` at `now`, whatever the rules would say. The SLA
    is the one the policy sets for the lead's source, else its default, on the policy's clock."""
    if rep not in policy.reps:
        raise ValueError(f"{rep} is not a rep in the policy")
    facts = normalize(lead, policy)
    sla = policy.sla
    seconds = sla.seconds_for(lead.source)
    who = policy.rep_name(by) if by in policy.reps else _manager_name(policy, by)
    return Decision(
        lead_id=lead.id,
        outcome=Outcome.ASSIGNED,
        reason=f"Assigned by {who}",
        rep=rep,
        team=None,
        rule="Assigned by hand",
        method="direct",
        sla_seconds=seconds,
        sla_due_at=sla_deadline(sla, policy.reps[rep], now, seconds),
        trace=(Step(Stage.TARGET, policy.rep_name(rep), True, f"chosen by {who}"),),
        facts=facts.values,
    )


def _manager_name(policy: Policy, manager_id: str) -> str:
    manager = policy.managers.get(manager_id)
    return manager.name if manager is not None else manager_id
