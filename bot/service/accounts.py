"""The accounts table: accounts imported from a file or brought in by a CRM sync."""

from __future__ import annotations

from collections.abc import Sequence

from bot.service.errors import ServiceError
from bot.service.unit_of_work import UnitOfWork
from routing.model import Account
from storage import repository as repo


async def import_accounts(
    uow: UnitOfWork, accounts: Sequence[Account], *, crm_system: str | None = None
) -> tuple[int, int]:
    """Insert or replace accounts (and their name-matching keys). Returns (created, updated).

    Owners must be rep ids of the policy; an unknown owner is an error for the whole batch,
    so a typo never leaves accounts silently unowned."""
    policy = uow.policy()
    unknown = sorted({a.owner for a in accounts if a.owner and a.owner not in policy.reps})
    if unknown:
        raise ServiceError(f"account owners not in the policy: {', '.join(unknown[:10])}")
    duplicates = len(accounts) - len({a.id for a in accounts})
    if duplicates:
        raise ServiceError(f"{duplicates} account ids appear more than once")
    now = uow.clock()
    return await uow.write(
        lambda tx: repo.upsert_accounts(
            session=tx.session, accounts=accounts, now=now, crm_system=crm_system
        )
    )
