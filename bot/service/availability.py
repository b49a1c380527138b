"""A rep's availability: out of office (their unclaimed offers move on) and back again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.service.errors import ServiceError
from bot.service.offers import reassign
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.views import Move
from routing.scope import rep_scope
from storage import repository as repo
from storage.models import MoveReason, OfferStatus


async def set_out_of_office(
    uow: UnitOfWork,
    rep_id: str,
    *,
    until: datetime | None,
    reason: str | None,
    by: str | None = None,
) -> list[Move]:
    """Mark a rep away (until None: until further notice); re-route their unclaimed offers."""
    policy = uow.policy()
    if rep_id not in policy.reps:
        raise ServiceError(f"no rep with id {rep_id} in the policy")
    now = uow.clock()
    if until is not None and until <= now:
        raise ServiceError("the end of an absence must be in the future")
    data = {"rep": rep_id, "until": until.isoformat() if until else None}
    await _record_away(
        uow,
        rep_id,
        away=True,
        until=until,
        reason=reason,
        actor=by or rep_id,
        kind="out_of_office",
        data=data,
    )
    async with uow.reading() as session:
        offers = await repo.unclaimed_offers_of_rep(session=session, rep_id=rep_id)
        ids = [offer.id for offer in offers if offer.id is not None]
    moves = []
    for offer_id in ids:
        moved = await reassign(
            uow,
            offer_id,
            because=MoveReason.OUT_OF_OFFICE,
            reason="out of office",
            kind="rep_out_of_office",
            expected_status=OfferStatus.OFFERED,
        )
        if moved is not None:
            moves.append(moved)
    return moves


async def set_back(uow: UnitOfWork, rep_id: str, *, by: str | None = None) -> None:
    await _record_away(
        uow,
        rep_id,
        away=False,
        until=None,
        reason=None,
        actor=by or rep_id,
        kind="back",
        data={"rep": rep_id},
    )


async def _record_away(
    uow: UnitOfWork,
    rep_id: str,
    *,
    away: bool,
    until: datetime | None,
    reason: str | None,
    actor: str,
    kind: str,
    data: dict[str, Any],
) -> None:
    now = uow.clock()

    def save(tx: Transaction) -> None:
        # Holding the rep's scopes: a decision for any of their teams already under way
        # finishes first (so its offer is found and moved below) and none starts until
        # this commits (so none sees the rep as present).
        tx.hold_first(rep_scope(uow.policy(), rep_id))
        # Away from this commit on (since None: already), not from the clock's reading: a
        # decision that reads it may carry an earlier `now` (read before it waited for the
        # rep's scope, or on another replica's clock), would find the absence not begun and
        # give the rep a lead after the offers to move were looked up.
        repo.set_away(
            session=tx.session,
            rep_id=rep_id,
            away=away,
            since=None,
            until=until,
            reason=reason,
            now=now,
        )
        repo.add_audit(
            session=tx.session,
            lead_id=None,
            at=now,
            kind=kind,
            actor=actor,
            reason=reason,
            data=data,
        )

    await uow.retrying(save)
