from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from bot.service.accounts import import_accounts
from bot.service.errors import ServiceError
from bot.service.intake import intake
from bot.service.unit_of_work import UnitOfWork
from routing.leads import parse_lead
from routing.model import Account
from storage import repository as repo
from storage.db import Database
from storage.models import AccountKeyRow, AccountRow


async def count(db: Database, table: type[AccountRow] | type[AccountKeyRow]) -> int:
    async with db.reading() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_imported_accounts_route_leads_to_their_owners_by_domain_and_by_name(
    sqlite_db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(sqlite_db)
    created, updated = await import_accounts(
        uow,
        [
            Account("A1", "Initech", "https://www.initech.com", owner="bob"),
            Account("A2", "Tyrell Corporation", "tyrell.com", owner="alice"),
        ],
    )
    assert (created, updated) == (2, 0)
    by_domain = await intake(uow, parse_lead({"id": "L1", "email": "p@sales.initech.com"}))
    by_name = await intake(
        uow, parse_lead({"id": "L2", "email": "e@tyrellcorp.net", "company": "Tyrel Corp"})
    )
    assert (by_domain.lead.rep, by_domain.lead.rule) == ("bob", "Existing account owner")
    assert (by_name.lead.rep, by_name.lead.rule) == ("alice", "Existing account owner")


async def test_reimporting_an_account_replaces_it_and_its_name_keys(
    sqlite_db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(sqlite_db)
    await import_accounts(uow, [Account("A1", "Initech Holdings", "initech.com", owner="bob")])
    keys_before = await count(sqlite_db, AccountKeyRow)
    assert await import_accounts(uow, [Account("A1", "Initech", "initech.com")]) == (0, 1)
    assert await count(sqlite_db, AccountRow) == 1
    assert await count(sqlite_db, AccountKeyRow) < keys_before
    lead = await intake(uow, parse_lead({"id": "L1", "email": "p@initech.com"}))
    assert lead.lead.rule != "Existing account owner"  # the new version has no owner


async def test_an_unknown_owner_rejects_the_whole_batch(
    sqlite_db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(sqlite_db)
    with pytest.raises(ServiceError, match="not in the policy: zed"):
        await import_accounts(
            uow,
            [Account("A1", "Initech", "initech.com", owner="bob"), Account("A2", "X", None, "zed")],
        )
    assert await count(sqlite_db, AccountRow) == 0


async def test_imported_accounts_come_back_to_routing_with_their_country_code_and_state(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    await import_accounts(
        uow,
        [
            Account("A1", "Initech", "initech.com", country="Germany", state=" Bavaria "),
            Account("A2", "Tyrell Corporation", "tyrell.com", country="usa", state="CA"),
            Account("A3", "Ghost Co", "ghost.io", country="Atlantis", state=""),
        ],
    )
    async with db.reading() as session:
        by_domain = await session.run_sync(
            lambda sync: repo.candidate_accounts(
                session=sync, lookups=[("initech.com", None), ("ghost.io", None)]
            )
        )
        by_name = await session.run_sync(
            lambda sync: repo.candidate_accounts(
                session=sync, lookups=[(None, "Tyrell Corporation")]
            )
        )
    found = {a.id: (a.country, a.state) for a in [*by_domain.accounts, *by_name.accounts]}
    assert found == {"A1": ("DE", "Bavaria"), "A2": ("US", "CA"), "A3": (None, None)}
