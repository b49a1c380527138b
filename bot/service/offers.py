"""What happens to an offer: a rep claims or rejects it, a manager assigns a queued lead, and an
offer is taken from its rep (out of office, SLA, a card Slack would not take) and the lead routed
again. Each is one transaction; of any number of concurrent changes to one offer, one wins."""

from __future__ import annotations

from bot.service.contact_sla import start_clock
from bot.service.errors import NotAllowed, ServiceError
from bot.service.kinds import CARD_UNDELIVERABLE
from bot.service.outbox_items import manager_alerts, owner_write, settle_card
from bot.service.steps import find, move, record, stored_view
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.views import ClaimResult, LeadView, Move, view_of, view_of_decision
from routing.overrides import assigned_by_hand
from storage import repository as repo
from storage.decisions import Decided, lead_of, redecide
from storage.models import LeadRow, LeadStatus, MoveReason, OfferStatus


async def claim(uow: UnitOfWork, external_id: str, *, by: str) -> ClaimResult:
    """Claim the lead's open offer. Exactly one of any number of concurrent claims wins."""
    policy = uow.policy()

    def work(tx: Transaction) -> ClaimResult:
        session = tx.session
        row = find(session, external_id)
        offer = repo.current_offer(session=session, lead_id=row.id or 0)
        if offer is None:
            raise NotAllowed(f"Lead {external_id} is not offered to anyone: {_where(row)}.")
        if offer.status == OfferStatus.CLAIMED:
            return ClaimResult(False, offer.rep_id, stored_view(session, row, policy))
        if offer.status != OfferStatus.OFFERED:
            raise NotAllowed(f"Lead {external_id} is no longer offered to anyone: {_where(row)}.")
        if by != offer.rep_id and by not in policy.managers:
            raise NotAllowed(
                f"lead {external_id} is offered to {policy.rep_name(offer.rep_id)}, not to you"
            )
        now = uow.clock()
        won = repo.change_offer_status(
            session=session,
            offer_id=offer.id or 0,
            from_status=OfferStatus.OFFERED.value,
            to_status=OfferStatus.CLAIMED.value,
            now=now,
        )
        if not won:
            # Someone else changed the offer first. Read what is there now (a new statement
            # sees their commit) rather than answer from the stale rows read above.
            repo.read_again(session=session, row=row)
            current = repo.current_offer(session=session, lead_id=row.id or 0, fresh=True)
            if current is not None and current.status == OfferStatus.CLAIMED:
                return ClaimResult(False, current.rep_id, stored_view(session, row, policy))
            holder = policy.rep_name(current.rep_id) if current is not None else "nobody"
            raise NotAllowed(f"lead {external_id} was moved meanwhile; it is with {holder} now")
        repo.set_lead_status(session=session, lead=row, status=LeadStatus.CLAIMED.value, now=now)
        start_clock(tx, policy, row, offer, now)
        repo.add_audit(
            session=session,
            lead_id=row.id,
            at=now,
            kind="claimed",
            actor=by,
            data={"rep": offer.rep_id},
        )
        side_effects = [settle_card(offer.id or 0, now)]
        writes = row.crm_system in uow.crms and row.crm_id
        if policy.crm.write_on == "claim" and row.crm_system and writes:
            side_effects.append(
                owner_write(row.crm_system, row.id or 0, offer.rep_id, offer.id or 0, now)
            )
        tx.queue(side_effects)
        return ClaimResult(True, offer.rep_id, view_of(row, None))

    return await uow.write(work)


def _where(row: LeadRow) -> str:
    """Where a lead no rep is offered stands, for someone clicking an old card's Claim."""
    if row.status == LeadStatus.QUEUED.value:
        return f"it waits in the {row.queue or 'unmatched'} queue, for a manager to assign"
    return f"it is marked {row.status}"


async def reject(uow: UnitOfWork, external_id: str, *, by: str, reason: str) -> Move:
    """The offered rep declines: route the lead again without everyone who declined it."""

    def work(tx: Transaction) -> Move:
        row = find(tx.session, external_id)
        offer = repo.current_offer(session=tx.session, lead_id=row.id or 0)
        if offer is None or offer.status != OfferStatus.OFFERED or offer.rep_id != by:
            raise NotAllowed(f"lead {external_id} is not offered to you")
        return move(
            uow,
            tx,
            row,
            offer,
            to_status=OfferStatus.REJECTED,
            kind="rejected",
            actor=by,
            reason=reason,
        )

    return await uow.routing(work, f"lead {external_id}")


