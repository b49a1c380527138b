"""A card's bookkeeping, for the outbox's Slack worker: a posted card recorded on its offer once,
and whether a card is still waiting to go out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.service.outbox_items import offer_card_key
from storage import repository as repo
from storage.db import Database


@dataclass(frozen=True, slots=True)
class PostedCard:
    """A card Slack accepted, as it is to be recorded on its offer."""

    offer_id: int
    team_copy: bool
    channel: str
    ts: str
    posted_at: datetime | None = None  # DM cards: the SLA runs from here
    sla_due_at: datetime | None = None
    remind_at: datetime | None = None


def record_posted(session: Session, card: PostedCard) -> bool:
    """Record where `card` went, in the outbox item's finishing transaction; False when another
    copy of it was recorded first (that copy is the one the rep keeps)."""
    return repo.record_card_posted(
        session=session,
        offer_id=card.offer_id,
        team_copy=card.team_copy,
        channel=card.channel,
        ts=card.ts,
        posted_at=card.posted_at,
        sla_due_at=card.sla_due_at,
        remind_at=card.remind_at,
    )


async def card_still_queued(db: Database, offer_id: int) -> bool:
    """Whether the offer's card is still to be posted (its outbox item neither done nor given
    up): what settles a card waits for it."""
    async with db.reading() as session:
        return await repo.outbox_pending(session=session, dedupe_key=offer_card_key(offer_id))
