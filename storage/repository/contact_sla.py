"""The contact SLA's clock on a claimed offer: started on the claim, the lapsed ones and the due
reminders the watchdog takes (each by compare-and-set, so that of two sweepers one acts). The
first touch it is measured against is `outcomes.first_touches`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from storage.models import OfferRow, OfferStatus
from storage.repository.common import id_chunks, skips_locked


def start_contact_clock(
    *,
    session: Session,
    offer_id: int,
    seconds: int,
    due_at: datetime,
    remind_at: datetime | None,
) -> None:
    """The rep claimed the offer: they have `seconds` (due at `due_at`) to touch the lead."""
    session.execute(
        update(OfferRow)
        .where(col(OfferRow.id) == offer_id)
        .values(
            contact_sla_seconds=seconds,
            contact_due_at=due_at,
            contact_check_at=due_at,
            contact_remind_at=remind_at,
        )
        .execution_options(synchronize_session=False)
    )


def lapsed_contact_clocks(*, session: Session, now: datetime, limit: int) -> Sequence[OfferRow]:
    """Claimed offers whose contact SLA has fallen due and not been looked at, the earliest
    first; locked, and those another sweeper holds passed over, as `overdue_offers` does."""
    statement = (
        select(OfferRow)
        .where(
            col(OfferRow.contact_check_at) <= now,
            col(OfferRow.status) == OfferStatus.CLAIMED.value,
        )
        .order_by(col(OfferRow.contact_check_at), col(OfferRow.id))
        .limit(limit)
    )
    if skips_locked(session):
        statement = statement.with_for_update(skip_locked=True)
    return session.execute(statement).scalars().all()


async def contact_work_due(*, session: AsyncSession, now: datetime) -> tuple[bool, bool]:
    """Whether some claimed offer's contact SLA has fallen due unlooked at, and whether some
    contact reminder is due: one read, so that a sweep with nothing to do writes nothing."""
    claimed = col(OfferRow.status) == OfferStatus.CLAIMED.value
    lapsed = exists().where(col(OfferRow.contact_check_at) <= now, claimed)
    remind = exists().where(col(OfferRow.contact_remind_at) <= now, claimed)
    found = (await session.execute(select(lapsed, remind))).one()
    return bool(found[0]), bool(found[1])


def stop_contact_clocks(*, session: Session, offer_ids: Sequence[int]) -> int:
    """The watchdog has looked at these offers' contact SLAs (compare-and-set): no reminder
    and no second look. How many were still running."""
    stopped = 0
    for chunk in id_chunks(offer_ids):
        result = session.execute(
            update(OfferRow)
            .where(col(OfferRow.id).in_(chunk), col(OfferRow.contact_check_at).is_not(None))
            .values(contact_check_at=None, contact_remind_at=None)
            .execution_options(synchronize_session=False)
        )
        stopped += result.rowcount  # type: ignore[attr-defined]
    return stopped


def due_contact_reminders(
    *, session: Session, now: datetime, limit: int
) -> Sequence[tuple[int, int]]:
    """(offer id, lead id) of claimed offers whose contact reminder is due, locked as
    `lapsed_contact_clocks` locks its rows."""
    statement = (
        select(col(OfferRow.id), col(OfferRow.lead_id))
        .where(
            col(OfferRow.contact_remind_at) <= now,
            col(OfferRow.status) == OfferStatus.CLAIMED.value,
        )
        .order_by(col(OfferRow.contact_remind_at))
        .limit(limit)
    )
    if skips_locked(session):
        statement = statement.with_for_update(skip_locked=True)
    rows = session.execute(statement).all()
    return [(offer_id, lead_id) for offer_id, lead_id in rows if offer_id is not None]


def clear_contact_reminders(*, session: Session, offer_ids: Sequence[int]) -> list[tuple[int, str]]:
    """Mark these offers' contact reminders as taken (compare-and-set); the (offer id, rep id)
    of each this call took."""
    taken: list[tuple[int, str]] = []
    for chunk in id_chunks(offer_ids):
        result = session.execute(
            update(OfferRow)
            .where(col(OfferRow.id).in_(chunk), col(OfferRow.contact_remind_at).is_not(None))
            .values(contact_remind_at=None)
            .returning(col(OfferRow.id), col(OfferRow.rep_id))
            .execution_options(synchronize_session=False)
        )
        taken.extend((offer_id, rep_id) for offer_id, rep_id in result.all() if offer_id)
    return taken
