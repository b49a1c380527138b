"""The SLA watchdog: offers left unclaimed past their deadline move on, claimed leads untouched
past their contact SLA are looked at (`contact_sla`), reps are reminded at half of either, and at
start the managers hear once of leads that arrived while no Slack app ran."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

from bot.service.contact_sla import sweep_contacts
from bot.service.kinds import BACKLOG, SLA_MISSED, OutboxKind
from bot.service.outbox_items import (
    manager_alerts,
    managers_of,
    reminder,
    settle_card,
)
from bot.service.safety_nets import finish_what_was_lost
from bot.service.steps import record, reroute_after_miss
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.views import SweepResult
from routing.durations import format_duration
from routing.model import Outcome
from storage import repository as repo
from storage.decisions import Decided, lead_of, redecide
from storage.models import AuditEventRow, OfferStatus

log = logging.getLogger("bot.service")

SWEEP_BATCH = 500  # overdue offers reassigned per transaction
BACKLOG_RECENT = timedelta(minutes=5)  # see `summarise_backlog`


async def sweep(uow: UnitOfWork, *, batch: int = SWEEP_BATCH) -> SweepResult:
    """Finish what a lost transaction left half done (`safety_nets`: the leads of a rep marked
    out, of a card given up, the managers to tell after a post given up), reassign every offer
    past its deadline and still unclaimed (but those of a rep out: they are not charged a
    miss), look at every claimed lead whose contact SLA is due (`contact_sla`), then queue the
    reminders that are due. Batch by batch, each its own
    transaction: a sweep cut short (a restart) leaves whole batches done and the rest for the
    next sweep, never half a reassignment."""
    total = await finish_what_was_lost(uow, batch)
    while True:
        done = await uow.routing(lambda tx: _sweep_batch(uow, tx, batch), "the SLA sweep")
        total = total + done
        uow.tally.sla_misses += done.expired
        if done.expired < batch:
            break
    total = total + await sweep_contacts(uow, batch)
    return total + SweepResult(reminded=await _queue_reminders(uow, batch))


def _sweep_batch(uow: UnitOfWork, tx: Transaction, batch: int) -> SweepResult:
    session = tx.session
    now = uow.clock()
    overdue = repo.overdue_offers(session=session, now=now, limit=batch)
    if not overdue:
        return SweepResult()
    offer_ids = [offer.id or 0 for offer in overdue]
    closed = repo.close_offers(
        session=session, offer_ids=offer_ids, to_status=OfferStatus.EXPIRED.value, now=now
    )
    if closed != len(overdue):
        raise repo.Conflict("an overdue offer was claimed or moved meanwhile")
    policy = uow.policy()
    rows = repo.leads_by_id(session=session, ids=[o.lead_id for o in overdue])
    history = repo.offers_of_leads(session=session, lead_ids=list(rows))
    leads = {lead_id: lead_of(row) for lead_id, row in rows.items()}
    world = tx.world(
        policy, list(leads.values()), now=now, reps=[offer.rep_id for offer in overdue]
    )
    decided: list[Decided] = []
    audits: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    result = SweepResult(expired=len(overdue))
    for offer in overdue:
        row, lead = rows[offer.lead_id], leads[offer.lead_id]
        allowed = offer.sla_seconds or int(
            ((offer.sla_due_at or now) - offer.offered_at).total_seconds()
        )
        audits.append(
            {
                "lead_id": row.id,
                "at": now,
                "kind": SLA_MISSED,
                "actor": None,
                "rule": None,
                "reason": f"not claimed within {format_duration(allowed)}",
                "data": {"rep": offer.rep_id, "offer_id": offer.id},
            }
        )
        decision = reroute_after_miss(
            world,
            policy,
            lead,
            offer,
            history.get(offer.lead_id, []),
            closed_as=OfferStatus.EXPIRED,
            now=now,
        )
        if decision.outcome is Outcome.QUEUED:
            result = result + SweepResult(queued=1)
            alerts.extend(manager_alerts(policy, offer, row, now))
        else:
            result = result + SweepResult(reassigned=1)
        redecide(row, lead, decision, now, policy)
        decided.append(Decided(row.id or 0, row.external_id, decision, offer.reassignments + 1))
    repo.insert_rows(session=session, table=AuditEventRow, rows=audits)
    tx.queue([*(settle_card(offer_id, now) for offer_id in offer_ids), *alerts])
    record(uow, tx, decided, now, kind="rerouted", actor=None, policy=policy)
    world.commit(session, now)
    return result


async def _queue_reminders(uow: UnitOfWork, batch: int) -> int:
    """Queue a reminder for every open offer at half its SLA (when the policy asks)."""
    queued = 0
    while True:
        due, taken = await uow.write(lambda tx: _remind(uow, tx, batch))
        queued += taken
        if due < batch:
            return queued


def _remind(uow: UnitOfWork, tx: Transaction, batch: int) -> tuple[int, int]:
    """One batch of reminders: how many were due, and how many of those this queued."""
    now = uow.clock()
    due = repo.due_reminders(session=tx.session, now=now, limit=batch)
    taken = repo.clear_reminders(session=tx.session, offer_ids=due)
    policy = uow.policy()
    tx.queue([reminder(policy, offer_id, rep_id, now) for offer_id, rep_id in taken])
    return len(due), len(taken)


async def summarise_backlog(uow: UnitOfWork) -> int:
    """At start, before any card goes out: tell each manager once, in one message, of the
    leads that arrived while no Slack app ran (imported, or routed by a server without
    Slack), whose cards are about to go out all at once. Returns the summaries queued.

    The backlog is the rep cards queued where no card delivery ran (see `card_items`), still
    to post or posted within BACKLOG_RECENT: a replica starting beside another one, or just
    after it, finds the same oldest card and so the same summary, queued once."""
    policy = uow.policy()
    now = uow.clock()
    async with uow.reading() as session:
        items = await repo.outbox_items_since(
            session=session, kind=OutboxKind.OFFER_CARD, done_since=now - BACKLOG_RECENT
        )
        backlog = [item for item in items if item.payload.get(BACKLOG)]
        offers = await repo.offers_by_id(
            session=session, ids=[int(item.payload["offer_id"]) for item in backlog]
        )
    if not backlog:
        return 0
    reps: dict[str, Counter[str]] = {}
    for offer in offers.values():
        for manager in managers_of(policy, offer.team):
            reps.setdefault(manager, Counter())[offer.rep_id] += 1
    oldest = backlog[0]
    rows = [
        repo.outbox_values(
            kind=OutboxKind.BACKLOG,
            dedupe_key=f"backlog:{manager}:{oldest.id}",
            payload={
                "manager": manager,
                "leads": sum(counts.values()),
                "reps": dict(sorted(counts.items())),
                "since": oldest.created_at.isoformat(),
            },
            now=now,
            lane=policy.slack_of(manager),
        )
        for manager, counts in sorted(reps.items())
    ]
    try:
        queued = await uow.write(lambda tx: repo.queue_outbox_once(session=tx.session, rows=rows))
    except repo.AlreadyQueued:
        return 0  # a replica starting at the same moment queued them first
    if queued:
        log.info("%d leads arrived while no Slack app ran; told %d managers", len(backlog), queued)
        uow.outbox_written()
    return queued
