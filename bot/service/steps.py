"""Steps several use cases share inside their transaction: find a lead, answer with it, save
what decisions say and queue what follows from them, move a lead on from its rep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.service.errors import UnknownLead
from bot.service.kinds import OutboxKind
from bot.service.outbox_items import card_items, owner_write, queue_post, settle_card
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.views import LeadView, Move, view_of, view_of_decision
from routing.model import Outcome
from routing.policy import Policy
from routing.working_time import sla_deadline
from storage import repository as repo
from storage.decisions import Decided, Saved, lead_of, redecide, save_decisions
from storage.models import LeadRow, OfferRow, OfferStatus


def find(session: Session, external_id: str, *, lock: bool = False) -> LeadRow:
    """The stored lead, or UnknownLead; with `lock`, held until the transaction ends."""
    row = repo.find_lead(session=session, external_id=external_id, lock=lock)
    if row is None:
        raise UnknownLead(f"no lead with id {external_id}")
    return row


def stored_view(session: Session, row: LeadRow, policy: Policy) -> LeadView:
    """A stored lead as `POST /leads` answers with it; an open offer's SLA deadline with it."""
    offer = repo.current_offer(session=session, lead_id=row.id or 0)
    if offer is None or offer.status != OfferStatus.OFFERED:
        return view_of(row, None)
    return view_of(row, offer.sla_due_at or _due_once_carded(offer, policy))


def _due_once_carded(offer: OfferRow, policy: Policy) -> datetime | None:
    """The deadline an offer whose card is not out yet was answered with when it was made:
    the one it has if the card goes out at once (see `record`)."""
    rep = policy.reps.get(offer.rep_id)
    if offer.card_posted_at is not None or not offer.sla_seconds or rep is None:
        return None
    return sla_deadline(policy.sla, rep, offer.offered_at, offer.sla_seconds)


def record(
    uow: UnitOfWork,
    tx: Transaction,
    decided: Sequence[Decided],
    now: datetime,
    *,
    kind: str,
    actor: str | None,
    policy: Policy,
) -> Saved:
    """Save what each decision says (`storage.decisions`) and queue what follows: each new
    offer's cards, each queued lead's post, and owner write-backs where the policy writes on
    assignment. The offer's SLA waits for its card when `uow.cards`."""
    saved = save_decisions(
        session=tx.session,
        decided=decided,
        now=now,
        kind=kind,
        actor=actor,
        policy=policy,
        cards=uow.cards,
    )
    queued = [
        queue_post(lead_id, decision, reassignments, now)
        for lead_id, _external_id, decision, reassignments in decided
        if decision.outcome is Outcome.QUEUED
    ]
    decision_of = {lead_id: decision for lead_id, _e, decision, _r in decided}
    # No card delivery runs here (an import, a server without Slack): these cards will go out
    # later, all at once, and `watchdog.summarise_backlog` tells the managers of them.
    backlog = not tx.carried_out_here(OutboxKind.OFFER_CARD)
    posts = []
    for lead_id, offer_id in sorted(saved.offer_ids.items()):
        posts += card_items(policy, decision_of[lead_id], lead_id, offer_id, now, backlog=backlog)
    writes: list[dict[str, Any]] = []
    if policy.crm.write_on == "assign" and saved.offer_ids:
        leads = repo.leads_by_id(session=tx.session, ids=saved.offer_ids)
        writes = [
            owner_write(
                lead.crm_system,
                lead_id,
                decision_of[lead_id].rep or "",
                saved.offer_ids[lead_id],
                now,
            )
            for lead_id, lead in sorted(leads.items())
            if lead.crm_system and lead.crm_system in uow.crms and lead.crm_id
        ]
    tx.queue([*posts, *queued, *writes])
    return saved


def excluded_reps(offers: Sequence[OfferRow], *, expired: int | None) -> dict[str, str]:
    """Reps who must not get the lead again, and why (phrased to follow their name)."""
    why = {
        OfferStatus.REJECTED.value: "rejected this lead",
        OfferStatus.REASSIGNED.value: "already had this lead",
        OfferStatus.EXPIRED.value: "let this lead's SLA lapse",
    }
    excluded: dict[str, str] = {}
    for offer in offers:
        status = OfferStatus.EXPIRED.value if offer.id == expired else offer.status
        if status in why:
            excluded[offer.rep_id] = why[status]
    return excluded


def move(
    uow: UnitOfWork,
    tx: Transaction,
    row: LeadRow,
    offer: OfferRow,
    *,
    to_status: OfferStatus,
    kind: str,
    actor: str | None,
    reason: str,
) -> Move:
    """Close the lead's open `offer` (rejected, reassigned) and route the lead again, without
    every rep who already had it."""
    now = uow.clock()
    changed = repo.change_offer_status(
        session=tx.session,
        offer_id=offer.id or 0,
        from_status=OfferStatus.OFFERED.value,
        to_status=to_status.value,
        now=now,
    )
    if not changed:
        raise repo.Conflict(f"offer {offer.id} changed meanwhile")
    offers = repo.offers_of_lead(session=tx.session, lead_id=row.id or 0)
    excluded = excluded_reps(offers, expired=None)
    tx.queue([settle_card(offer.id or 0, now)])
    repo.add_audit(
        session=tx.session,
        lead_id=row.id,
        at=now,
        kind=kind,
        actor=actor,
        reason=reason,
        data={"rep": offer.rep_id},
    )
    policy = uow.policy()
    lead = lead_of(row)
    world = tx.world(policy, [lead], now=now, reps=[offer.rep_id])
    world.release(offer.rep_id)
    decision = world.route(lead, now, excluded=excluded)
    reassignments = offer.reassignments + (1 if to_status is OfferStatus.REASSIGNED else 0)
    redecide(row, lead, decision, now, policy)
    assert row.id is not None
    saved = record(
        uow,
        tx,
        [Decided(row.id, row.external_id, decision, reassignments)],
        now,
        kind="rerouted",
        actor=actor,
        policy=policy,
    )
    world.commit(tx.session, now)
    view = view_of_decision(row.external_id, decision, saved.deadlines.get(row.external_id))
    return Move(row.external_id, offer.rep_id, view)
