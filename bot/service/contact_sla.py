"""The contact SLA: from a rep's claim to the lead's first touch (a call, an e-mail, a meeting, as
the CRM or `POST /events` reports it).

The clock starts on the claim, at the policy's contact SLA for the lead (`routing.contact_sla`),
on the claim SLA's clock (`sla.clock`: business hours count alike). At half of it a rep who has
not touched the lead is reminded; once it is due the watchdog looks. A first touch at or before
the deadline kept it. Otherwise it was missed (a touch after the deadline is late): the audit
says so, the team's managers hear of it, and with `sla.reassign_on_contact_miss` a lead still
untouched is routed again as an unclaimed one is, without the rep who missed it. Each look is
one compare-and-set, so however many sweepers run, and whatever dies between batches, a lapse
is acted on once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.service.kinds import CONTACT_MISSED
from bot.service.outbox_items import contact_missed_alerts, contact_reminder, settle_card
from bot.service.steps import record, reroute_after_miss
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.views import SweepResult
from routing.contact_sla import contact_deadlines, contact_sla_seconds
from routing.durations import format_duration
from routing.model import Outcome
from routing.policy import Policy
from storage import repository as repo
from storage.decisions import Decided, lead_of, redecide
from storage.models import AuditEventRow, LeadRow, OfferRow, OfferStatus


def start_clock(
    tx: Transaction, policy: Policy, row: LeadRow, offer: OfferRow, now: datetime
) -> None:
    """The rep has just claimed `offer` of the lead `row`: their contact SLA runs from `now`,
    if the policy gives the lead one (by the rule that routed it, or its source)."""
    seconds = contact_sla_seconds(policy, rule=row.rule, source=row.source)
    if seconds is None:
        return
    due, remind_at = contact_deadlines(policy, policy.reps.get(offer.rep_id), now, seconds)
    repo.start_contact_clock(
        session=tx.session, offer_id=offer.id or 0, seconds=seconds, due_at=due, remind_at=remind_at
    )


async def sweep_contacts(uow: UnitOfWork, batch: int) -> SweepResult:
    """Look at every claimed lead whose contact SLA has fallen due, then queue the reminders
    due at half of it. Batch by batch, each its own transaction, as the claim SLA's sweep;
    a look on the read side first, so that a sweep with nothing to do writes nothing."""
    async with uow.reading() as session:
        lapsed, reminders = await repo.contact_work_due(session=session, now=uow.clock())
    total = SweepResult()
    while lapsed:
        done, looked = await uow.routing(
            lambda tx: _contact_batch(uow, tx, batch), "the contact SLA"
        )
        total = total + done
        uow.tally.contact_misses += done.contact_missed
        lapsed = looked == batch
    if reminders:
        total = total + SweepResult(contact_reminded=await _queue_reminders(uow, batch))
    return total


def _contact_batch(uow: UnitOfWork, tx: Transaction, batch: int) -> tuple[SweepResult, int]:
    """One batch: what came of it, and how many lapsed clocks it looked at."""
    session = tx.session
    now = uow.clock()
    lapsed = repo.lapsed_contact_clocks(session=session, now=now, limit=batch)
    if not lapsed:
        return SweepResult(), 0
    stopped = repo.stop_contact_clocks(session=session, offer_ids=[o.id or 0 for o in lapsed])
    if stopped != len(lapsed):
        raise repo.Conflict("a contact SLA was looked at by another sweeper meanwhile")
    touched = repo.first_touches(session=session, lead_ids=[o.lead_id for o in lapsed])
    missed = [o for o in lapsed if not _kept(o, touched.get(o.lead_id))]
    if not missed:
        return SweepResult(), len(lapsed)
    policy = uow.policy()
    audits = [_missed_audit(offer, touched.get(offer.lead_id), now) for offer in missed]
    repo.insert_rows(session=session, table=AuditEventRow, rows=audits)
    # A lead touched late stays with its rep: moving it now would only make a second person
    # call someone who has been called.
    moving = [o for o in missed if policy.sla.reassign_on_contact_miss and o.lead_id not in touched]
    result = SweepResult(contact_missed=len(missed)) + _reroute(uow, tx, policy, moving, now)
    moved = {offer.id for offer in moving}
    tx.queue(
        [
            alert
            for offer in missed
            for alert in contact_missed_alerts(
                policy, offer, now, touched_at=touched.get(offer.lead_id), moved=offer.id in moved
            )
        ]
    )
    return result, len(lapsed)


def _kept(offer: OfferRow, first_touch: datetime | None) -> bool:
    """Whether the lead was touched by the deadline (also before the claim: the rep called
    first and clicked after)."""
    due = offer.contact_due_at
    return first_touch is not None and due is not None and first_touch <= due


def _missed_audit(offer: OfferRow, touched_at: datetime | None, now: datetime) -> dict[str, Any]:
    allowed = format_duration(offer.contact_sla_seconds or 0)
    due = offer.contact_due_at
    if touched_at is not None and due is not None:
        reason = f"first touch {format_duration((touched_at - due).total_seconds())} late"
    else:
        reason = f"not contacted within {allowed} of the claim"
    return {
        "lead_id": offer.lead_id,
        "at": now,
        "kind": CONTACT_MISSED,
        "actor": None,
        "rule": None,
        "reason": reason,
        "data": {
            "rep": offer.rep_id,
            "offer_id": offer.id,
            "due_at": due.isoformat() if due else None,
            "touched_at": touched_at.isoformat() if touched_at else None,
        },
    }


def _reroute(
    uow: UnitOfWork, tx: Transaction, policy: Policy, offers: list[OfferRow], now: datetime
) -> SweepResult:
    """Take these claimed, untouched leads from their reps and route them again, as the claim
    SLA's sweep does with unclaimed ones."""
    if not offers:
        return SweepResult()
    session = tx.session
    offer_ids = [offer.id or 0 for offer in offers]
    closed = repo.close_offers(
        session=session,
        offer_ids=offer_ids,
        from_status=OfferStatus.CLAIMED.value,
        to_status=OfferStatus.UNCONTACTED.value,
        now=now,
    )
    if closed != len(offers):
        raise repo.Conflict("a claimed offer was moved meanwhile")
    rows = repo.leads_by_id(session=session, ids=[o.lead_id for o in offers])
    history = repo.offers_of_leads(session=session, lead_ids=list(rows))
    leads = {lead_id: lead_of(row) for lead_id, row in rows.items()}
    world = tx.world(policy, list(leads.values()), now=now, reps=[o.rep_id for o in offers])
    decided: list[Decided] = []
    result = SweepResult()
    for offer in offers:
        row, lead = rows[offer.lead_id], leads[offer.lead_id]
        decision = reroute_after_miss(
            world,
            policy,
            lead,
            offer,
            history.get(offer.lead_id, []),
            closed_as=OfferStatus.UNCONTACTED,
            now=now,
        )
        queued = decision.outcome is Outcome.QUEUED
        result = result + SweepResult(queued=1 if queued else 0, reassigned=0 if queued else 1)
        redecide(row, lead, decision, now, policy)
        decided.append(Decided(row.id or 0, row.external_id, decision, offer.reassignments + 1))
    tx.queue(
        [settle_card(offer_id, now, again=OfferStatus.UNCONTACTED.value) for offer_id in offer_ids]
    )
    record(uow, tx, decided, now, kind="rerouted", actor=None, policy=policy)
    world.commit(session, now)
    return result


async def _queue_reminders(uow: UnitOfWork, batch: int) -> int:
    """Queue a reminder for every claimed lead untouched at half its contact SLA."""
    queued = 0
    while True:
        due, taken = await uow.write(lambda tx: _remind(uow, tx, batch))
        queued += taken
        if due < batch:
            return queued


def _remind(uow: UnitOfWork, tx: Transaction, batch: int) -> tuple[int, int]:
    """One batch of contact reminders: how many were due, and how many of those this queued
    (a lead touched already needs none)."""
    now = uow.clock()
    due = repo.due_contact_reminders(session=tx.session, now=now, limit=batch)
    taken = repo.clear_contact_reminders(session=tx.session, offer_ids=[o for o, _ in due])
    touched = repo.first_touches(session=tx.session, lead_ids=[lead for _, lead in due])
    lead_of_offer = dict(due)
    policy = uow.policy()
    reminders = [
        contact_reminder(policy, offer_id, rep_id, now)
        for offer_id, rep_id in taken
        if lead_of_offer[offer_id] not in touched
    ]
    tx.queue(reminders)
    return len(due), len(reminders)
