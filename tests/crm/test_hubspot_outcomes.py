"""What HubSpot tells of routed leads: calls, e-mails, meetings and deals polled, and lifecycle
stage and lead status changes heard by webhook, end to end: the real hubspot-api-client against
the fake HubSpot on a loopback port, the real aiohttp app for the webhook (signed as HubSpot
signs), a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import select
from sqlmodel import col

from bot.bootstrap import App, bootstrap
from bot.crm.base import CrmTransient
from bot.crm.sync import lead_of, outcomes_cursor, poll_outcomes
from bot.http import build_http_app
from bot.metrics import Metrics
from bot.service.crm import crm_cursor
from bot.service.intake import intake_from_crm
from bot.service.outcomes import Recorded
from bot.settings import Settings
from routing.policy import parse_policy
from routing.report import outcomes_of
from storage import repository as repo
from storage.models import AuditEventRow, LeadEventRow, LeadRow
from tests.bot.test_hubspot_webhook import CLIENT_SECRET, event, hubspot_signed
from tests.fakes.hubspot import TOKEN, FakeHubSpot, iso, millis
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
    poll_outcomes_every: 5m
"""
LOOK_BACK = timedelta(days=30)


@pytest.fixture
async def hubspot() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def app(tmp_path: Path, hubspot: FakeHubSpot, clock: Clock) -> AsyncIterator[App]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}",
        webhook_secret=SecretStr("a-webhook-secret-0123456789"),
        hubspot_access_token=SecretStr(TOKEN),
        hubspot_client_secret=SecretStr(CLIENT_SECRET),
        hubspot_api_url=hubspot.url,
    )
    application = bootstrap(settings, policy=parse_policy(POLICY), clock=clock)
    application.crm["hubspot"].crm.search_interval_s = 0  # type: ignore[attr-defined]
    await application.db.create_tables()
    yield application
    await application.close()


@pytest.fixture
async def reps(hubspot: FakeHubSpot) -> dict[str, str]:
    """The reps' HubSpot owners, and someone who is no rep (a marketing user)."""
    return {
        "ann": hubspot.add_owner("ann@acme.example"),
        "ben": hubspot.add_owner("ben@acme.example"),
        "marketing": hubspot.add_owner("marketing@acme.example"),
    }


async def route(app: App, hubspot: FakeHubSpot, *contacts: str) -> None:
    for contact in contacts:
        hubspot.add_contact(contact, email=f"buyer{contact}@corp.example")
    leads = [lead_of("hubspot", c, {"email": f"buyer{c}@corp.example"}) for c in contacts]
    assert (await intake_from_crm(app.uow, leads))[0] == len(contacts)


async def poll(app: App) -> Recorded:
    return (await poll_outcomes(app.uow, app.crm["hubspot"], first_look_back=LOOK_BACK)).recorded


async def events_of(app: App, contact: str) -> list[LeadEventRow]:
    async with app.db.reading() as session:
        rows = await session.execute(
            select(LeadEventRow)
            .join(LeadRow, col(LeadRow.id) == col(LeadEventRow.lead_id))
            .where(col(LeadRow.crm_id) == contact)
            .order_by(col(LeadEventRow.id))
        )
        return list(rows.scalars().all())


def minutes(n: float) -> datetime:
    return NOW + timedelta(minutes=n)


# --- polled ------------------------------------------------------------------------------------


