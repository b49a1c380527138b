# Over 400 lines on purpose: every statement on the outbox table (queue, claim, lease, end, lanes,
# the give-up's escalation mark) in one module, as each other table has its own.
"""The outbox: items queued once by key, claimed under a lease, renewed, ended by their holder; and
the lanes that pace them or keep them in order (see `bot.outbox`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, Update, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from storage.models import OutboxRow, SlackLaneRow
from storage.repository.common import (
    OUTBOX,
    AlreadyQueued,
    chunks,
    insert_rows,
    skips_locked,
    table_of,
)

_INSERT_OUTBOX = insert(OUTBOX).returning(OUTBOX.c.id, OUTBOX.c.dedupe_key)


async def outbox_items_since(
    *, session: AsyncSession, kind: str, done_since: datetime
) -> Sequence[OutboxRow]:
    """Items of `kind` still to carry out, and those done since `done_since`, oldest first."""
    result = await session.execute(
        select(OutboxRow)
        .where(
            col(OutboxRow.kind) == kind,
            or_(
                and_(col(OutboxRow.done_at).is_(None), col(OutboxRow.failed_at).is_(None)),
                col(OutboxRow.done_at) >= done_since,
            ),
        )
        .order_by(col(OutboxRow.id))
    )
    return result.scalars().all()


def insert_outbox(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert outbox items in bulk; their ids by dedupe key (unique, so a fair match)."""
    if not rows:
        return {}
    result = session.execute(_INSERT_OUTBOX, rows)
    return {dedupe_key: item_id for item_id, dedupe_key in result}


def outbox_values(
    *,
    kind: str,
    dedupe_key: str,
    payload: Mapping[str, Any],
    now: datetime,
    lane: str | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "lane": lane,
        "payload": dict(payload),
        "attempts": 0,
        "lease_token": None,
        "next_attempt_at": now,
        "created_at": now,
    }


async def outbox_depth(*, session: AsyncSession) -> int:
    """Outbox items still to carry out (not done, not given up on)."""
    result = await session.execute(
        select(func.count())
        .select_from(OutboxRow)
        .where(col(OutboxRow.done_at).is_(None), col(OutboxRow.failed_at).is_(None))
    )
    return int(result.scalar_one())


@dataclass(frozen=True, slots=True)
class Unfinished:
    """Items of one kind not carried out: given up, and failed at least once and waiting to
    be tried again; with the newest error of each."""

    kind: str
    given_up: int = 0
    retrying: int = 0
    given_up_error: str | None = None
    retrying_error: str | None = None


async def unfinished_outbox(*, session: AsyncSession, kinds: Sequence[str]) -> list[Unfinished]:
    """For each of `kinds` with any, the items given up and those waiting after a failure."""
    given_up = and_(col(OutboxRow.failed_at).is_not(None), col(OutboxRow.done_at).is_(None))
    retrying = and_(
        col(OutboxRow.failed_at).is_(None),
        col(OutboxRow.done_at).is_(None),
        col(OutboxRow.last_error).is_not(None),
    )
    counted = await session.execute(
        select(
            col(OutboxRow.kind),
            func.sum(case((given_up, 1), else_=0)),
            func.sum(case((retrying, 1), else_=0)),
        )
        .where(col(OutboxRow.kind).in_(kinds), or_(given_up, retrying))
        .group_by(col(OutboxRow.kind))
    )
    found: list[Unfinished] = []
    for kind, gave_up, waiting in counted.all():
        newest: dict[str, str | None] = {}
        for name, which in (("given_up", given_up), ("retrying", retrying)):
            error = await session.execute(
                select(col(OutboxRow.last_error))
                .where(col(OutboxRow.kind) == kind, which)
                .order_by(col(OutboxRow.id).desc())
                .limit(1)
            )
            newest[name] = error.scalar_one_or_none()
        found.append(
            Unfinished(kind, int(gave_up), int(waiting), newest["given_up"], newest["retrying"])
        )
    return found


@dataclass(frozen=True, slots=True)
class Claimed:
    """An item taken for one attempt. `unsure`: an earlier attempt ended (or its process died)
    without knowing whether its call took effect, so this one must look before acting."""

    item: OutboxRow
    unsure: bool


UNSURE = "unsure"  # the lease token an attempt leaves when it cannot tell what its call did


def _lane_free(now: datetime) -> Any:
    lanes = table_of(SlackLaneRow)
    held = select(lanes.c.lane).where(lanes.c.lane == OUTBOX.c.lane, lanes.c.not_before > now)
    return or_(OUTBOX.c.lane.is_(None), ~held.exists())


