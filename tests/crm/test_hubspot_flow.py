"""HubSpot companies synced end to end through `bootstrap`: the real hubspot-api-client against a
fake HubSpot on a loopback port, into a real SQLite file. Just over 400 lines: the companies
sync and the owner write-backs share one app fixture and its fake, which a split would copy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.bootstrap import App, bootstrap, crm_links
from bot.crm.sync import check, sync_accounts
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


async def test_crm_check_names_each_scope_the_token_lacks_for_what_the_policy_asks(
    tmp_path: Path,
) -> None:
    policy = parse_policy(POLICY + "    poll_outcomes_every: 5m\n")
    granted = {"crm.objects.owners.read", "crm.objects.contacts.read"}
    # Where HubSpot will not say which scopes a token has, as here, each is read (the call
    # that says is in tests/crm/test_hubspot_check.py).
    async with FakeHubSpot(scopes=granted, token_info=False) as fake:
        fake.company_properties.add("tier")  # the policy's tier_property: defined
        settings = Settings(hubspot_access_token=SecretStr(TOKEN), hubspot_api_url=fake.url)
        link = crm_links(settings, lambda: policy)["hubspot"]
        try:
            result = await check(link)
            fake.scopes = granted | {"crm.objects.companies.read", "crm.objects.deals.read"}
            again = await check(link)
        finally:
            link.calls.close()

    assert result.error is None and result.connected is not None
    assert len(result.problems) == 2
    companies, deals = result.problems
    assert "crm.objects.companies.read" in companies and "crm.objects.deals.read" in deals
    assert all(TOKEN not in problem for problem in result.problems)
    assert again.problems == ()
    assert fake.calls("GET", "/crm/v3/objects/contacts")  # contacts read, the webhook's fetch


@pytest.mark.parametrize("told", [True, False], ids=["scopes told", "scopes read"])
async def test_crm_check_asks_for_no_scope_the_policy_does_not_use(
    tmp_path: Path, told: bool
) -> None:
    policy = parse_policy(POLICY.split("crm:")[0])  # no sync, no outcomes
    granted = {"crm.objects.owners.read", "crm.objects.contacts.read"}
    if told:  # and then the write scope is checked too
        granted.add("crm.objects.contacts.write")
    async with FakeHubSpot(scopes=granted, token_info=told) as fake:
        settings = Settings(hubspot_access_token=SecretStr(TOKEN), hubspot_api_url=fake.url)
        link = crm_links(settings, lambda: policy)["hubspot"]
        try:
            result = await check(link)
        finally:
            link.calls.close()
    assert result.error is None and result.problems == ()
    assert not fake.calls("POST", "/crm")


async def test_crm_check_says_which_owner_ids_the_policy_gives_hubspot_does_not_have(
    tmp_path: Path,
) -> None:
    given = (
        POLICY.split("teams:")[0]
        .replace(
            "{id: ann, name: Ann Archer, email: ann@acme.example}",
            '{id: ann, name: Ann Archer, hubspot_owner_id: "301"}',
        )
        .replace(
            "{id: ben, name: Ben Baker, email: ben@acme.example}",
            '{id: ben, name: Ben Baker, hubspot_owner_id: "302"}',
        )
    )
    policy = parse_policy(
        given
        + """  - {id: cat, name: Cat Cole, hubspot_owner_id: "303"}
  - {id: dan, name: Dan Dorn, email: dan@acme.example}
teams:
  all: {members: [ann, ben, cat, dan]}
rules:
  - name: Everyone
    assign: {team: all}