async def test_a_reps_call_on_a_routed_contact_is_its_first_touch_when_it_was_made(
    app: App, hubspot: FakeHubSpot, reps: dict[str, str]
) -> None:
    await route(app, hubspot, "501", "502")
    hubspot.add_object(
        "calls",
        modified_at=minutes(9),
        contacts=("501",),
        hs_timestamp=iso(minutes(4)),
        hs_call_status="COMPLETED",
        hubspot_owner_id=reps["ann"],
    )
    hubspot.add_object(
        "calls",
        modified_at=minutes(2),
        contacts=("501",),
        hs_timestamp=iso(minutes(2)),
        hs_call_status="CANCELED",
        hubspot_owner_id=reps["ann"],
    )
    hubspot.add_object(
        "emails",
        modified_at=minutes(3),
        contacts=("502",),
        hs_timestamp=iso(minutes(3)),
        hs_email_direction="EMAIL",
        hubspot_owner_id=reps["marketing"],
    )
    hubspot.add_object(
        "emails",
        modified_at=minutes(1),
        contacts=("502",),
        hs_timestamp=iso(minutes(1)),
        hs_email_direction="INCOMING_EMAIL",
        hubspot_owner_id=reps["ben"],
    )
    hubspot.add_object(
        "emails",
        modified_at=minutes(1),
        contacts=("999",),
        hs_timestamp=iso(minutes(1)),
        hs_email_direction="EMAIL",
        hubspot_owner_id=reps["ben"],
    )

    assert await poll(app) == Recorded(stored=1, waiting=1)
    (touch,) = await events_of(app, "501")
    assert (touch.kind, touch.at, touch.via, touch.source) == (
        "first_touch",
        minutes(4),
        "call",
        "hubspot",
    )
    assert await events_of(app, "502") == []
    searches = hubspot.calls("POST", "/crm/v3/objects/calls/search")
    assert searches[0].body["filterGroups"][0]["filters"][0] == {
        "propertyName": "hs_lastmodifieddate",
        "operator": "GTE",
        "value": str(millis(NOW - LOOK_BACK)),
    }


async def test_a_meeting_counts_from_when_it_was_booked_and_a_later_touch_is_not_kept(
    app: App, hubspot: FakeHubSpot, reps: dict[str, str]
) -> None:
    await route(app, hubspot, "501")
    hubspot.add_object(
        "meetings",
        modified_at=minutes(6),
        created_at=minutes(6),
        contacts=("501",),
        hs_timestamp=iso(minutes(60 * 24 * 3)),  # the meeting itself is in three days
        hubspot_owner_id=reps["ben"],
    )
    assert await poll(app) == Recorded(stored=1)
    hubspot.add_object(
        "calls",
        modified_at=minutes(20),
        contacts=("501",),
        hs_timestamp=iso(minutes(20)),
        hubspot_owner_id=reps["ben"],
    )
    assert (await poll(app)).stored == 0
    (touch,) = await events_of(app, "501")
    assert (touch.at, touch.via) == (minutes(6), "meeting")


async def test_a_deal_created_then_won_records_the_conversion_and_the_win_with_amount(
    app: App, hubspot: FakeHubSpot, reps: dict[str, str]
) -> None:
    await route(app, hubspot, "501")
    deal = hubspot.add_object(
        "deals", modified_at=minutes(30), contacts=("501",), dealstage="appointmentscheduled"
    )
    assert await poll(app) == Recorded(stored=1)
    hubspot.update_object(
        "deals",
        deal,
        modified_at=minutes(60 * 48),
        dealstage="closedwon",
        hs_is_closed="true",
        hs_is_closed_won="true",
        amount="48000.5",
        closedate=iso(minutes(60 * 47)),
    )
    assert (await poll(app)).stored == 1

    rows = await events_of(app, "501")
    assert [(r.kind, r.at, r.source_key) for r in rows] == [
        ("converted", minutes(30), f"deals/{deal}"),
        ("won", minutes(60 * 47), f"deals/{deal}"),
    ]
    settled = outcomes_of(repo.outcome_event(r) for r in rows)
    assert (settled.amount, settled.close_date) == (Decimal("48000.50"), date(2026, 11, 19))
    assert await crm_cursor(app.uow, outcomes_cursor("hubspot", "deals")) == minutes(60 * 48)


async def test_a_deal_lost_is_recorded_lost(
    app: App, hubspot: FakeHubSpot, reps: dict[str, str]
) -> None:
    await route(app, hubspot, "501")
    hubspot.add_object(
        "deals",
        modified_at=minutes(90),
        created_at=minutes(30),
        contacts=("501",),
        dealstage="closedlost",
        hs_is_closed="true",
        hs_is_closed_won="false",
        closedate=iso(minutes(80)),
    )
    await poll(app)
    assert [(r.kind, r.at) for r in await events_of(app, "501")] == [
        ("converted", minutes(30)),
        ("lost", minutes(80)),
    ]


