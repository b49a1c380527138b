"""Accounts and their name-matching keys, replaced in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from routing.company_names import company_key, name_blocking_keys
from routing.domains import registrable_domain
from routing.geo import account_location
from routing.model import Account
from storage.models import AccountKeyRow, AccountRow
from storage.repository.common import chunks, insert_rows


def upsert_accounts(
    *,
    session: Session,
    accounts: Sequence[Account],
    now: datetime,
    crm_system: str | None = None,
) -> tuple[int, int]:
    """Insert or replace accounts and their name keys in bulk. Returns (created, updated)."""
    ids = [account.id for account in accounts]
    existing: set[str] = set()
    for chunk in chunks(ids):
        rows = session.execute(select(col(AccountRow.id)).where(col(AccountRow.id).in_(chunk)))
        existing.update(account_id for (account_id,) in rows.all())
    for chunk in chunks(existing):
        session.execute(delete(AccountKeyRow).where(col(AccountKeyRow.account_id).in_(chunk)))
        session.execute(delete(AccountRow).where(col(AccountRow.id).in_(chunk)))
    insert_rows(
        session=session,
        table=AccountRow,
        rows=[
            {
                "id": account.id,
                "name": account.name,
                "domain": registrable_domain(account.domain),
                "website": account.domain,
                "owner_rep": account.owner,
                "tier": account.tier,
                "country": country,
                "state": state,
                "crm_system": crm_system,
                "updated_at": now,
            }
            for account in accounts
            for country, state in [account_location(account.country, account.state)]
        ],
    )
    insert_rows(
        session=session,
        table=AccountKeyRow,
        rows=[
            {"account_id": account.id, "key": key}
            for account in accounts
            for key in name_blocking_keys(company_key(account.name))
        ],
    )
    return len(accounts) - len(existing), len(existing)


async def all_accounts(*, session: AsyncSession) -> list[Account]:
    """Every stored account, as `candidate_accounts` reads them for intake."""
    rows = await session.execute(
        select(
            col(AccountRow.id),
            col(AccountRow.name),
            col(AccountRow.domain),
            col(AccountRow.owner_rep),
            col(AccountRow.tier),
            col(AccountRow.country),
            col(AccountRow.state),
        ).order_by(col(AccountRow.id))  # one order: an index keeps a domain's first account
    )
    return [Account(*row) for row in rows]