"""
    )
    async with FakeHubSpot() as fake:
        fake.add_owner("ann@acme.example", owner_id="301")
        fake.add_owner("ben@acme.example", owner_id="302", archived=True)  # deactivated
        fake.add_owner("dan@acme.example", owner_id="304")
        settings = Settings(hubspot_access_token=SecretStr(TOKEN), hubspot_api_url=fake.url)
        link = crm_links(settings, lambda: policy)["hubspot"]
        try:
            result = await check(link)
        finally:
            link.calls.close()

    assert result.error is None and result.mapping is not None
    assert result.mapping.owners == {"ann": "301", "ben": "302", "cat": "303", "dan": "304"}
    assert result.problems == (
        "rep ben's hubspot_owner_id 302 is a deactivated HubSpot owner: give an active user's "
        "id, or remove it to find the rep by their email; their write-backs fail until then",
        "rep cat's hubspot_owner_id 303 is no owner in this HubSpot account: give an active "
        "user's id, or remove it to find the rep by their email; their write-backs fail until "
        "then",
    )
    assert not fake.calls("PATCH")  # the check writes nothing


async def test_crm_check_says_when_the_tier_property_is_no_company_property_in_hubspot(
    tmp_path: Path,
) -> None:
    policy = parse_policy(POLICY.replace("tier_property: tier", "tier_property: tierr"))
    async with FakeHubSpot() as fake:
        fake.add_company(modified_at=NOW, name="Acme", tier="Gold")  # the property is "tier"
        settings = Settings(hubspot_access_token=SecretStr(TOKEN), hubspot_api_url=fake.url)
        link = crm_links(settings, lambda: policy)["hubspot"]
        right = crm_links(settings, lambda: parse_policy(POLICY))["hubspot"]
        try:
            result = await check(link)
            fine = await check(right)
        finally:
            link.calls.close()
            right.calls.close()

    (problem,) = result.problems
    assert "crm.hubspot.tier_property tierr is no company property in HubSpot" in problem
    assert fine.problems == ()


async def test_two_write_backs_for_one_contact_land_in_the_order_they_were_queued(
    tmp_path: Path,
) -> None:
    import asyncio

    from bot.service.intake import intake
    from bot.service.offers import reject
    from routing.leads import parse_lead

    policy = parse_policy(
        POLICY.split("crm:")[0].replace(
            "{members: [ann, ben]}", "{members: [ann, ben], distribution: round_robin}"
        )
        + "crm:\n  write_on: assign\n"
    )
    async with FakeHubSpot() as fake:
        owners = {rep: fake.add_owner(f"{rep}@acme.example") for rep in ("ann", "ben")}
        contact = fake.add_contact(email="cto@bigco.example")
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'order.db'}",
            hubspot_access_token=SecretStr(TOKEN),
            hubspot_api_url=fake.url,
        )
        app = bootstrap(settings, policy=policy, clock=Clock(NOW))
        await app.db.create_tables()
        try:
            lead = parse_lead(
                {
                    "id": "L-1",
                    "email": "cto@bigco.example",
                    "crm_system": "hubspot",
                    "crm_id": contact,
                }
            )
            first = (await intake(app.uow, lead)).lead.rep
            assert first is not None
            await app.crm["hubspot"].owners.mapping()  # the owners known: only writes go out
            (worker,) = app.crm_workers
            fake.delays.append(1.0)  # the first write is slow on the wire
            writing = asyncio.create_task(worker.deliver_due())
            for _ in range(500):  # ...and on its way when the rep passes the lead on
                if fake.calls("PATCH"):
                    break
                await asyncio.sleep(0.01)
            moved = await reject(app.uow, "L-1", by=first, reason="busy")
            second = moved.to.rep
            assert second is not None and second != first
            # The newer write waits until the one on its way has ended, then goes.
            assert await worker.deliver_due() == 0
            await writing
            assert await worker.deliver_due() == 1
        finally:
            await app.close()

    assert [owner for _, change in fake.patches for owner in change.values()] == [
        owners[first],
        owners[second],
    ]
    assert fake.contacts[contact].properties["hubspot_owner_id"] == owners[second]


DAILY_LIMIT = {
    "status": "error",
    "message": "You have reached your daily limit.",
    "errorType": "RATE_LIMIT",
    "correlationId": "5d8a0c5e-0000-4000-8000-000000000000",
    "policyName": "DAILY",
    "groupName": "daily-limit",
}


async def _claimed_hubspot_leads(app: App, contacts: dict[str, str]) -> None:
    from bot.service.intake import intake
    from bot.service.offers import claim
    from routing.leads import parse_lead

    for external_id, contact in contacts.items():
        lead = parse_lead({"id": external_id, "crm_system": "hubspot", "crm_id": contact})
        rep = (await intake(app.uow, lead)).lead.rep
        assert rep is not None
        await claim(app.uow, external_id, by=rep)


async def test_past_hubspots_daily_limit_write_backs_wait_half_an_hour_without_a_call_each(
    app: App, hubspot: FakeHubSpot, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.metrics import Metrics
    from bot.service.kinds import OutboxKind
    from storage.models import LeadRow, OutboxRow

    for rep in ("ann", "ben"):
        hubspot.add_owner(f"{rep}@acme.example")
    contacts = {f"L-{n}": hubspot.add_contact(email=f"buyer{n}@corp.example") for n in (1, 2, 3)}
    await app.crm["hubspot"].owners.mapping()  # the owners known: only writes go out
    hubspot.fail_next(429, body=DAILY_LIMIT)
    (worker,) = app.crm_workers
    # One write meets the limit first (writes already under way then cannot be called back).
    await _claimed_hubspot_leads(app, {"L-1": contacts["L-1"]})
    assert await worker.deliver_due() == 1
    await _claimed_hubspot_leads(app, {key: contacts[key] for key in ("L-2", "L-3")})
    assert await worker.deliver_due() == 2

    # One write met the limit; the two after it were not sent at all.
    assert [r.status for r in hubspot.calls("PATCH")] == [429]
    async with app.db.reading() as session:
        items = (
            (
                await session.execute(
                    select(OutboxRow).where(OutboxRow.kind == OutboxKind.HUBSPOT_OWNER)
                )
            )
            .scalars()
            .all()
        )
        leads = (await session.execute(select(LeadRow))).scalars().all()
    assert len(items) == 3
    for item in items:
        assert item.done_at is None and item.failed_at is None  # waiting, not given up
        assert item.next_attempt_at >= NOW + timedelta(minutes=29)
        assert "daily API call limit" in (item.last_error or "")
    assert {lead.status for lead in leads} == {"claimed"}  # routing went on as ever

    story = await app.reader.story("L-2", None)  # as the command line reads it
    assert story is not None
    (told,) = [e.what for e in story.events if e.what.startswith("Owner")]
    assert told.startswith("Owner not yet set in HubSpot, trying again")
    assert "midnight in the HubSpot account's time zone" in told

    warned = [r.getMessage() for r in caplog.records if "daily API call limit" in r.getMessage()]
    assert len(warned) == 1 and "no call goes to it for 30 minutes" in warned[0]
    assert TOKEN not in caplog.text
    text = (await Metrics().scrape(app)).decode()
    assert 'leadrouter_crm_writebacks_failed_total{crm="hubspot"} 3.0' in text
    assert 'leadrouter_crm_writebacks_given_up_total{crm="hubspot"} 0.0' in text


async def test_an_owner_hubspot_refuses_is_given_up_with_the_rep_and_the_setting_to_fix(
    tmp_path: Path, hubspot: FakeHubSpot, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.service.kinds import OutboxKind
    from storage.models import LeadRow, OutboxRow

    policy = parse_policy(
        POLICY.split("crm:")[0].replace(
            "{id: ann, name: Ann Archer, email: ann@acme.example}",
            '{id: ann, name: Ann Archer, hubspot_owner_id: "999"}',  # no such owner
        )
    )
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'owner.db'}",
        hubspot_access_token=SecretStr(TOKEN),
        hubspot_api_url=hubspot.url,
    )
    app = bootstrap(settings, policy=policy, clock=Clock(NOW))
    await app.db.create_tables()
    hubspot.add_owner("ben@acme.example")
    contacts = {f"L-{n}": hubspot.add_contact(email=f"buyer{n}@corp.example") for n in (1, 2)}
    try:
        await _claimed_hubspot_leads(app, contacts)
        (worker,) = app.crm_workers
        assert await worker.deliver_due() == 2
        async with app.db.reading() as session:
            items = {
                item.payload["rep"]: item
                for item in (
                    await session.execute(
                        select(OutboxRow).where(OutboxRow.kind == OutboxKind.HUBSPOT_OWNER)
                    )
                ).scalars()
            }
            leads = (await session.execute(select(LeadRow))).scalars().all()
        (lead_of_ann,) = [lead.external_id for lead in leads if lead.rep_id == "ann"]
        story = await app.reader.story(lead_of_ann, None)
    finally:
        await app.close()

    assert items["ben"].done_at is not None  # the other rep's write went through
    refused = items["ann"]
    assert refused.failed_at is not None and refused.attempts == 1  # given up at once
    assert refused.last_error == (
        "HubSpot refused the owner: 999 is not a valid owner id; it is rep ann's "
        "hubspot_owner_id in the policy: give an active HubSpot owner's id (`leadrouter crm "
        "check` checks them), then `leadrouter crm retry`"
    )
    assert {lead.status for lead in leads} == {"claimed"}  # routing went on as ever
    assert story is not None
    (told,) = [e.what for e in story.events if e.what.startswith("Owner")]
    assert told.startswith("Owner NOT set in HubSpot, given up (Ann Archer) · HubSpot refused")
    # The log line names the record, which `/routing why` finds the lead by.
    (logged,) = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
    record = contacts[lead_of_ann]
    assert f"(crm.set_owner.hubspot: HubSpot record {record}, rep ann) given up: HubSpot" in logged
    assert TOKEN not in caplog.text
