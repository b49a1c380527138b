"""A lead's outcome events (`lead_events`): stored once each, its first touch, its whole story;
and the events that arrived before their lead, waiting for it.

A report repeated (same lead, kind, source and source key) is dropped by the insert itself
(`ON CONFLICT DO NOTHING` on the table's unique constraint), on SQLite and PostgreSQL alike,
so two replicas storing one report at once store it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Insert, and_, delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from routing.report import EventKind, OutcomeEvent
from storage.models import AuditEventRow, LeadEventRow
from storage.repository.common import LEADS, id_chunks, table_of

LEAD_EVENTS = table_of(LeadEventRow)
_AUDITS = table_of(AuditEventRow)
# An audit row of no lead (yet) holding an outcome event reported before its lead arrived: its
# `data` names the lead (`{"lead": external id}` or `{"crm": system, "record": record id}`) and
# holds the event; `at` is when it arrived. (An audit row rather than a table of its own: it is
# a record of what arrived, needs no schema change, and retention prunes it with the rest.)
WAITING_EVENT = "event_waiting"
# An audit row of a lead whose reported amount was in another currency than ours and was left
# out (the event is stored without it): `data` holds the event's kind, `currency` (theirs),
# `ours`, and the report's `source` and `source_key`. The lead's story counts it.
AMOUNT_LEFT_OUT = "amount_left_out"
_NATURAL_KEY = ("lead_id", "kind", "source", "source_key")


def lead_event_values(
    *,
    lead_id: int,
    event: OutcomeEvent,
    source: str,
    source_key: str,
    via: str | None,
    now: datetime,
) -> dict[str, Any]:
    """One row of `lead_events`, for `insert_lead_events`."""
    return {
        "lead_id": lead_id,
        "kind": event.kind.value,
        "at": event.at,
        "amount": event.amount,
        "close_date": event.close_date,
        "source": source,
        "source_key": source_key,
        "via": via,
        "recorded_at": now,
    }


@cache
def _insert_once(dialect: str) -> Insert:
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return (
        insert(LEAD_EVENTS)
        .on_conflict_do_nothing(index_elements=[LEAD_EVENTS.c[name] for name in _NATURAL_KEY])
        .returning(*(LEAD_EVENTS.c[name] for name in _NATURAL_KEY))
    )


def insert_lead_events(
    *, session: Session, rows: Sequence[Mapping[str, Any]]
) -> set[tuple[int, str, str, str]]:
    """Store the rows not stored already; the natural keys (lead id, kind, source, source key)
    of those that were new (the rest were repeats)."""
    if not rows:
        return set()
    statement = _insert_once(session.get_bind().dialect.name)
    stored = session.execute(statement, list(rows))
    return {(lead_id, kind, source, key) for lead_id, kind, source, key in stored}


def first_touch_at(*, session: Session, lead_id: int) -> datetime | None:
    """When the lead was first touched (the earliest touch reported), if it has been."""
    return first_touches(session=session, lead_ids=[lead_id]).get(lead_id)


def first_touches(*, session: Session, lead_ids: Iterable[int]) -> dict[int, datetime]:
    """The first touch of each of these leads that has one."""
    found: dict[int, datetime] = {}
    for chunk in id_chunks(lead_ids):
        rows = session.execute(
            select(col(LeadEventRow.lead_id), func.min(col(LeadEventRow.at)))
            .where(
                col(LeadEventRow.lead_id).in_(chunk),
                col(LeadEventRow.kind) == EventKind.FIRST_TOUCH.value,
            )
            .group_by(col(LeadEventRow.lead_id))
        )
        # min() keeps the column's type: aware UTC, as every time read back.
        found.update((lead_id, at) for lead_id, at in rows.all() if at is not None)
    return found


async def lead_events(*, session: AsyncSession, lead_id: int) -> list[LeadEventRow]:
    """The lead's outcome events, in the order they happened."""
    rows = await session.execute(
        select(LeadEventRow)
        .where(col(LeadEventRow.lead_id) == lead_id)
        .order_by(col(LeadEventRow.at), col(LeadEventRow.id))
    )
    return list(rows.scalars().all())


def outcome_event(row: LeadEventRow) -> OutcomeEvent:
    """A stored row as the report's `OutcomeEvent`."""
    amount = Decimal(row.amount) if row.amount is not None else None
    close_date = row.close_date if isinstance(row.close_date, date) else None
    return OutcomeEvent(EventKind(row.kind), row.at, amount, close_date)


