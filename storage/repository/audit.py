"""The audit trail: events written, and the ones a digest counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from storage.models import AuditEventRow, LeadRow


def add_audit(
    *,
    session: Session | AsyncSession,
    lead_id: int | None,
    at: datetime,
    kind: str,
    actor: str | None = None,
    rule: str | None = None,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        AuditEventRow(
            lead_id=lead_id,
            at=at,
            kind=kind,
            actor=actor,
            rule=rule,
            reason=reason,
            data=dict(data or {}),
        )
    )


def add_audit_event(
    *,
    session: Session,
    lead_id: int | None,
    at: datetime,
    kind: str,
    actor: str | None = None,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> int:
    """`add_audit`, written at once: the new event's id (what names the change it records)."""
    row = AuditEventRow(
        lead_id=lead_id, at=at, kind=kind, actor=actor, reason=reason, data=dict(data or {})
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


# Bulk inserts go through Core against the table, not the ORM: the rows are plain dicts with
# every column given, nobody needs ORM objects back, and the ORM's bulk path costs more Python
# per statement than the statement costs SQLite. (It would also leave out each row's None
# values, splitting the rows into one statement per distinct set of them.)


async def audits_by_rep(
    *, session: AsyncSession, kind: str, start: datetime, end: datetime
) -> dict[str, int]:
    """Audit events of `kind` in [start, end), counted by the rep their data names."""
    rep = col(AuditEventRow.data)["rep"].as_string()
    rows = await session.execute(
        select(rep, func.count())
        .where(
            col(AuditEventRow.kind) == kind,
            col(AuditEventRow.at) >= start,
            col(AuditEventRow.at) < end,
        )
        .group_by(rep)
    )
    return {rep_id: int(count) for rep_id, count in rows.all() if rep_id is not None}


async def lead_audits(
    *, session: AsyncSession, kind: str, start: datetime, end: datetime
) -> Sequence[tuple[AuditEventRow, str]]:
    """Audit events of `kind` in [start, end) about a lead, each with the lead's external id,
    newest first."""
    rows = await session.execute(
        select(AuditEventRow, col(LeadRow.external_id))
        .join(LeadRow, col(LeadRow.id) == col(AuditEventRow.lead_id))
        .where(
            col(AuditEventRow.kind) == kind,
            col(AuditEventRow.at) >= start,
            col(AuditEventRow.at) < end,
        )
        .order_by(col(AuditEventRow.id).desc())
    )
    return [(audit, external_id) for audit, external_id in rows.all()]