async def reassign(
    uow: UnitOfWork,
    offer_id: int,
    *,
    because: MoveReason,
    reason: str,
    kind: str = "reassigned",
    expected_status: OfferStatus = OfferStatus.OFFERED,
) -> Move | None:
    """Take an unclaimed offer away from its rep, `because` (kept on the offer: what the next
    rep's card says of it), and route the lead again.

    Returns None when the offer was no longer open (claimed or moved meanwhile): the one
    caller that changes an offer's status is the one that moves it.
    """

    def work(tx: Transaction) -> Move | None:
        offer = repo.offer_by_id(session=tx.session, offer_id=offer_id)
        if offer is None or offer.status != expected_status:
            return None
        row = repo.lead_by_id(session=tx.session, lead_id=offer.lead_id)
        assert row is not None
        return move(
            uow,
            tx,
            row,
            offer,
            to_status=OfferStatus.REASSIGNED,
            kind=kind,
            actor=None,
            reason=reason,
            because=because,
        )

    return await uow.routing(work, f"offer {offer_id}")


async def card_undeliverable(uow: UnitOfWork, offer_id: int, why: str) -> Move | None:
    """The rep's card could not be delivered (Slack refused it for good): the lead moves on
    to the next rep who can take it, and the rep is not charged a miss. A lead that goes to
    the queue for it is told to its managers, as one the watchdog gives up on is."""
    reason = f"the card could not be delivered in Slack: {why}"

    def work(tx: Transaction) -> Move | None:
        offer = repo.offer_by_id(session=tx.session, offer_id=offer_id)
        if offer is None or offer.status != OfferStatus.OFFERED:
            return None
        row = repo.lead_by_id(session=tx.session, lead_id=offer.lead_id)
        assert row is not None
        moved = move(
            uow,
            tx,
            row,
            offer,
            to_status=OfferStatus.REASSIGNED,
            kind=CARD_UNDELIVERABLE,
            actor=None,
            reason=reason,
            because=MoveReason.CARD_UNDELIVERABLE,
        )
        if row.status == LeadStatus.QUEUED.value:
            why_queued = f"Its card could not be delivered to {uow.policy().rep_name(offer.rep_id)}"
            tx.queue(manager_alerts(uow.policy(), offer, row, uow.clock(), why=why_queued))
        return moved

    return await uow.routing(work, f"offer {offer_id}")


async def assign(uow: UnitOfWork, external_id: str, *, rep_id: str, by: str) -> LeadView:
    """A manager offers a lead waiting in a queue to the rep of their choosing; from there
    it is an offer like any other (card, Claim, SLA)."""
    policy = uow.policy()
    if by not in policy.managers:
        raise NotAllowed("only managers named in the policy may assign leads from the queue")
    if rep_id not in policy.reps:
        raise ServiceError(f"{rep_id} is not a rep in the policy")

    def work(tx: Transaction) -> LeadView:
        # Locked, so that of two assigns at once (a double click, two managers) the second
        # finds the lead offered already.
        row = find(tx.session, external_id, lock=True)
        if row.status != LeadStatus.QUEUED.value:
            holder = f" ({policy.rep_name(row.rep_id)})" if row.rep_id else ""
            raise NotAllowed(f"lead {external_id} is not in a queue: it is {row.status}{holder}")
        now = uow.clock()
        lead = lead_of(row)
        decision = assigned_by_hand(lead, policy=policy, rep=rep_id, by=by, now=now)
        world = tx.world(policy, [lead], now=now, reps=[rep_id])
        world.take(rep_id)
        redecide(row, lead, decision, now, policy)
        offers = repo.offers_of_lead(session=tx.session, lead_id=row.id or 0)
        reassignments = offers[-1].reassignments + 1 if offers else 0
        repo.add_audit(
            session=tx.session,
            lead_id=row.id,
            at=now,
            kind="assigned",
            actor=by,
            reason=f"to {policy.rep_name(rep_id)}",
            data={"rep": rep_id},
        )
        saved = record(
            uow,
            tx,
            [Decided(row.id or 0, row.external_id, decision, reassignments)],
            now,
            kind="rerouted",
            actor=by,
            policy=policy,
        )
        world.commit(tx.session, now)
        due = saved.deadlines.get(row.external_id)
        return view_of_decision(row.external_id, decision, due)

    return await uow.routing(work, f"lead {external_id}")