def note_amounts_left_out(
    *, session: Session, notes: Sequence[tuple[int, Mapping[str, Any]]], now: datetime
) -> list[tuple[str, Mapping[str, Any]]]:
    """An `AMOUNT_LEFT_OUT` audit row for each (lead id, data) not noted before (the same lead,
    event kind, source and source key: a report read again is noted once); the new ones, each
    by its lead's external id."""
    noted = session.execute(
        select(_AUDITS.c.lead_id, _AUDITS.c.data).where(
            _AUDITS.c.kind == AMOUNT_LEFT_OUT,
            _AUDITS.c.lead_id.in_({lead_id for lead_id, _ in notes}),
        )
    )
    seen = {(lead_id, *_report_of(data)) for lead_id, data in noted.all()}
    new: list[tuple[int, Mapping[str, Any]]] = []
    for lead_id, data in notes:
        key = (lead_id, *_report_of(data))
        if key not in seen:
            seen.add(key)
            new.append((lead_id, data))
    if not new:
        return []
    session.execute(
        _AUDITS.insert(),
        [
            {
                "lead_id": lead_id,
                "at": now,
                "kind": AMOUNT_LEFT_OUT,
                "reason": (
                    f"the {data['event']} amount was in {data['currency']}, and amounts "
                    f"here are in {data['ours']}"
                ),
                "data": dict(data),
            }
            for lead_id, data in new
        ],
    )
    rows = session.execute(
        select(LEADS.c.id, LEADS.c.external_id).where(
            LEADS.c.id.in_({lead_id for lead_id, _ in new})
        )
    )
    external = {lead_id: external_id for lead_id, external_id in rows.all()}
    return [(external[lead_id], data) for lead_id, data in new]


def _report_of(data: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return (data.get("event"), data.get("source"), data.get("source_key"))


# --- events waiting for their lead ----------------------------------------------------------------


def hold_events(*, session: Session, held: Sequence[Mapping[str, Any]], now: datetime) -> None:
    """Keep these events (each `data` as `WAITING_EVENT` describes) until their lead arrives."""
    if held:
        session.execute(
            _AUDITS.insert(),
            [
                {"lead_id": None, "at": now, "kind": WAITING_EVENT, "data": dict(data)}
                for data in held
            ],
        )


def waiting_events_of_arrived_leads(
    *, session: Session, limit: int
) -> list[tuple[int, int, dict[str, Any]]]:
    """Waiting events whose lead has arrived since: (the waiting row's id, the lead's id, its
    data), oldest first; at most `limit` waiting rows named by external id and `limit` by CRM
    record, each with all its leads (a CRM record may have come in as more than one). Only these
    are read: the database matches the names, so the events still waiting cost nothing here
    however many they are."""
    data = _AUDITS.c.data
    by_external_id = LEADS.c.external_id == data["lead"].as_string()
    by_crm_record = and_(
        LEADS.c.crm_system == data["crm"].as_string(),
        LEADS.c.crm_id == data["record"].as_string(),
    )
    found: list[tuple[int, int, dict[str, Any]]] = []
    for matching in (by_external_id, by_crm_record):
        oldest = (
            select(_AUDITS.c.id)
            .where(*_waiting(), exists().where(matching))
            .order_by(_AUDITS.c.id)
            .limit(limit)
        )
        rows = session.execute(
            select(_AUDITS.c.id, LEADS.c.id, data)
            .join(LEADS, matching)
            .where(_AUDITS.c.id.in_(oldest.scalar_subquery()))
        )
        found.extend((waiting_id, lead_id, dict(held)) for waiting_id, lead_id, held in rows.all())
    return sorted(found, key=lambda row: (row[0], row[1]))


def drop_waiting_events(
    *, session: Session, ids: Iterable[int] = (), arrived_before: datetime | None = None
) -> int:
    """Delete these waiting events, or every one that arrived before `arrived_before`: how many."""
    dropped = 0
    for chunk in id_chunks(ids):
        result = session.execute(delete(_AUDITS).where(*_waiting(), _AUDITS.c.id.in_(chunk)))
        dropped += result.rowcount or 0  # type: ignore[attr-defined]
    if arrived_before is not None:
        result = session.execute(delete(_AUDITS).where(*_waiting(), _AUDITS.c.at < arrived_before))
        dropped += result.rowcount or 0  # type: ignore[attr-defined]
    return dropped


def _waiting() -> tuple[ColumnElement[bool], ...]:
    return (_AUDITS.c.lead_id.is_(None), _AUDITS.c.kind == WAITING_EVENT)