_EARLIER = OUTBOX.alias("earlier")
# An earlier item of the same lane still to carry out: queued, waiting to be retried, or under
# way (leased). One probe of `ix_outbox_lane_pending` per candidate; none for an item of no lane.
_NONE_AHEAD = ~(
    select(_EARLIER.c.id)
    .where(
        _EARLIER.c.lane == OUTBOX.c.lane,
        _EARLIER.c.id < OUTBOX.c.id,
        _EARLIER.c.done_at.is_(None),
        _EARLIER.c.failed_at.is_(None),
    )
    .exists()
)


def claim_outbox(
    *,
    session: Session,
    kinds: Sequence[str],
    now: datetime,
    until: datetime,
    token: str,
    limit: int,
    in_order: bool = False,
) -> list[Claimed]:
    """Take up to `limit` items of these kinds that are due, oldest first, each for one
    attempt named `token` and leased until `until`. Items whose lane is held (Slack's pace or
    Retry-After) are left. `in_order`: an item of a lane is taken only once every item queued
    before it in its lane has ended (done or given up), so one lane's items never overlap,
    whichever replica takes them; an attempt whose replica died holds its lane until its
    lease runs out. On PostgreSQL, rows another replica is taking are passed over rather than
    waited for."""
    conditions = [
        col(OutboxRow.kind).in_(kinds),
        col(OutboxRow.done_at).is_(None),
        col(OutboxRow.failed_at).is_(None),
        col(OutboxRow.next_attempt_at) <= now,
        _lane_free(now),
    ]
    if in_order:
        conditions.append(_NONE_AHEAD)
    query = (
        select(OutboxRow)
        .where(*conditions)
        .order_by(col(OutboxRow.id))
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if skips_locked(session):
        query = query.with_for_update(skip_locked=True)
    found = list(session.execute(query).scalars().all())
    if not found:
        return []
    ids = [row.id for row in found]
    session.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id).in_(ids))
        .values(next_attempt_at=until, lease_token=token, attempts=OutboxRow.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    claimed = []
    for row in found:
        session.expunge(row)
        unsure = row.lease_token is not None
        row.next_attempt_at, row.lease_token, row.attempts = until, token, row.attempts + 1
        claimed.append(Claimed(row, unsure))
    return claimed


def renew_outbox(*, session: Session, held: Mapping[int, str], until: datetime) -> set[int]:
    """Extend the leases of attempts still running (item id -> its token) to `until`. Returns
    the ids still held: an item missing was taken by another worker (its lease had run out)."""
    if not held:
        return set()
    renewed = session.execute(
        update(OutboxRow)
        .where(
            col(OutboxRow.id).in_(list(held)),
            col(OutboxRow.lease_token).in_(set(held.values())),
            col(OutboxRow.done_at).is_(None),
            col(OutboxRow.failed_at).is_(None),
        )
        .values(next_attempt_at=until)
        .returning(col(OutboxRow.id), col(OutboxRow.lease_token))
        .execution_options(synchronize_session=False)
    )
    return {item_id for item_id, token in renewed.all() if item_id and held.get(item_id) == token}


def finish_outbox(
    *,
    session: Session,
    item_id: int,
    token: str | None,
    now: datetime,
    error: str | None = None,
    retry_at: datetime | None = None,
    unsure: bool = False,
) -> bool:
    """End an attempt: done (no error), to be tried again at `retry_at`, or given up (an error,
    no retry). Only the attempt holding the item may end it (compare-and-set on `token`); False
    if another had taken it meanwhile. `unsure`: the attempt cannot tell whether its call took
    effect, so the next one is told to look first."""
    ending = "done" if error is None else "retry" if retry_at is not None else "failed"
    result = session.execute(
        _finish_outbox(ending=ending, held=token is not None),
        {
            "b_id": item_id,
            "b_token": token,
            "b_left": UNSURE if unsure else None,
            "b_now": now,
            "b_retry_at": retry_at,
            "b_error": error,
        },
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


@cache
def _finish_outbox(*, ending: str, held: bool) -> Update:
    """`finish_outbox`'s statement, built once for each of its shapes: how the attempt ends
    (done, retry, failed) and whether it held a lease token."""
    values: dict[str, Any] = {"lease_token": bindparam("b_left")}
    if ending == "done":
        values |= {"done_at": bindparam("b_now"), "last_error": None}
    elif ending == "retry":
        values |= {"next_attempt_at": bindparam("b_retry_at"), "last_error": bindparam("b_error")}
    else:
        values |= {"failed_at": bindparam("b_now"), "last_error": bindparam("b_error")}
    token = OUTBOX.c.lease_token
    return (
        update(OUTBOX)
        .where(
            OUTBOX.c.id == bindparam("b_id"),
            token == bindparam("b_token") if held else token.is_(None),
            OUTBOX.c.done_at.is_(None),
            OUTBOX.c.failed_at.is_(None),
        )
        .values(values)
    )


def requeue_given_up(*, session: Session, kinds: Sequence[str], now: datetime) -> int:
    """Items of these kinds that were given up, due again at `now` with their attempts from
    zero (what made them fail has been fixed). Their last error stays until an attempt ends.
    Returns how many."""
    result = session.execute(
        update(OutboxRow)
        .where(
            col(OutboxRow.kind).in_(kinds),
            col(OutboxRow.failed_at).is_not(None),
            col(OutboxRow.done_at).is_(None),
        )
        .values(failed_at=None, attempts=0, next_attempt_at=now, lease_token=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def pace_lane(*, session: Session, lane: str, not_before: datetime) -> None:
    """Nothing goes to `lane` before `not_before` (a later time already set stands)."""
    statement = _pace_lane(session.get_bind().dialect.name)
    session.execute(statement, {"b_lane": lane, "b_not_before": not_before})


@cache
def _pace_lane(dialect: str) -> Insert:
    """`pace_lane`'s upsert for `dialect`, built once."""
    lanes = table_of(SlackLaneRow)
    upsert = (sqlite_insert if dialect == "sqlite" else pg_insert)(lanes).values(
        lane=bindparam("b_lane"), not_before=bindparam("b_not_before")
    )
    later = case(
        (upsert.excluded.not_before > lanes.c.not_before, upsert.excluded.not_before),
        else_=lanes.c.not_before,
    )
    return upsert.on_conflict_do_update(index_elements=[lanes.c.lane], set_={"not_before": later})


def lane_free_at(*, session: Session, lane: str) -> datetime | None:
    """When `lane` may be posted to next, as every replica has agreed so far (None: any time)."""
    row = session.get(SlackLaneRow, lane, populate_existing=True)
    return row.not_before if row is not None else None


async def outbox_pending(*, session: AsyncSession, dedupe_key: str) -> bool:
    """Whether the item queued under `dedupe_key` is still to be done (not done, not given up)."""
    result = await session.execute(
        select(func.count())
        .select_from(OutboxRow)
        .where(
            col(OutboxRow.dedupe_key) == dedupe_key,
            col(OutboxRow.done_at).is_(None),
            col(OutboxRow.failed_at).is_(None),
        )
    )
    return bool(result.scalar_one())


def outbox_keys_queued(*, session: Session, keys: Sequence[str]) -> set[str]:
    """Which of these dedupe keys an item was queued under (done, given up or not)."""
    queued: set[str] = set()
    for chunk in chunks(list(keys)):
        found = session.execute(
            select(col(OutboxRow.dedupe_key)).where(col(OutboxRow.dedupe_key).in_(chunk))
        )
        queued.update(key for (key,) in found.all())
    return queued


def queue_outbox_once(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Queue items whose dedupe key is not queued yet (a webhook sent twice queues once).
    Returns how many were new; `AlreadyQueued` when another transaction queued one of them
    after this one looked."""
    if not rows:
        return 0
    queued = outbox_keys_queued(session=session, keys=[row["dedupe_key"] for row in rows])
    fresh = {row["dedupe_key"]: row for row in rows if row["dedupe_key"] not in queued}
    try:
        insert_rows(session=session, table=OutboxRow, rows=list(fresh.values()))
    except IntegrityError as exc:
        raise AlreadyQueued(str(exc.orig)) from exc
    return len(fresh)


def given_up_not_escalated(
    *, session: Session, kinds: Sequence[str], given_up_before: datetime, limit: int
) -> Sequence[OutboxRow]:
    """Items of these kinds given up before `given_up_before` whose escalation is not done
    (`mark_escalated`), oldest give-up first; through `ix_outbox_to_escalate`."""
    result = session.execute(
        select(OutboxRow)
        .where(
            col(OutboxRow.kind).in_(kinds),
            col(OutboxRow.failed_at).is_not(None),
            col(OutboxRow.escalated_at).is_(None),
            col(OutboxRow.failed_at) <= given_up_before,
        )
        .order_by(col(OutboxRow.failed_at), col(OutboxRow.id))
        .limit(limit)
    )
    return result.scalars().all()


def mark_escalated(*, session: Session, dedupe_key: str, now: datetime) -> bool:
    """Mark the given-up item queued under `dedupe_key` escalated, if nothing had: True for
    the one transaction that does (compare-and-set), which then escalates it; False when it
    was done already (or the item is not given up)."""
    result = session.execute(
        update(OutboxRow)
        .where(
            col(OutboxRow.dedupe_key) == dedupe_key,
            col(OutboxRow.failed_at).is_not(None),
            col(OutboxRow.escalated_at).is_(None),
        )
        .values(escalated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
