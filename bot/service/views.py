"""What the use cases answer with: plain data, nothing of the database or of Slack."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from routing.decision import Decision
from routing.model import Lead
from storage.decisions import STATUS_OF_OUTCOME
from storage.models import LeadRow, LeadStatus


@dataclass(frozen=True, slots=True)
class LeadView:
    """What callers see of a lead: the decision as `POST /leads` returns it."""

    id: str
    status: str
    rep: str | None
    team: str | None
    rule: str | None
    reason: str
    sla_due_at: datetime | None
    queue: str | None = None  # the queue it waits in, when queued (not in `as_json`)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "rep": self.rep,
            "team": self.team,
            "rule": self.rule,
            "reason": self.reason,
            "sla_due_at": self.sla_due_at.isoformat() if self.sla_due_at else None,
        }


@dataclass(frozen=True, slots=True)
class IntakeResult:
    created: bool
    lead: LeadView
    # The id was routed before for another lead (`routing.leads.told_apart`): this one was not
    # routed (an id reused for a different person, not a retry), and `lead` is the stored one.
    # What told them apart, such as "another e-mail address"; None for a new lead or a retry.
    clash: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claimed: bool  # True for the one click that claimed it
    holder: str | None  # who holds the lead now
    lead: LeadView


@dataclass(frozen=True, slots=True)
class Move:
    """A lead that moved from one rep to another (or to the queue) after a reject, OOO or SLA."""

    lead_id: str
    from_rep: str
    to: LeadView


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int = 0  # offers found past their deadline
    # leads the watchdog offered to another rep, or sent to the queue (no rep left, or too
    # many misses): those it found past their deadline, and those untouched past their contact
    # SLA where the policy moves them
    reassigned: int = 0
    queued: int = 0
    reminded: int = 0  # reminders queued at half the SLA
    contact_missed: int = 0  # claimed leads found not touched (or touched late) by their deadline
    contact_reminded: int = 0  # reminders queued at half the contact SLA
    # offers moved on because their card was given up, found by the sweep (`watchdog`)
    undelivered: int = 0
    # given-up queue posts and managers' DMs whose escalation was lost, done by the sweep
    escalated: int = 0
    # offers moved on from a rep out of office, whose absence's own moves were lost
    out_of_office: int = 0

    def __add__(self, other: SweepResult) -> SweepResult:
        return SweepResult(
            self.expired + other.expired,
            self.reassigned + other.reassigned,
            self.queued + other.queued,
            self.reminded + other.reminded,
            self.contact_missed + other.contact_missed,
            self.contact_reminded + other.contact_reminded,
            self.undelivered + other.undelivered,
            self.escalated + other.escalated,
            self.out_of_office + other.out_of_office,
        )


@dataclass(frozen=True, slots=True)
class NewOffer:
    """An offer intake just made, with what its card shows, so that the card can go out
    without reading back what this process has just written (`UnitOfWork.on_new_offers`)."""

    offer_id: int
    external_id: str
    rep: str
    team: str | None
    facts: dict[str, Any]
    reason: str
    sla_seconds: int | None
    sla_due_at: datetime | None  # None while it waits for the card (see `UnitOfWork.cards`)
    offered_at: datetime
    crm_system: str | None
    crm_id: str | None


def view_of(row: LeadRow, sla_due_at: datetime | None) -> LeadView:
    return LeadView(
        row.external_id,
        row.status,
        row.rep_id,
        row.team,
        row.rule,
        row.reason,
        sla_due_at,
        row.queue,
    )


def view_of_decision(external_id: str, decision: Decision, due: datetime | None) -> LeadView:
    status = STATUS_OF_OUTCOME[decision.outcome].value
    return LeadView(
        external_id,
        status,
        decision.rep,
        decision.team,
        decision.rule,
        decision.reason,
        due,
        decision.queue,
    )


def routed(view: LeadView) -> str:
    """Where a new lead went, for the log: ids and names of the policy, nothing of the lead."""
    where = f"offered to {view.rep}" if view.status == LeadStatus.OFFERED.value else view.status
    context = [f"team {view.team}" if view.team else "", f"rule {view.rule}" if view.rule else ""]
    details = ", ".join(part for part in context if part)
    return f"{where} ({details})" if details else where


def new_offers(
    rows: Sequence[Mapping[str, Any]],
    ids: Mapping[str, int],
    offer_ids: Mapping[int, int],
    decided: Sequence[tuple[Lead, Decision]],
    now: datetime,
    deadlines: Mapping[str, datetime],
) -> list[NewOffer]:
    """The offers among new leads just stored (`rows`, in the order of `decided`)."""
    made = []
    for row, (lead, decision) in zip(rows, decided, strict=True):
        offer_id = offer_ids.get(ids[lead.id])
        if offer_id is None or decision.rep is None:
            continue
        made.append(
            NewOffer(
                offer_id=offer_id,
                external_id=lead.id,
                rep=decision.rep,
                team=decision.team,
                facts=row["facts"],
                reason=decision.reason,
                sla_seconds=decision.sla_seconds,
                sla_due_at=deadlines.get(lead.id),
                offered_at=now,
                crm_system=row["crm_system"],
                crm_id=row["crm_id"],
            )
        )
    return made
