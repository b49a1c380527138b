"""Offers: a lead's current and past offers, status changes by compare-and-set, the overdue and
the due reminders the watchdog takes, and where a card was posted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    Update,
    and_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from storage.models import OPEN_OFFER_STATUSES, OfferRow, OfferStatus, OutboxRow, RepStateRow
from storage.repository.common import OFFERS, id_chunks, skips_locked

_INSERT_OFFERS = insert(OFFERS).returning(OFFERS.c.id, OFFERS.c.lead_id)


def current_offer(*, session: Session, lead_id: int, fresh: bool = False) -> OfferRow | None:
    """The lead's latest offer; `fresh`: as committed now, also if this session read it before."""
    query = (
        select(OfferRow).where(col(OfferRow.lead_id) == lead_id).order_by(col(OfferRow.id).desc())
    )
    if fresh:
        query = query.execution_options(populate_existing=True)
    return session.execute(query).scalars().first()


def offer_by_id(*, session: Session, offer_id: int) -> OfferRow | None:
    return session.get(OfferRow, offer_id)


def offers_of_lead(*, session: Session, lead_id: int) -> Sequence[OfferRow]:
    result = session.execute(
        select(OfferRow).where(col(OfferRow.lead_id) == lead_id).order_by(col(OfferRow.id))
    )
    return result.scalars().all()


async def unclaimed_offers_of_rep(*, session: AsyncSession, rep_id: str) -> Sequence[OfferRow]:
    result = await session.execute(
        select(OfferRow)
        .where(col(OfferRow.rep_id) == rep_id, col(OfferRow.status) == OfferStatus.OFFERED.value)
        .order_by(col(OfferRow.id))
    )
    return result.scalars().all()


def unclaimed_offer_ids_of_rep(*, session: Session, rep_id: str) -> list[int]:
    """The ids of the rep's offers not claimed yet, oldest first."""
    result = session.execute(
        select(col(OfferRow.id))
        .where(col(OfferRow.rep_id) == rep_id, col(OfferRow.status) == OfferStatus.OFFERED.value)
        .order_by(col(OfferRow.id))
    )
    return [offer_id for (offer_id,) in result.all() if offer_id is not None]


async def reps_with_unclaimed_offers(*, session: AsyncSession) -> set[str]:
    """Every rep holding an offer not claimed yet."""
    result = await session.execute(
        select(col(OfferRow.rep_id))
        .where(col(OfferRow.status) == OfferStatus.OFFERED.value)
        .distinct()
    )
    return set(result.scalars().all())


async def offers_by_id(*, session: AsyncSession, ids: Iterable[int]) -> dict[int, OfferRow]:
    found: dict[int, OfferRow] = {}
    for chunk in id_chunks(ids):
        rows = await session.execute(select(OfferRow).where(col(OfferRow.id).in_(chunk)))
        found.update((row.id or 0, row) for row in rows.scalars())
    return found


def offers_of_leads(*, session: Session, lead_ids: Iterable[int]) -> dict[int, list[OfferRow]]:
    """Every offer of these leads, oldest first, by lead id."""
    found: dict[int, list[OfferRow]] = {}
    for chunk in id_chunks(lead_ids):
        rows = session.execute(
            select(OfferRow).where(col(OfferRow.lead_id).in_(chunk)).order_by(col(OfferRow.id))
        )
        for row in rows.scalars():
            found.setdefault(row.lead_id, []).append(row)
    return found


def overdue_offers(*, session: Session, now: datetime, limit: int) -> Sequence[OfferRow]:
    """Unclaimed offers past their deadline, most overdue first; not those of a rep out of
    office that they held as they were marked out (their absence moves them on, no miss
    charged: `offers_of_absent_reps`).

    On PostgreSQL the rows are locked for this transaction and rows another sweeper holds are
    passed over, so two replicas sweeping at once split the work instead of colliding on it."""
    statement = (
        select(OfferRow)
        .where(
            col(OfferRow.status) == OfferStatus.OFFERED.value,
            col(OfferRow.sla_due_at) <= now,
            ~exists().where(_held_as_marked_out(now)),
        )
        .order_by(col(OfferRow.sla_due_at), col(OfferRow.id))
        .limit(limit)
    )
    if skips_locked(session):
        statement = statement.with_for_update(skip_locked=True)
    return (session.execute(statement)).scalars().all()


