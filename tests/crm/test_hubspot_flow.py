"""HubSpot companies synced end to end through `bootstrap`: the real hubspot-api-client against a
fake HubSpot on a loopback port, into a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.bootstrap import App, bootstrap
from bot.crm.sync import sync_accounts
from bot.settings import Settings
from routing.policy import parse_policy
from storage.models import AccountRow
from tests.fakes.hubspot import TOKEN, FakeHubSpot
from tests.service.conftest import Clock

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
POLICY = """\
reps:
  - {id: ann, name: Ann Archer, email: ann@acme.example}
  - {id: ben, name: Ben Baker, email: ben@acme.example}
teams:
  duo: {members: [ann, ben]}
rules:
  - name: Everyone
    assign: {team: duo}
crm:
  hubspot:
    sync_accounts_every: 15m
    tier_property: tier
"""


@pytest.fixture
async def hubspot() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
async def app(tmp_path: Path, hubspot: FakeHubSpot) -> AsyncIterator[App]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}",
        hubspot_access_token=SecretStr(TOKEN),
        hubspot_api_url=hubspot.url,
    )
    application = bootstrap(settings, policy=parse_policy(POLICY), clock=Clock(NOW))
    await application.db.create_tables()
    yield application
    await application.close()


async def test_companies_sync_with_their_country_as_its_code_and_their_state(
    app: App, hubspot: FakeHubSpot
) -> None:
    ann = hubspot.add_owner("ann@acme.example")
    then = NOW - timedelta(days=1)
    known = {
        hubspot.add_company(
            modified_at=then,
            name="Müller Bau",
            domain="mueller-bau.de",
            hubspot_owner_id=ann,
            tier="Gold",
            country="Germany",
            state="Bavaria",
        ): ("ann", "Gold", "DE", "Bavaria"),
        hubspot.add_company(
            modified_at=then + timedelta(seconds=1),
            name="Initech",
            domain="initech.example",
            country="United States",
            state=" TX ",
        ): (None, None, "US", "TX"),
        hubspot.add_company(
            modified_at=then + timedelta(seconds=2),
            name="Ghost Co",
            country="Atlantis",  # no country anyone knows: kept without one
            state="",
        ): (None, None, None, None),
    }

    result = await sync_accounts(app.uow, app.crm["hubspot"])

    assert (result.created, result.updated) == (3, 0)
    async with app.db.reading() as session:
        rows = (await session.execute(select(AccountRow))).scalars().all()
    assert {row.id: (row.owner_rep, row.tier, row.country, row.state) for row in rows} == known
    assert all(row.crm_system == "hubspot" for row in rows)
