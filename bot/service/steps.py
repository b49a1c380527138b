"""Steps several use cases share inside their transaction: find a lead, answer with it, save
what decisions say and queue what follows from them, move a lead on from its rep (on its
rep's word, or after a lapsed SLA)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.service.errors import UnknownLead
from bot.service.kinds import OutboxKind
from bot.service.outbox_items import card_items, owner_write, queue_post, settle_card
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.views import LeadView, Move, view_of, view_of_decision
from bot.service.world import World
from routing.decision import Decision
from routing.model import Lead, Outcome
from routing.overrides import queued_after_misses
from routing.policy import Policy
from routing.working_time import sla_deadline
from storage import repository as repo
from storage.decisions import Decided, Saved, lead_of, redecide, save_decisions
from storage.models import LeadRow, MoveReason, OfferRow, OfferStatus


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


# Why a rep must not get a lead again, by the status their offer of it closed with (phrased
# to follow their name, in the trace and the reason).
_EXCLUDED_WHY = {
    OfferStatus.REJECTED.value: "rejected this lead",
    OfferStatus.REASSIGNED.value: "already had this lead",
    OfferStatus.EXPIRED.value: "let this lead's SLA lapse",
    OfferStatus.UNCONTACTED.value: "did not contact this lead in time",
}
# The offers a rep let lapse, which `sla.max_reassignments` counts.
MISSED = (OfferStatus.EXPIRED.value, OfferStatus.UNCONTACTED.value)


def excluded_reps(
    offers: Sequence[OfferRow], *, closed_now: Mapping[int, str] | None = None
) -> dict[str, str]:
    """Reps who must not get the lead again, and why (phrased to follow their name).
    `closed_now`: the status of offers closed in bulk in this transaction, whose rows still
    show the status they were read with."""
    excluded: dict[str, str] = {}
    for offer in offers:
        status = (closed_now or {}).get(offer.id or 0, offer.status)
        if status in _EXCLUDED_WHY:
            excluded[offer.rep_id] = _EXCLUDED_WHY[status]
    return excluded


def reroute_after_miss(
    world: World,
    policy: Policy,
    lead: Lead,
    offer: OfferRow,
    history: Sequence[OfferRow],
    *,
    closed_as: OfferStatus,
    now: datetime,
) -> Decision:
    """Where a lead goes once its rep let `offer`'s SLA lapse (`closed_as` EXPIRED: the claim
    SLA; UNCONTACTED: the contact SLA): to the next rep who can take it, none of those who had
    it before, or to the fallback queue once `sla.max_reassignments` lapses are exceeded.
    `history` is every offer of the lead, `offer` among them; its rep's load is released."""
    world.release(offer.rep_id)
    earlier = [o for o in history if o.id != offer.id]
    missed_by = [o.rep_id for o in earlier if o.status in MISSED]
    missed_by.append(offer.rep_id)
    if len(missed_by) > policy.sla.max_reassignments:
        uncontacted = closed_as is OfferStatus.UNCONTACTED
        return queued_after_misses(
            lead, policy=policy, missed_by=missed_by, uncontacted=uncontacted
        )
    excluded = excluded_reps([*earlier, offer], closed_now={offer.id or 0: closed_as.value})
    return world.route(lead, now, excluded=excluded)


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
    because: MoveReason | None = None,
) -> Move:
    """Close the lead's open `offer` (rejected, reassigned: `because`) and route the lead again,
    without every rep who already had it."""
    now = uow.clock()
    changed = repo.change_offer_status(
        session=tx.session,
        offer_id=offer.id or 0,
        from_status=OfferStatus.OFFERED.value,
        to_status=to_status.value,
        now=now,
        moved_because=because.value if because is not None else None,
    )
    if not changed:
        raise repo.Conflict(f"offer {offer.id} changed meanwhile")
    offers = repo.offers_of_lead(session=tx.session, lead_id=row.id or 0)
    excluded = excluded_reps(offers)
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