def close_offers(
    *,
    session: Session,
    offer_ids: Sequence[int],
    to_status: str,
    now: datetime,
    from_status: str = OfferStatus.OFFERED.value,
) -> int:
    """Compare-and-set many offers from `from_status` to `to_status` at once; how many were
    still in `from_status`."""
    changed = 0
    for chunk in id_chunks(offer_ids):
        result = session.execute(
            update(OfferRow)
            .where(col(OfferRow.id).in_(chunk), col(OfferRow.status) == from_status)
            .values(status=to_status, closed_at=now, remind_at=None)
            .execution_options(synchronize_session=False)
        )
        changed += result.rowcount  # type: ignore[attr-defined]
    return changed


def due_reminders(*, session: Session, now: datetime, limit: int) -> Sequence[int]:
    """Ids of open offers whose reminder is due (locked as `overdue_offers` locks its rows);
    not those whose rep's absence is to move them on (nobody out is reminded)."""
    statement = (
        select(col(OfferRow.id))
        .where(
            col(OfferRow.status) == OfferStatus.OFFERED.value,
            col(OfferRow.remind_at) <= now,
            ~exists().where(_held_as_marked_out(now)),
        )
        .order_by(col(OfferRow.remind_at))
        .limit(limit)
    )
    if skips_locked(session):
        statement = statement.with_for_update(skip_locked=True)
    return [i for i in (session.execute(statement)).scalars().all() if i is not None]


def clear_reminders(*, session: Session, offer_ids: Sequence[int]) -> list[tuple[int, str]]:
    """Mark these offers' reminders as taken (compare-and-set); the (offer id, rep id) of each
    this call took."""
    taken: list[tuple[int, str]] = []
    for chunk in id_chunks(offer_ids):
        result = session.execute(
            update(OfferRow)
            .where(col(OfferRow.id).in_(chunk), col(OfferRow.remind_at).is_not(None))
            .values(remind_at=None)
            .returning(col(OfferRow.id), col(OfferRow.rep_id))
            .execution_options(synchronize_session=False)
        )
        taken.extend((offer_id, rep_id) for offer_id, rep_id in result.all() if offer_id)
    return taken


