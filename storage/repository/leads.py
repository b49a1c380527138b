"""Leads: found by external id or id, stored in bulk, their status, the queue, CRM records seen."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col

from storage.models import LeadRow, LeadStatus
from storage.repository.common import LEADS, chunks, id_chunks, membership

# Intake asks first which ids are stored at all (nearly always none), as plain rows: loading
# mapped objects costs the ORM more than the query, even for no rows.
_STORED_EXTERNAL_IDS = membership(
    lambda member: select(LEADS.c.external_id).where(member(LEADS.c.external_id, "external_ids"))
)


_LEADS_BY_EXTERNAL_ID = membership(
    lambda member: select(LeadRow).where(member(LEADS.c.external_id, "external_ids"))
)


_INSERT_LEADS = insert(LEADS).returning(LEADS.c.id, LEADS.c.external_id)


def find_leads(*, session: Session, external_ids: Iterable[str]) -> dict[str, LeadRow]:
    found: dict[str, LeadRow] = {}
    for chunk in chunks(set(external_ids)):
        stored = (
            session.execute(_STORED_EXTERNAL_IDS.on(session), {"external_ids": chunk})
            .scalars()
            .all()
        )
        if not stored:
            continue
        rows = session.execute(_LEADS_BY_EXTERNAL_ID.on(session), {"external_ids": list(stored)})
        found.update((row.external_id, row) for row in rows.scalars())
    return found


def find_lead(*, session: Session, external_id: str, lock: bool = False) -> LeadRow | None:
    """The lead; with `lock`, its row locked until the transaction ends (PostgreSQL; SQLite's
    writers are one at a time anyway), and read as committed once the lock is had."""
    query = select(LeadRow).where(col(LeadRow.external_id) == external_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    result = session.execute(query)
    return result.scalars().first()


def read_again(*, session: Session, row: SQLModel) -> None:
    """`row` as committed now: another transaction changed it since this one read it."""
    session.refresh(row)


def lead_by_id(*, session: Session, lead_id: int) -> LeadRow | None:
    return session.get(LeadRow, lead_id)


def leads_by_id(*, session: Session, ids: Iterable[int]) -> dict[int, LeadRow]:
    found: dict[int, LeadRow] = {}
    for chunk in id_chunks(ids):
        rows = session.execute(select(LeadRow).where(col(LeadRow.id).in_(chunk)))
        found.update((row.id or 0, row) for row in rows.scalars())
    return found


async def queued_leads(*, session: AsyncSession, limit: int) -> tuple[int, Sequence[LeadRow]]:
    """How many leads wait in a queue, and the `limit` that have waited longest."""
    queued = col(LeadRow.status) == LeadStatus.QUEUED.value
    size = (
        await session.execute(select(func.count()).select_from(LeadRow).where(queued))
    ).scalar_one()
    if not size:
        return 0, ()
    oldest = await session.execute(
        select(LeadRow)
        .where(queued)
        .order_by(col(LeadRow.created_at), col(LeadRow.id))
        .limit(limit)
    )
    return int(size), oldest.scalars().all()


def set_lead_status(*, session: Session, lead: LeadRow, status: str, now: datetime) -> None:
    lead.status, lead.updated_at = status, now
    session.flush()


def insert_leads(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert leads in bulk; their database ids by external id.

    Matched up by external id rather than by position: asking for RETURNING in parameter order
    makes SQLAlchemy send SQLite one INSERT per row."""
    if not rows:
        return {}
    result = session.execute(_INSERT_LEADS, rows)
    return {external_id: lead_id for lead_id, external_id in result}


async def unmatched_queue(*, session: AsyncSession) -> tuple[int, datetime | None]:
    """How many leads wait in a queue, and when the one waiting longest arrived."""
    result = await session.execute(
        select(func.count(), func.min(col(LeadRow.created_at))).where(
            col(LeadRow.status) == LeadStatus.QUEUED.value
        )
    )
    size, oldest = result.one()
    return int(size), oldest


async def stored_crm_ids(
    *, session: AsyncSession, crm_system: str, crm_ids: Iterable[str]
) -> set[str]:
    """Which of these CRM record ids already arrived as leads (by any route)."""
    stored: set[str] = set()
    for chunk in chunks(crm_ids):
        rows = await session.execute(
            select(col(LeadRow.crm_id)).where(
                col(LeadRow.crm_system) == crm_system, col(LeadRow.crm_id).in_(chunk)
            )
        )
        stored.update(crm_id for (crm_id,) in rows.all() if crm_id is not None)
    return stored


def lead_ids(*, session: Session, external_ids: Iterable[str]) -> dict[str, int]:
    """The database id of each of these leads that is stored, by external id."""
    found: dict[str, int] = {}
    for chunk in chunks(set(external_ids)):
        rows = session.execute(
            select(LEADS.c.external_id, LEADS.c.id).where(LEADS.c.external_id.in_(chunk))
        )
        found.update((external_id, lead_id) for external_id, lead_id in rows.all())
    return found


def lead_ids_of_crm_records(
    *, session: Session, crm_system: str, crm_ids: Iterable[str]
) -> dict[str, list[int]]:
    """The leads that arrived as each of these CRM records (nearly always one), by record id."""
    found: dict[str, list[int]] = {}
    for chunk in chunks(set(crm_ids)):
        rows = session.execute(
            select(LEADS.c.crm_id, LEADS.c.id)
            .where(LEADS.c.crm_system == crm_system, LEADS.c.crm_id.in_(chunk))
            .order_by(LEADS.c.id)
        )
        for crm_id, lead_id in rows.all():
            found.setdefault(crm_id, []).append(lead_id)
    return found
