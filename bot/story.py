"""A lead's story for `/routing why`: the decision's full explanation, then what happened since,
its outcome events among the rest (the first touch, the opportunity, won or lost, each once, as
`routing.report.outcomes_of` settles them however the reports came).

Plain data out, no Slack formatting: `bot.slack` renders it. `bot.reading.Reader.story` reads the
rows (and checks who may see them); this words them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.card import why_moved
from bot.crm_links import crm_name
from bot.service.kinds import (
    CRM_OWNER_SET,
    CRM_WRITE_FAILED,
    CRM_WRITE_RETRYING,
    MANAGER_NOT_TOLD,
    QUEUE_POST_UNDELIVERABLE,
)
from routing.decision import Decision
from routing.explain import explain
from routing.model import Outcome
from routing.money import with_currency
from routing.policy import Policy
from routing.policy_version import short_version
from routing.report import EventKind, outcomes_of
from storage.decisions import steps_of
from storage.models import AuditEventRow, DecisionRow, LeadEventRow, LeadRow, MoveReason, OfferRow
from storage.reads import StoryRows
from storage.repository import AMOUNT_LEFT_OUT, outcome_event


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


def lead_story(
    rows: StoryRows,
    policy: Policy,
    *,
    crms: Collection[str],
    currency: str | None = None,
    detail: bool = True,
) -> LeadStory:
    """The story of the lead in `rows`; `crms` are the CRMs owners are written back to here,
    `currency` what its amounts are in (`LEADROUTER_CURRENCY`; None: not named). Without
    `detail` (a rep's view), a lead taken from a rep says why in the card's words alone, not
    what RevOps fixes it by (the error Slack gave for a card, the policy version), and what
    only managers and RevOps act on (`_FOR_MANAGERS`) is left out."""
    lead, first = rows.lead, rows.first_decision
    explanation = explain(_decision_of(lead, first), policy) if first else lead.reason
    version = first.policy_version if first else None
    because = _moves(rows.offers)
    told = [
        _story_event(policy, audit, version, because=because, detail=detail)
        for audit in rows.audits
        if detail or audit.kind not in _FOR_MANAGERS
    ]
    told.extend(_outcome_events(rows.outcomes, currency))
    events = tuple(sorted(told, key=lambda event: event.at))  # stable: audits keep their order
    decided_by = None
    if first is not None and detail:
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
    return Decision(
        lead_id=lead.external_id,
        outcome=Outcome(row.outcome),
        reason=row.reason,
        rep=row.rep_id,
        team=row.team,
        rule=row.rule,
        queue=lead.queue if row.outcome == Outcome.QUEUED.value else None,
        sla_seconds=row.sla_seconds,
        trace=steps_of(row.trace),
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
    "rep_left_policy": "moved",
    "queue_post_undeliverable": "not posted in the queue's channel",
    "manager_not_told": "a manager could not be told in Slack",
    AMOUNT_LEFT_OUT: "amount left out",
}


# What Slack could not bring to a manager or a queue's channel: the managers' to know and
# RevOps' to fix (a member id, an archived channel), nothing a rep does anything about.
_FOR_MANAGERS = (MANAGER_NOT_TOLD, QUEUE_POST_UNDELIVERABLE)

# The audit kinds of a lead taken from its rep (`offers.reassign`, `offers.card_undeliverable`),
# each recorded at the moment its offer closed.
_MOVE_KINDS = ("reassigned", "rep_out_of_office", "card_undeliverable", "rep_left_policy")


def _moves(offers: Sequence[OfferRow]) -> dict[tuple[str, datetime], str]:
    """Why each reassigned offer that kept it was taken from its rep: by (rep, moment it closed),
    the audit event of its move."""
    return {
        (offer.rep_id, offer.closed_at): offer.moved_because
        for offer in offers
        if offer.moved_because and offer.closed_at is not None
    }


def _story_event(
    policy: Policy,
    audit: AuditEventRow,
    version: str | None,
    *,
    because: dict[tuple[str, datetime], str] | None = None,
    detail: bool = True,
) -> StoryEvent:
    """What the audit event says; a decision made by another policy version than the lead's
    first names it. A lead taken from a rep says why as its next card does (`because`: the
    offers' reasons, `_moves`)."""
    data = audit.data or {}
    rep = data.get("rep")
    code = (because or {}).get((rep, audit.at)) if audit.kind in _MOVE_KINDS and rep else None
    moved = why_moved(code, policy.rep_name(rep)) if code else None
    if moved is not None:
        said = f"Moved on: {moved}"
        if detail and audit.reason and code != MoveReason.OUT_OF_OFFICE.value:
            said += f" · {audit.reason}"  # the absence's own reason never reaches the audit
        return StoryEvent(audit.at, said)
    words = _EVENT_WORDS.get(audit.kind, audit.kind.replace("_", " "))
    crm = crm_name(data.get("system"))
    if audit.kind == CRM_OWNER_SET:
        words = f"owner set in {crm}"
    elif audit.kind == CRM_WRITE_FAILED:
        words = f"owner NOT set in {crm}, given up"
    elif audit.kind == CRM_WRITE_RETRYING:
        words = f"owner not yet set in {crm}, trying again"
    parts = [words[0].upper() + words[1:]]
    if audit.kind in ("routed", "rerouted"):
        outcome = data.get("outcome")
        if outcome == Outcome.ASSIGNED.value:
            parts.append(f"to {policy.rep_name(rep)}")
        elif outcome:
            parts.append(f"→ {outcome}")
    elif audit.kind == "assigned" and rep:
        parts.append(f"to {policy.rep_name(rep)}")
    elif rep:
        parts.append(f"({policy.rep_name(rep)})")
    # A lead routed again after a rep rejected it was not sent on by that rep: their reject is
    # its own event. A manager who assigned it is named, by name as the cards name them.
    rejected_by = audit.kind == "rerouted" and audit.actor in policy.reps
    if audit.actor and audit.actor != rep and not rejected_by:
        parts.append(f"by {_person(policy, audit.actor)}")
    decided_by = data.get("policy_version")
    if detail and audit.kind in ("routed", "rerouted") and decided_by and decided_by != version:
        parts.append(f"(policy version {short_version(decided_by)})")
    if audit.reason and audit.kind != "assigned":  # an assign's reason: "to <rep>", said
        parts.append(f"· {audit.reason}")
    return StoryEvent(audit.at, " ".join(parts))


def _person(policy: Policy, person: str) -> str:
    """A rep's or a manager's name; the id of someone the policy no longer names."""
    manager = policy.managers.get(person)
    return manager.name if manager is not None else policy.rep_name(person)


# An opportunity exists once any of these is reported (`outcomes_of`).
_OPPORTUNITY_KINDS = (EventKind.CONVERTED, EventKind.WON, EventKind.LOST)


def _outcome_events(rows: Sequence[LeadEventRow], currency: str | None) -> list[StoryEvent]:
    """The lead's outcomes, each once: its first touch, the opportunity, won or lost, each with
    the report that settled it (how, and who told)."""
    settled = outcomes_of(outcome_event(row) for row in rows)
    told = []
    if settled.first_touch_at is not None:
        row = _deciding(rows, settled.first_touch_at, (EventKind.FIRST_TOUCH,))
        told.append(StoryEvent(settled.first_touch_at, f"First touch{_told_by(row)}"))
    if settled.converted_at is not None:
        row = _deciding(rows, settled.converted_at, _OPPORTUNITY_KINDS)
        told.append(
            StoryEvent(settled.converted_at, f"Converted: an opportunity{_told_by(row, how=False)}")
        )
    for kind, at in ((EventKind.WON, settled.won_at), (EventKind.LOST, settled.lost_at)):
        if at is None:
            continue
        parts = ["Won" if kind is EventKind.WON else "Lost"]
        if settled.amount is not None:
            parts.append(with_currency(settled.amount, currency))
        if settled.close_date is not None:
            parts.append(f"close date {settled.close_date.isoformat()}")
        row = _deciding(rows, at, (kind,))
        told.append(StoryEvent(at, " · ".join(parts) + _told_by(row, how=False)))
    return told


def _deciding(
    rows: Sequence[LeadEventRow], at: datetime, kinds: tuple[EventKind, ...]
) -> LeadEventRow | None:
    wanted = {kind.value for kind in kinds}
    return next((row for row in rows if row.at == at and row.kind in wanted), None)


def _told_by(row: LeadEventRow | None, *, how: bool = True) -> str:
    """Who told it, and (`how`) how it happened: " (call, Salesforce)"."""
    if row is None:
        return ""
    source = crm_name(row.source) if row.source in ("salesforce", "hubspot") else row.source
    return f" ({row.via}, {source})" if how and row.via else f" ({source})"