def change_offer_status(
    *,
    session: Session,
    offer_id: int,
    from_status: str,
    to_status: str,
    now: datetime,
    moved_because: str | None = None,
) -> bool:
    """Compare-and-set an offer's status; True for the one caller that made the change.
    `moved_because`: why a reassigned offer was taken from its rep (`MoveReason`)."""
    closing = to_status not in OPEN_OFFER_STATUSES
    values: dict[str, Any] = {"status": to_status}
    if closing:
        values["closed_at"] = now
    if moved_because is not None:
        values["moved_because"] = moved_because
    result = session.execute(
        update(OfferRow)
        .where(and_(col(OfferRow.id) == offer_id, col(OfferRow.status) == from_status))
        .values(**values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def record_card_posted(
    *,
    session: Session,
    offer_id: int,
    team_copy: bool,
    channel: str,
    ts: str,
    sla_due_at: datetime | None = None,
    remind_at: datetime | None = None,
    posted_at: datetime | None = None,
) -> bool:
    """Where an offer's card went (the rep's DM, or the copy in the team's channel), so it is
    updated in place and never posted twice; for the DM card, also when it was posted and the
    SLA deadline that runs from then. False if another card was recorded there already (this
    one is a second copy); True, changing nothing, if this very message was (found by another
    attempt's look-up)."""
    result = session.execute(
        _record_card(team_copy=team_copy, timed=posted_at is not None),
        {
            "b_id": offer_id,
            "b_channel": channel,
            "b_ts": ts,
            "b_posted_at": posted_at,
            "b_due": sla_due_at,
            "b_remind": remind_at,
        },
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return True
    recorded = OfferRow.team_message_ts if team_copy else OfferRow.message_ts
    stored = session.scalar(select(col(recorded)).where(col(OfferRow.id) == offer_id))
    return stored == ts


@cache
def _record_card(*, team_copy: bool, timed: bool) -> Update:
    """`record_card_posted`'s statement, built once for each of its shapes."""
    if team_copy:
        values: dict[str, Any] = {"team_channel": "b_channel", "team_message_ts": "b_ts"}
        unset = OFFERS.c.team_message_ts.is_(None)
    else:
        values = {"channel": "b_channel", "message_ts": "b_ts"}
        unset = OFFERS.c.message_ts.is_(None)
        if timed:
            values |= {"card_posted_at": "b_posted_at", "sla_due_at": "b_due"}
            values |= {"remind_at": "b_remind"}
    return (
        update(OFFERS)
        .where(OFFERS.c.id == bindparam("b_id"), unset)
        .values({column: bindparam(name) for column, name in values.items()})
    )


def insert_offers(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Insert offers in bulk, at most one per lead; their ids by lead id."""
    if not rows:
        return {}
    leads = [row["lead_id"] for row in rows]
    if len(set(leads)) != len(leads):
        raise ValueError("insert_offers takes at most one offer per lead")
    result = session.execute(_INSERT_OFFERS, rows)
    return {lead_id: offer_id for offer_id, lead_id in result}


async def count_open_offers(*, session: AsyncSession) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(OfferRow)
        .where(col(OfferRow.status).in_(OPEN_OFFER_STATUSES))
    )
    return int(result.scalar_one())


def offers_with_cards_given_up(
    *, session: Session, card_key_prefix: str, given_up_before: datetime, limit: int
) -> list[tuple[int, str]]:
    """Offers still offered, with no SLA started (no card of theirs was posted), whose card's
    outbox item (key `card_key_prefix` + the offer's id) was given up before `given_up_before`:
    (offer id, why it was given up), oldest give-up first."""
    statement = (
        select(col(OfferRow.id), col(OutboxRow.last_error))
        .join(
            OutboxRow,
            col(OutboxRow.dedupe_key)
            == literal(card_key_prefix, String) + cast(col(OfferRow.id), String),
        )
        .where(
            col(OfferRow.status) == OfferStatus.OFFERED.value,
            col(OfferRow.sla_due_at).is_(None),
            col(OutboxRow.failed_at) <= given_up_before,
        )
        .order_by(col(OutboxRow.failed_at))
        .limit(limit)
    )
    rows = session.execute(statement).all()
    return [(offer_id, error or "") for offer_id, error in rows if offer_id is not None]


def _held_as_marked_out(now: datetime) -> ColumnElement[bool]:
    """The offer's rep is out of office at `now`, and the offer was theirs as they were marked
    out: one their absence is to move on. (A lead a manager offers them while they are out, by
    hand, is offered after that, and stays.)"""
    return and_(
        col(RepStateRow.rep_id) == col(OfferRow.rep_id),
        col(RepStateRow.away),
        col(OfferRow.offered_at) <= col(RepStateRow.away_at),
        or_(col(RepStateRow.away_until).is_(None), col(RepStateRow.away_until) > now),
    )


def offers_of_absent_reps(
    *, session: Session, marked_before: datetime, now: datetime, limit: int
) -> list[int]:
    """Offers still offered to a rep out of office at `now`, who held them as they were marked
    out, before `marked_before`: the ids of those whose move on was lost, oldest first.

    Led by the few reps away (`rep_state`), each one's open offers found by
    `ix_offers_rep_status`, never a scan of every offer ever made. The reps are an `IN` list,
    not a join: as a join, SQLite (with no statistics to go by) put the offers first, and read
    every open offer on each sweep (5 ms at 10,000 open offers, with nobody away)."""
    away = select(col(RepStateRow.rep_id)).where(
        col(RepStateRow.away), col(RepStateRow.away_at) <= marked_before
    )
    statement = (
        select(col(OfferRow.id))
        .where(
            col(OfferRow.status) == OfferStatus.OFFERED.value,
            col(OfferRow.rep_id).in_(away),
            exists().where(_held_as_marked_out(now)),
        )
        .order_by(col(OfferRow.id))
        .limit(limit)
    )
    rows = session.execute(statement).scalars().all()
    return [offer_id for offer_id in rows if offer_id is not None]
