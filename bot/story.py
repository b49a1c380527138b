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
from routing.policy_version import short_version
from storage.models import AuditEventRow, DecisionRow, LeadRow
from storage.reads import StoryRows


@dataclass(frozen=True, slots=True)
class StoryEvent:
    at: datetime
    what: str


@dataclass(frozen=True, slots=True)
class DecidedBy:
    """The policy version that made the lead's first decision, and how it came to serve."""

    version: str  # as people read it (`short_version`): "unversioned" before versions were kept
    activated_at: datetime | None = None  # None: never activated (an import's, say)
    activated_by: str | None = None  # who, and how: "alice (leadrouter policy activate)"


@dataclass(frozen=True, slots=True)
class LeadStory:
    lead_id: str
    explanation: str
    events: tuple[StoryEvent, ...]
    notes: tuple[str, ...] = ()  # what a reader of the story should know besides
    decided_by: DecidedBy | None = None  # None when the lead has no decision stored


def lead_story(rows: StoryRows, policy: Policy, *, crms: Collection[str]) -> LeadStory:
    """The story of the lead in `rows`; `crms` are the CRMs owners are written back to here."""
    lead, first = rows.lead, rows.first_decision
    explanation = explain(_decision_of(lead, first), policy) if first else lead.reason
    version = first.policy_version if first else None
    events = tuple(_story_event(policy, audit, version) for audit in rows.audits)
    decided_by = None
    if first is not None:
        activation = rows.activation
        decided_by = DecidedBy(
            short_version(version),
            activation.at if activation else None,
            _who(activation.how, activation.by) if activation else None,
        )
    return LeadStory(lead.external_id, explanation, events, _notes(lead, crms), decided_by)


def _who(how: str, by: str | None) -> str:
    return f"{by} ({how})" if by else how


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
    "rep_left_policy": "moved",
}


def _story_event(policy: Policy, audit: AuditEventRow, version: str | None) -> StoryEvent:
    """What the audit event says; a decision made by another policy version than the lead's
    first names it."""
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
    decided_by = data.get("policy_version")
    if audit.kind in ("routed", "rerouted") and decided_by and decided_by != version:
        parts.append(f"(policy version {short_version(decided_by)})")
    if audit.reason:
        parts.append(f"· {audit.reason}")
    return StoryEvent(audit.at, " ".join(parts))
