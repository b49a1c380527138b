"""A rep's availability: out of office (their unclaimed offers move on) and back again. A rep
someone else marks is told so in a DM, queued with the change itself: by whom, until when, and
where their leads went (read once they have moved: `bot.slack.delivery`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.service.errors import ServiceError
from bot.service.offers import reassign
from bot.service.outbox_items import absence_told
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
    """Mark a rep away (until None: until further notice); re-route their unclaimed offers.
    `by` someone other than the rep: the rep is told in a DM."""
    policy = uow.policy()
    if rep_id not in policy.reps:
        raise ServiceError(f"no rep with id {rep_id} in the policy")
    now = uow.clock()
    if until is not None and until <= now:
        raise ServiceError("the end of an absence must be in the future")
    data = {"rep": rep_id, "until": until.isoformat() if until else None}
    ids = await _record_away(
        uow,
        rep_id,
        away=True,
        until=until,
        reason=reason,
        actor=by or rep_id,
        kind="out_of_office",
        data=data,
    )
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
    """The rep is available again; `by` someone other than the rep: the rep is told in a DM."""
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
) -> list[int]:
    """Record the change; the rep's unclaimed offers as it was made (away), to move on."""
    now = uow.clock()

    def save(tx: Transaction) -> list[int]:
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
        change = repo.add_audit_event(
            session=tx.session,
            lead_id=None,
            at=now,
            kind=kind,
            actor=actor,
            reason=reason,
            data=data,
        )
        offers = repo.unclaimed_offer_ids_of_rep(session=tx.session, rep_id=rep_id) if away else []
        if actor != rep_id:  # someone else marked them: they hear of it from the outbox
            told = absence_told(
                uow.policy(),
                rep_id,
                by=actor,
                until=until,
                offers=offers if away else None,
                change=change,
                now=now,
            )
            tx.queue([told])
        return offers

    return await uow.retrying(save)