async def test_pages_of_calls_are_read_with_one_association_call_each_and_stored_once(
    app: App, hubspot: FakeHubSpot, reps: dict[str, str]
) -> None:
    contacts = [str(1000 + n) for n in range(250)]
    await route(app, hubspot, *contacts)
    for n, contact in enumerate(contacts):
        hubspot.add_object(
            "calls",
            modified_at=minutes(n / 10),
            contacts=(contact,),
            hs_timestamp=iso(minutes(n / 10)),
            hubspot_owner_id=reps["ann"],
        )

    assert (await poll(app)).stored == 250
    assert len(hubspot.calls("POST", "/crm/v3/objects/calls/search")) == 3
    assert len(hubspot.calls("POST", "/crm/v4/associations/calls/contacts/batch/read")) == 3
    assert (await poll(app)).stored == 0
    assert [len(await events_of(app, c)) for c in contacts[::50]] == [1] * 5


async def test_a_poll_failing_half_way_keeps_its_first_pages_and_the_next_doubles_none(
    app: App, hubspot: FakeHubSpot, reps: dict[str, str]
) -> None:
    contacts = [str(1000 + n) for n in range(150)]
    await route(app, hubspot, *contacts)
    for n, contact in enumerate(contacts):
        hubspot.add_object(
            "calls",
            modified_at=minutes(n),
            contacts=(contact,),
            hs_timestamp=iso(minutes(n)),
            hubspot_owner_id=reps["ann"],
        )
    await app.crm["hubspot"].owners.mapping()  # the owners are known: the poll only reads
    # The first search and its contacts pass, then the search of the second page fails.
    hubspot.fail_after(2, 503)
    with pytest.raises(CrmTransient):
        await poll(app)
    stored = [c for c in contacts if await events_of(app, c)]
    assert stored == contacts[:100]  # the first page and its contacts, committed

    assert (await poll(app)).stored == 50
    assert [len(await events_of(app, c)) for c in contacts] == [1] * len(contacts)


# --- heard by webhook --------------------------------------------------------------------------


@pytest.fixture
async def webhook(app: App) -> AsyncIterator[TestClient[Any, Any]]:
    client = TestClient(TestServer(build_http_app(app, metrics=Metrics())))
    await client.start_server()
    yield client
    await client.close()


