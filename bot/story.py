"""A lead's story for `/routing why`: the decision's full explanation, then what happened since.

Plain data out, no Slack formatting: `bot.slack` renders it. `bot.reading.Reader.story` reads the
rows (and checks who may see them); this words them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from bot.crm_links import crm_name
from bot.service.kinds import CRM_OWNER_SET, CRM_WRITE_FAILED
from routing.decision import Decision, Stage, Step
from routing.explain import explain
from routing.model import Outcome
from routing.policy import Policy
from storage.models import AuditEventRow, DecisionRow, LeadRow
from storage.reads import StoryRows


@dataclass(frozen=True, slots=True)
class StoryEvent:
    at: datetime
    what: str


@dataclass(frozen=True, slots=True)
class LeadStory:
    lead_id: str
    explanation: str
    events: tuple[StoryEvent, ...]
    notes: tuple[str, ...] = ()  # what a reader of the story should know besides


def lead_story(rows: StoryRows, policy: Policy, *, crms: Collection[str]) -> LeadStory:
    """The story of the lead in `rows`; `crms` are the CRMs owners are written back to here."""
    lead, first = rows.lead, rows.first_decision
    explanation = explain(_decision_of(lead, first), policy) if first else lead.reason
    events = tuple(_story_event(policy, audit) for audit in rows.audits)
    return LeadStory(lead.external_id, explanation, events, _notes(lead, crms))


def _notes(lead: LeadRow, crms: Collection[str]) -> tuple[str, ...]:
    if lead.crm_system and lead.crm_id and lead.crm_system not in crms:
        crm = crm_name(lead.crm_system)
        return (
            f"{crm} is not configured here, so the owner is not written back to this "
            f"lead's {crm} record; an admin can set its credentials (`leadrouter crm check` "
            "tests them) for later claims to be written.",
        )
    return ()


def _decision_of(lead: LeadRow, row: DecisionRow) -> Decision:
    """A stored decision back as the engine's `Decision`, so `explain` reads it as it was made."""
    trace = tuple(
        Step(
            Stage(step["stage"]),
            step["subject"],
            step["ok"],
            step.get("detail", ""),
            step.get("field"),
            step.get("value"),
            step.get("note"),
        )
        for step in row.trace
    )
    return Decision(
        lead_id=lead.external_id,
        outcome=Outcome(row.outcome),
        reason=row.reason,
        rep=row.rep_id,
        team=row.team,
        rule=row.rule,
        queue=lead.queue if row.outcome == Outcome.QUEUED.value else None,
        sla_seconds=row.sla_seconds,
        trace=trace,
        facts=lead.facts,
    )


_EVENT_WORDS = {
    "routed": "routed",
    "rerouted": "routed again",
    "claimed": "claimed",
    "rejected": "rejected",
    "reassigned": "reassigned",
    "rep_out_of_office": "moved: the rep went out of office",
    "sla_missed": "moved: not claimed in time",
    "contact_missed": "contact SLA missed",
}


def _story_event(policy: Policy, audit: AuditEventRow) -> StoryEvent:
    data = audit.data or {}
    words = _EVENT_WORDS.get(audit.kind, audit.kind.replace("_", " "))
    crm = crm_name(data.get("system"))
    if audit.kind == CRM_OWNER_SET:
        words = f"owner set in {crm}"
    elif audit.kind == CRM_WRITE_FAILED:
        words = f"owner NOT set in {crm}, given up"
    parts = [words[0].upper() + words[1:]]
    rep = data.get("rep")
    if audit.kind in ("routed", "rerouted"):
        outcome = data.get("outcome")
        if outcome == Outcome.ASSIGNED.value:
            parts.append(f"to {policy.rep_name(rep)}")
        elif outcome:
            parts.append(f"→ {outcome}")
    elif rep:
        parts.append(f"({policy.rep_name(rep)})")
    if audit.actor and audit.actor != rep:
        parts.append(f"by {policy.rep_name(audit.actor)}")
    if audit.reason:
        parts.append(f"· {audit.reason}")
    return StoryEvent(audit.at, " ".join(parts))
