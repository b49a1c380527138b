"""A decision as rows: the lead's columns, the decision with its trace, the audit event, the offer.

The service layer decides; this module says how what it decided is stored, and reads a stored lead
back as the `Lead` the router takes. Each table is written in one bulk insert per transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from routing.decision import Decision, Step
from routing.leads import parse_lead
from routing.model import CrmSystem, Lead, Outcome
from routing.policy import Policy
from routing.working_time import sla_deadline
from storage import repository as repo
from storage.models import AuditEventRow, DecisionRow, LeadRow, LeadStatus, OfferStatus

STATUS_OF_OUTCOME = {
    Outcome.ASSIGNED: LeadStatus.OFFERED,
    Outcome.QUEUED: LeadStatus.QUEUED,
    Outcome.NURTURE: LeadStatus.NURTURE,
    Outcome.DISQUALIFIED: LeadStatus.DISQUALIFIED,
}


class Decided(NamedTuple):
    """A decision to save, for a stored lead."""

    lead_id: int
    external_id: str
    decision: Decision
    reassignments: int  # how often the lead was taken from a rep before this decision


@dataclass(frozen=True, slots=True)
class Saved:
    deadlines: dict[str, datetime]  # external id -> SLA deadline, for each lead offered
    offer_ids: dict[int, int]  # lead id -> the offer made


def lead_values(lead: Lead, decision: Decision, now: datetime, policy: Policy) -> dict[str, Any]:
    """A new lead's row, as its first decision (made by `policy`) leaves it."""
    return {
        "external_id": lead.id,
        "status": STATUS_OF_OUTCOME[decision.outcome].value,
        "rep_id": decision.rep,
        "team": decision.team,
        "rule": decision.rule,
        "queue": decision.queue,
        "reason": decision.reason,
        "account_id": decision.account.account.id if decision.account else None,
        "email": lead.email,
        "company": lead.company,
        "crm_system": lead.crm_system.value if lead.crm_system else None,
        "crm_id": lead.crm_id,
        "source": lead.source,
        "raw": _raw(lead),
        "facts": dict(decision.facts),
        "created_at": now,
        "updated_at": now,
        "policy_version": policy.version or None,
    }


def redecide(row: LeadRow, lead: Lead, decision: Decision, now: datetime, policy: Policy) -> None:
    """A stored lead takes a new decision (its identity and arrival stay as they were)."""
    for name, value in lead_values(lead, decision, now, policy).items():
        if name not in ("external_id", "raw", "created_at"):
            setattr(row, name, value)


def steps_of(trace: Sequence[Mapping[str, Any]]) -> tuple[Step, ...]:
    """A stored trace back as the decision's steps."""
    return tuple(Step.from_dict(step) for step in trace)


def lead_of(row: LeadRow) -> Lead:
    """The lead as it arrived, to route again."""
    return parse_lead(row.raw)


_LEAD_FIELDS = frozenset(Lead.__dataclass_fields__)


def lead_of_raw(raw: Mapping[str, Any]) -> Lead:
    """A lead's stored `raw` back as the `Lead` it was made from, without checking it again:
    it was checked on its way in, and `_raw` wrote it. A replay reads a hundred thousand of
    them, and checking each again (`parse_lead`, as `lead_of` does) cost a tenth of its time.
    Anything `_raw` would not have written is checked after all."""
    if not _LEAD_FIELDS.issuperset(raw) or not isinstance(raw.get("fields", {}), dict):
        return parse_lead(raw)
    values = dict(raw)
    crm_system = values.get("crm_system")
    if crm_system is not None:
        values["crm_system"] = CrmSystem(crm_system)
    return Lead(**values)


def save_decisions(
    *,
    session: Session,
    decided: Sequence[Decided],
    now: datetime,
    kind: str,
    actor: str | None,
    policy: Policy,
    cards: bool,
) -> Saved:
    """Write what each decision says: the decision with its trace, the audit event and, for a
    lead assigned to a rep, the offer; each table in one bulk insert. `cards`: the offer's SLA
    waits for its card (the deadline returned is the one it will have if the card goes out at
    once)."""
    decisions: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    offers: list[dict[str, Any]] = []
    deadlines: list[tuple[int, datetime]] = []
    for lead_id, _external_id, decision, reassignments in decided:
        decisions.append(
            {
                "lead_id": lead_id,
                "at": now,
                "outcome": decision.outcome.value,
                "rep_id": decision.rep,
                "team": decision.team,
                "rule": decision.rule,
                "reason": decision.reason,
                "sla_seconds": decision.sla_seconds,
                "trace": [step.as_dict() for step in decision.trace],
                "policy_version": policy.version or None,
                "method": decision.method,
                "fallback": decision.fallback_used,
                "experiment": decision.experiment,
                "arm": decision.arm,
            }
        )
        audits.append(
            {
                "lead_id": lead_id,
                "at": now,
                "kind": kind,
                "actor": actor,
                "rule": decision.rule,
                "reason": decision.reason,
                "data": {
                    "outcome": decision.outcome.value,
                    "rep": decision.rep,
                    "team": decision.team,
                    "policy_version": policy.version or None,
                },
            }
        )
        if decision.outcome is Outcome.ASSIGNED and decision.rep is not None:
            seconds = decision.sla_seconds or 0
            rep = policy.reps[decision.rep]
            due = decision.sla_due_at or sla_deadline(policy.sla, rep, now, seconds)
            deadlines.append((lead_id, due))
            remind_at = None
            if policy.sla.remind_at_half and seconds >= 2:
                remind_at = sla_deadline(policy.sla, rep, now, seconds // 2)
            offers.append(
                {
                    "lead_id": lead_id,
                    "rep_id": decision.rep,
                    "team": decision.team,
                    "status": OfferStatus.OFFERED.value,
                    "offered_at": now,
                    "sla_due_at": None if cards else due,
                    "sla_seconds": seconds,
                    "reassignments": reassignments,
                    "remind_at": None if cards else remind_at,
                }
            )
    repo.insert_rows(session=session, table=DecisionRow, rows=decisions)
    repo.insert_rows(session=session, table=AuditEventRow, rows=audits)
    offer_ids = repo.insert_offers(session=session, rows=offers)
    by_lead = {lead_id: external_id for lead_id, external_id, _d, _r in decided}
    return Saved({by_lead[lead_id]: due for lead_id, due in deadlines}, offer_ids)


def _raw(lead: Lead) -> dict[str, Any]:
    data = {name: getattr(lead, name) for name in Lead.__dataclass_fields__ if name != "fields"}
    data["crm_system"] = lead.crm_system.value if lead.crm_system else None
    data = {k: v for k, v in data.items() if v is not None}
    if lead.fields:
        data["fields"] = dict(lead.fields)
    jsonable: dict[str, Any] = _jsonable(data)
    return jsonable


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
