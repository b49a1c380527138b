"""Policies, leads and read-only queries shared by the service tests."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from routing.leads import parse_lead
from routing.model import Lead
from storage.db import Database
from storage.models import (
    OPEN_OFFER_STATUSES,
    AuditEventRow,
    LeadRow,
    OfferRow,
    RepStateRow,
    TeamStateRow,
)

# Three reps who are always working, one round-robin team, every lead to the team.
TRIO_POLICY = """\
reps:
  - {id: ann, name: Ann Archer}
  - {id: ben, name: Ben Baker}
  - {id: cat, name: Cat Cole}
  - {id: dot, name: Dot Drake}      # in no team: a rep who never holds these leads
managers:
  - {id: mia, name: Mia Moss}
teams:
  trio: {members: [ann, ben, cat], distribution: round_robin, manager: mia}
rules:
  - name: Everyone
    assign: {team: trio}
"""
TRIO = ("ann", "ben", "cat")


def team_policy(
    members: int, *, capacity: int | None = None, distribution: str = "round_robin"
) -> str:
    """A policy of one team of `members` reps with no hours, and one rule sending it every lead."""
    limit = f", capacity: {capacity}" if capacity is not None else ""
    reps = "\n".join(f"  - {{id: rep{n}{limit}}}" for n in range(members))
    names = ", ".join(f"rep{n}" for n in range(members))
    return (
        f"reps:\n{reps}\n"
        f"teams:\n  pool: {{members: [{names}], distribution: {distribution}}}\n"
        "rules:\n  - name: Everyone\n    assign: {team: pool}\n"
    )


def write_policy(directory: Path, text: str, *, name: str = "routing.yml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def new_lead(external_id: str, **fields: Any) -> Lead:
    return parse_lead(
        {"id": external_id, "email": f"buyer@{external_id.lower()}.example", **fields}
    )


async def count_rows(db: Database, table: Any) -> int:
    async with db.reading() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def offers_of(db: Database, external_id: str) -> list[OfferRow]:
    """The lead's offers, oldest first."""
    async with db.reading() as session:
        result = await session.execute(
            select(OfferRow)
            .join(LeadRow, col(LeadRow.id) == col(OfferRow.lead_id))
            .where(col(LeadRow.external_id) == external_id)
            .order_by(col(OfferRow.id))
        )
        return list(result.scalars().all())


async def audit_of(db: Database, external_id: str) -> list[AuditEventRow]:
    async with db.reading() as session:
        result = await session.execute(
            select(AuditEventRow)
            .join(LeadRow, col(LeadRow.id) == col(AuditEventRow.lead_id))
            .where(col(LeadRow.external_id) == external_id)
            .order_by(col(AuditEventRow.id))
        )
        return list(result.scalars().all())


async def stored_open_counts(db: Database) -> dict[str, int]:
    """Each rep's open-lead counter as stored in rep_state (reps at zero left out)."""
    async with db.reading() as session:
        rows = (await session.execute(select(RepStateRow))).scalars().all()
    return {row.rep_id: row.open_count for row in rows if row.open_count}


async def open_offers_by_rep(db: Database) -> dict[str, int]:
    """Each rep's offers that are offered or claimed, counted from the offers themselves."""
    async with db.reading() as session:
        rows = await session.execute(
            select(col(OfferRow.rep_id), func.count())
            .where(col(OfferRow.status).in_(OPEN_OFFER_STATUSES))
            .group_by(col(OfferRow.rep_id))
        )
        return {key: value for key, value in rows.all()}


async def leads_with_several_open_offers(db: Database) -> dict[int, int]:
    async with db.reading() as session:
        rows = await session.execute(
            select(col(OfferRow.lead_id), func.count())
            .where(col(OfferRow.status).in_(OPEN_OFFER_STATUSES))
            .group_by(col(OfferRow.lead_id))
            .having(func.count() > 1)
        )
        return {key: value for key, value in rows.all()}


async def lead_statuses(db: Database) -> Counter[str]:
    async with db.reading() as session:
        rows = await session.execute(
            select(col(LeadRow.status), func.count()).group_by(col(LeadRow.status))
        )
        return Counter({key: value for key, value in rows.all()})


async def team_version(db: Database, team: str) -> int | None:
    async with db.reading() as session:
        row = await session.get(TeamStateRow, team)
        return row.version if row is not None else None


async def leads_out_of_step_with_their_offers(db: Database) -> dict[str, tuple[str, str | None]]:
    """Leads whose status and rep disagree with their latest offer: {external id: (status, rep)}.

    An offered or claimed lead's latest offer is offered or claimed to the same rep; any other
    lead has no open offer.
    """
    async with db.reading() as session:
        leads = (await session.execute(select(LeadRow))).scalars().all()
        offers = (await session.execute(select(OfferRow).order_by(col(OfferRow.id)))).scalars()
        latest = {offer.lead_id: offer for offer in offers}
    wrong = {}
    for lead in leads:
        offer = latest.get(lead.id or 0)
        if lead.status in OPEN_OFFER_STATUSES:
            ok = offer is not None and (offer.status, offer.rep_id) == (lead.status, lead.rep_id)
        else:
            ok = offer is None or offer.status not in OPEN_OFFER_STATUSES
        if not ok:
            wrong[lead.external_id] = (lead.status, lead.rep_id)
    return wrong