async def send(client: TestClient[Any, Any], *events: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(list(events)).encode()
    url = str(client.make_url("/webhooks/hubspot"))
    response = await client.post("/webhooks/hubspot", data=body, headers=hubspot_signed(body, url))
    assert response.status == 200
    answer: dict[str, Any] = await response.json()
    return answer


def changed(number: int, contact: int, name: str, value: str, at: datetime) -> dict[str, Any]:
    return event(
        number,
        "contact.propertyChange",
        contact,
        propertyName=name,
        propertyValue=value,
        occurredAt=millis(at),
        changeFlag="PROPERTY_CHANGED",
    )


async def test_lifecycle_stage_and_lead_status_changes_are_recorded_once_in_any_order(
    app: App, hubspot: FakeHubSpot, webhook: TestClient[Any, Any]
) -> None:
    await route(app, hubspot, "501")
    customer = changed(1, 501, "lifecyclestage", "customer", minutes(600))
    opportunity = changed(2, 501, "lifecyclestage", "opportunity", minutes(90))
    connected = changed(3, 501, "hs_lead_status", "CONNECTED", minutes(12))
    new = changed(4, 501, "hs_lead_status", "NEW", minutes(1))
    email = changed(5, 501, "email", "x@y.z", minutes(1))
    elsewhere = changed(6, 999, "hs_lead_status", "CONNECTED", minutes(12))

    first = await send(webhook, customer, opportunity, new, email, elsewhere)
    again = await send(webhook, connected, opportunity, customer)  # HubSpot retries, reordered

    assert first == {"queued": 0, "repeated": 0, "ignored": 2, "events": 3}
    assert again["events"] == 3
    rows = await events_of(app, "501")
    assert sorted((r.kind, r.at, r.via) for r in rows) == [
        ("converted", minutes(90), "lifecycle stage"),
        ("first_touch", minutes(12), "lead status"),
        ("won", minutes(600), "lifecycle stage"),
    ]


async def test_a_win_heard_by_webhook_and_its_deal_polled_settle_with_the_deals_amount(
    app: App, hubspot: FakeHubSpot, reps: dict[str, str], webhook: TestClient[Any, Any]
) -> None:
    await route(app, hubspot, "501")
    await send(webhook, changed(1, 501, "lifecyclestage", "customer", minutes(601)))
    hubspot.add_object(
        "deals",
        modified_at=minutes(602),
        created_at=minutes(100),
        contacts=("501",),
        hs_is_closed="true",
        hs_is_closed_won="true",
        amount="9000",
        closedate=iso(minutes(600)),
    )
    await poll(app)

    settled = outcomes_of(repo.outcome_event(r) for r in await events_of(app, "501"))
    assert (settled.converted_at, settled.won_at, settled.amount) == (
        minutes(100),
        minutes(601),
        Decimal("9000.00"),
    )


def test_the_outcomes_job_is_declared_for_hubspot_when_the_policy_asks(app: App) -> None:
    from bot.jobs import declare_jobs

    jobs = {job.name: job for job in declare_jobs(app.policy, app.crm)}
    assert jobs["outcomes:hubspot"].what.startswith("every 5m: record the touches")


# --- currencies --------------------------------------------------------------------------------


@pytest.fixture
async def in_dollars(tmp_path: Path, hubspot: FakeHubSpot, clock: Clock) -> AsyncIterator[App]:
    """The app with LEADROUTER_CURRENCY=USD."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}",
        webhook_secret=SecretStr("a-webhook-secret-0123456789"),
        hubspot_access_token=SecretStr(TOKEN),
        hubspot_client_secret=SecretStr(CLIENT_SECRET),
        hubspot_api_url=hubspot.url,
        currency="USD",
    )
    application = bootstrap(settings, policy=parse_policy(POLICY), clock=clock)
    application.crm["hubspot"].crm.search_interval_s = 0  # type: ignore[attr-defined]
    await application.db.create_tables()
    yield application
    await application.close()


def won_deal(hubspot: FakeHubSpot, contact: str, amount: str, currency: str | None) -> str:
    return hubspot.add_object(
        "deals",
        modified_at=minutes(90),
        created_at=minutes(30),
        contacts=(contact,),
        dealstage="closedwon",
        hs_is_closed="true",
        hs_is_closed_won="true",
        amount=amount,
        deal_currency_code=currency,
        closedate=iso(minutes(80)),
    )


async def test_a_deal_won_in_another_currency_is_won_without_its_amount_and_noted(
    in_dollars: App, hubspot: FakeHubSpot, reps: dict[str, str]
) -> None:
    await route(in_dollars, hubspot, "501", "502", "503")
    in_pounds = won_deal(hubspot, "501", "9000", "GBP")
    won_deal(hubspot, "502", "12000", "USD")
    won_deal(hubspot, "503", "500", None)  # a one-currency account names none

    await poll(in_dollars)

    amounts = {c: [r.amount for r in await events_of(in_dollars, c)] for c in ("501", "502", "503")}
    assert amounts == {
        "501": [None, None],
        "502": [None, Decimal("12000.00")],
        "503": [None, Decimal("500.00")],
    }
    assert [(r.kind, r.at) for r in await events_of(in_dollars, "501")] == [
        ("converted", minutes(30)),
        ("won", minutes(80)),
    ]
    async with in_dollars.db.reading() as session:
        notes = (
            await session.execute(
                select(AuditEventRow).where(col(AuditEventRow.kind) == repo.AMOUNT_LEFT_OUT)
            )
        ).scalars()
        [note] = [row.data for row in notes]
    assert (note["currency"], note["ours"], note["source_key"]) == (
        "GBP",
        "USD",
        f"deals/{in_pounds}",
    )
