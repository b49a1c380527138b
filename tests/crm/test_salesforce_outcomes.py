"""What Salesforce tells of routed leads, polled end to end: the real simple-salesforce client
against the fake Salesforce (`tests.fakes.salesforce`, through `responses`: nothing leaves the
machine), the database a real SQLite file, the clock the test's.

Leads are routed through the real Salesforce lead poll first; then Tasks, Events, conversions
and opportunities are arranged in the fake and read by `poll_outcomes`, as the job does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from sqlalchemy import select
from sqlmodel import col

from bot.bootstrap import App, bootstrap
from bot.crm.base import CrmTransient
from bot.crm.sync import outcomes_cursor, poll_outcomes, poll_salesforce_leads
from bot.jobs import OUTCOMES_FIRST_LOOK_BACK, declare_jobs
from bot.policy_file import load_policy
from bot.service.crm import crm_cursor
from bot.service.outcomes import Recorded
from bot.settings import Settings
from routing.report import outcomes_of
from storage import repository as repo
from storage.models import AuditEventRow, LeadEventRow, LeadRow
from tests.fakes.salesforce import FakeSalesforce, sf_time
from tests.service.conftest import Clock

INSTANCE = "https://acme.my.salesforce.com"
TOKEN = "00Dxx!outcomes-token"
ANN, BEN, MARKETING = "0055e00000AnnAAAAA", "0055e00000BenBBBBB", "0055e00000MktMMMMM"
ROUTED_AT = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
POLICY = f"""\
reps:
  - {{id: ann, name: Ann Archer, salesforce_user_id: {ANN}}}
  - {{id: ben, name: Ben Baker, email: ben@acme.example}}
teams:
  duo: {{members: [ann, ben], distribution: round_robin}}
rules:
  - name: Everyone
    assign: {{team: duo}}
crm:
  salesforce:
    poll_outcomes_every: 5m
    contacted_statuses: [Working - Contacted]
"""


@pytest.fixture
def clock() -> Clock:
    return Clock(ROUTED_AT)


@pytest.fixture
def salesforce(clock: Clock) -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce(INSTANCE, now=clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        yield fake


@pytest.fixture
async def app(tmp_path: Path, clock: Clock) -> AsyncIterator[App]:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    settings = Settings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}",
        LEADROUTER_RULES=rules,
        SALESFORCE_INSTANCE_URL=INSTANCE,
        SALESFORCE_ACCESS_TOKEN=TOKEN,
    )
    application = bootstrap(settings, policy=load_policy(rules), clock=clock)
    await application.db.create_tables()
    yield application
    await application.close()


async def route(app: App, salesforce: FakeSalesforce, count: int) -> list[str]:
    """`count` new Salesforce Leads, routed by the real lead poll; their Salesforce ids."""
    salesforce.add("User", BEN, Email="ben@acme.example", IsActive=True)
    salesforce.add("User", MARKETING, Email="pardot@acme.example", IsActive=True)
    ids = [
        salesforce.add("Lead", Email=f"buyer{n}@corp{n}.example", LastName=f"Buyer {n}")
        for n in range(count)
    ]
    result = await poll_salesforce_leads(
        app.uow, app.crm["salesforce"], first_look_back=timedelta(minutes=1)
    )
    assert result.created == count
    return ids


async def poll(app: App) -> Recorded:
    result = await poll_outcomes(
        app.uow, app.crm["salesforce"], first_look_back=OUTCOMES_FIRST_LOOK_BACK
    )
    return result.recorded


async def events_of(app: App, crm_id: str) -> list[LeadEventRow]:
    async with app.db.reading() as session:
        rows = await session.execute(
            select(LeadEventRow)
            .join(LeadRow, col(LeadRow.id) == col(LeadEventRow.lead_id))
            .where(col(LeadRow.crm_id) == crm_id)
            .order_by(col(LeadEventRow.id))
        )
        return list(rows.scalars().all())


def later(clock: Clock, minutes: float) -> datetime:
    clock.advance(minutes=minutes)
    return clock.now


async def test_a_reps_call_logged_on_a_routed_lead_is_its_first_touch_when_completed(
    app: App, salesforce: FakeSalesforce, clock: Clock
) -> None:
    lead, other = await route(app, salesforce, 2)
    called = later(clock, 4)
    logged = later(clock, 3)  # the call was saved as done a little after it ended
    salesforce.add(
        "Task",
        WhoId=lead,
        OwnerId=ANN,
        IsClosed=True,
        TaskSubtype="Call",
        CompletedDateTime=sf_time(called),
    )
    salesforce.add("Task", WhoId=lead, OwnerId=ANN, IsClosed=False, TaskSubtype="Task")  # a to-do
    salesforce.add("Task", WhoId=other, OwnerId=MARKETING, IsClosed=True, TaskSubtype="Email")
    salesforce.add("Task", WhoId="00Q5e00000NotRouted", OwnerId=BEN, IsClosed=True)
    salesforce.add("Task", WhoId="0035e00000Contact1", OwnerId=BEN, IsClosed=True)
    later(clock, 1)

    recorded = await poll(app)

    assert recorded == Recorded(stored=1, waiting=1)
    (touch,) = await events_of(app, lead)
    assert (touch.kind, touch.at, touch.via, touch.source) == (
        "first_touch",
        called,
        "call",
        "salesforce",
    )
    assert touch.at < logged
    assert await events_of(app, other) == []  # a marketing tool's e-mail is no rep's touch
    (tasks,) = salesforce.queries_of("Task")
    assert "IsClosed = true AND Who.Type = 'Lead'" in tasks
    first_look = ROUTED_AT + timedelta(minutes=8) - OUTCOMES_FIRST_LOOK_BACK
    assert f"SystemModstamp >= {first_look:%Y-%m-%dT%H:%M:%S}.000Z" in tasks


async def test_a_meeting_booked_before_an_email_but_read_after_it_is_the_first_touch(
    app: App, salesforce: FakeSalesforce, clock: Clock
) -> None:
    (lead,) = await route(app, salesforce, 1)
    booked = later(clock, 2)
    meeting = sf_time(booked + timedelta(days=3))
    salesforce.add("Event", WhoId=lead, OwnerId=BEN, StartDateTime=meeting)
    emailed = later(clock, 5)
    salesforce.add("Task", WhoId=lead, OwnerId=BEN, IsClosed=True, TaskSubtype="Email")
    later(clock, 1)

    assert await poll(app) == Recorded(stored=2)  # Tasks are read before Events
    later(clock, 10)
    salesforce.add("Task", WhoId=lead, OwnerId=ANN, IsClosed=True, TaskSubtype="Call")
    later(clock, 1)
    # Within the overlap behind each cursor, the e-mail and the meeting again; and a later call.
    assert await poll(app) == Recorded(repeated=3)

    rows = await events_of(app, lead)
    assert [(r.at, r.via) for r in rows] == [(emailed, "email"), (booked, "meeting")]
    lead_id = rows[0].lead_id
    first = await app.uow.read(lambda s: repo.first_touch_at(session=s, lead_id=lead_id))
    assert first == booked


async def test_polling_again_reads_from_each_cursor_a_little_behind_and_stores_nothing_twice(
    app: App, salesforce: FakeSalesforce, clock: Clock
) -> None:
    (lead,) = await route(app, salesforce, 1)
    done = later(clock, 3)
    salesforce.add("Task", WhoId=lead, OwnerId=ANN, IsClosed=True, TaskSubtype="Call")
    later(clock, 1)
    assert (await poll(app)).stored == 1
    assert await crm_cursor(app.uow, outcomes_cursor("salesforce", "Task")) == done

    later(clock, 5)
    assert await poll(app) == Recorded(repeated=1)  # read again within the overlap
    assert len(await events_of(app, lead)) == 1
    last = salesforce.queries_of("Task")[-1]
    assert f"SystemModstamp >= {done - timedelta(minutes=2):%Y-%m-%dT%H:%M:%S}.000Z" in last


async def test_a_conversion_and_its_opportunity_won_are_recorded_with_amount_and_close_date(
    app: App, salesforce: FakeSalesforce, clock: Clock
) -> None:
    (lead,) = await route(app, salesforce, 1)
    opportunity = salesforce.add("Opportunity", StageName="Prospecting", IsClosed=False)
    converted = later(clock, 60)
    salesforce.update(
        "Lead",
        lead,
        IsConverted=True,
        ConvertedDate=converted.date().isoformat(),
        ConvertedOpportunityId=opportunity,
        Status="Closed - Converted",
    )
    later(clock, 1)
    assert await poll(app) == Recorded(stored=1)
    won = later(clock, 60 * 24)
    salesforce.update(
        "Opportunity",
        opportunity,
        StageName="Closed Won",
        IsClosed=True,
        IsWon=True,
        Amount=48000.0,
        CloseDate="2026-11-18",
    )
    later(clock, 1)
    # The conversion is read again: the Lead cursor is read a little behind, for late saves.
    assert await poll(app) == Recorded(stored=1, repeated=1)

    rows = await events_of(app, lead)
    assert [(r.kind, r.at, r.source_key) for r in rows] == [
        ("converted", converted, f"Opportunity/{opportunity}"),
        ("won", won, f"Opportunity/{opportunity}"),
    ]
    settled = outcomes_of(repo.outcome_event(r) for r in rows)
    assert (settled.converted_at, settled.won_at, settled.amount, settled.close_date) == (
        converted,
        won,
        Decimal("48000.00"),
        date(2026, 11, 18),
    )


async def test_an_opportunity_lost_then_reopened_and_won_ends_won(
    app: App, salesforce: FakeSalesforce, clock: Clock
) -> None:
    (lead,) = await route(app, salesforce, 1)
    opportunity = salesforce.add("Opportunity", StageName="Closed Lost", IsClosed=True, IsWon=False)
    salesforce.update("Lead", lead, IsConverted=True, ConvertedOpportunityId=opportunity)
    later(clock, 1)
    await poll(app)
    later(clock, 60)
    salesforce.update("Opportunity", opportunity, StageName="Closed Won", IsWon=True, Amount=900)
    later(clock, 1)
    await poll(app)

    rows = await events_of(app, lead)
    assert [r.kind for r in rows] == ["converted", "lost", "won"]
    settled = outcomes_of(repo.outcome_event(r) for r in rows)
    assert settled.won_at is not None and settled.lost_at is None


async def test_a_lead_moved_to_a_contacted_status_counts_as_touched_when_it_was_moved(
    app: App, salesforce: FakeSalesforce, clock: Clock
) -> None:
    lead, other = await route(app, salesforce, 2)
    moved = later(clock, 6)
    salesforce.update("Lead", lead, Status="Working - Contacted")
    salesforce.update("Lead", other, Status="Open - Not Contacted")
    later(clock, 1)

    await poll(app)

    (touch,) = await events_of(app, lead)
    assert (touch.kind, touch.at, touch.via) == ("first_touch", moved, "lead status")
    assert await events_of(app, other) == []
    (leads,) = [q for q in salesforce.queries_of("Lead") if "IsConverted" in q]
    assert "Status IN ('Working - Contacted')" in leads


async def test_a_poll_failing_half_way_keeps_its_committed_pages_and_the_next_doubles_none(
    app: App, salesforce: FakeSalesforce, clock: Clock
) -> None:
    leads = await route(app, salesforce, 5)
    for lead in leads:
        later(clock, 1)
        salesforce.add("Task", WhoId=lead, OwnerId=ANN, IsClosed=True, TaskSubtype="Call")
    later(clock, 1)
    salesforce.batch_size = 2
    # The poll asks for the reps' users, then the Tasks: their second page fails.
    salesforce.failing_from = salesforce.requests + 3

    with pytest.raises(CrmTransient):
        await poll(app)
    stored = [lead for lead in leads if await events_of(app, lead)]
    assert stored == leads[:2]
    assert await crm_cursor(
        app.uow, outcomes_cursor("salesforce", "Task")
    ) == ROUTED_AT + timedelta(minutes=2)

    salesforce.failing_from = None
    assert (await poll(app)).stored == 3
    assert [len(await events_of(app, lead)) for lead in leads] == [1] * 5


async def test_a_poll_asks_a_few_queries_however_many_leads_and_opportunities_there_are(
    app: App, salesforce: FakeSalesforce, clock: Clock
) -> None:
    leads = await route(app, salesforce, 450)
    before = len(salesforce.queries)
    for lead in leads:
        salesforce.add("Task", WhoId=lead, OwnerId=BEN, IsClosed=True, TaskSubtype="Call")
        opportunity = salesforce.add("Opportunity", IsClosed=True, IsWon=True, Amount=100)
        salesforce.update("Lead", lead, IsConverted=True, ConvertedOpportunityId=opportunity)
    later(clock, 1)

    recorded = await poll(app)

    assert recorded.stored == 450 * 3  # a touch, a conversion, a win each
    queries = salesforce.queries[before:]
    # The reps' users, one query per stream (2,000 records a page), and the opportunities found
    # back to their leads 200 ids at a time: the URL stays within Salesforce's limit (the fake
    # answers 414 beyond it).
    # The first Opportunity query also asks for CurrencyIsoCode, which this one-currency org
    # answers INVALID_FIELD: asked again without it, once for the life of the client.
    assert len(queries) == 1 + 5 + 3
    assert sum("ConvertedOpportunityId IN" in q for q in queries) == 3


def test_the_outcomes_job_is_declared_for_salesforce_when_the_policy_asks(app: App) -> None:
    jobs = {job.name: job for job in declare_jobs(app.policy, app.crm)}
    assert "outcomes:salesforce" in jobs
    job = jobs["outcomes:salesforce"]
    assert job.at_start
    assert job.what.startswith("every 5m: record the touches")


# --- currencies --------------------------------------------------------------------------------


@pytest.fixture
async def in_dollars(tmp_path: Path, clock: Clock) -> AsyncIterator[App]:
    """The app with LEADROUTER_CURRENCY=USD."""
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    settings = Settings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}",
        LEADROUTER_RULES=rules,
        SALESFORCE_INSTANCE_URL=INSTANCE,
        SALESFORCE_ACCESS_TOKEN=TOKEN,
        LEADROUTER_CURRENCY="USD",
    )
    application = bootstrap(settings, policy=load_policy(rules), clock=clock)
    await application.db.create_tables()
    yield application
    await application.close()


@pytest.fixture
def multi_currency(clock: Clock) -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce(INSTANCE, now=clock, multi_currency=True, corporate_currency="USD")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        yield fake


async def close_won(salesforce: FakeSalesforce, lead: str, amount: float, **currency: str) -> str:
    opportunity = salesforce.add(
        "Opportunity", IsClosed=True, IsWon=True, Amount=amount, CloseDate="2026-11-18", **currency
    )
    salesforce.update("Lead", lead, IsConverted=True, ConvertedOpportunityId=opportunity)
    return opportunity


async def left_out_notes(app: App) -> list[dict[str, object]]:
    async with app.db.reading() as session:
        rows = await session.execute(
            select(AuditEventRow).where(col(AuditEventRow.kind) == repo.AMOUNT_LEFT_OUT)
        )
        return [row.data for row in rows.scalars().all()]


async def test_in_a_multi_currency_org_a_deal_in_another_currency_is_won_without_its_amount(
    in_dollars: App, multi_currency: FakeSalesforce, clock: Clock
) -> None:
    euro_lead, dollar_lead = await route(in_dollars, multi_currency, 2)
    in_euros = await close_won(multi_currency, euro_lead, 30000.0, CurrencyIsoCode="EUR")
    await close_won(multi_currency, dollar_lead, 20000.0, CurrencyIsoCode="USD")
    later(clock, 1)

    await poll(in_dollars)

    euro_rows = await events_of(in_dollars, euro_lead)
    dollar_rows = await events_of(in_dollars, dollar_lead)
    assert [(r.kind, r.amount) for r in euro_rows] == [("converted", None), ("won", None)]
    assert [(r.kind, r.amount) for r in dollar_rows] == [
        ("converted", None),
        ("won", Decimal("20000.00")),
    ]
    [note] = await left_out_notes(in_dollars)
    assert note["currency"] == "EUR" and note["ours"] == "USD"
    assert note["source_key"] == f"Opportunity/{in_euros}"
    assert all("CurrencyIsoCode" in q for q in multi_currency.queries_of("Opportunity"))


async def test_a_one_currency_org_is_found_so_once_and_its_amounts_are_taken_as_ours(
    in_dollars: App, salesforce: FakeSalesforce, clock: Clock
) -> None:
    first, second = await route(in_dollars, salesforce, 2)
    await close_won(salesforce, first, 1500.0)
    later(clock, 1)
    await poll(in_dollars)
    await close_won(salesforce, second, 2500.0)
    later(clock, 1)
    await poll(in_dollars)

    amounts = [r.amount for lead in (first, second) for r in await events_of(in_dollars, lead)]
    assert amounts == [None, Decimal("1500.00"), None, Decimal("2500.00")]
    assert await left_out_notes(in_dollars) == []
    asked = ["CurrencyIsoCode" in q for q in salesforce.queries_of("Opportunity")]
    assert asked == [True, False, False]  # refused once (INVALID_FIELD), then never asked


async def test_without_a_currency_set_a_multi_currency_orgs_amounts_are_all_kept(
    app: App, multi_currency: FakeSalesforce, clock: Clock
) -> None:
    (lead,) = await route(app, multi_currency, 1)
    await close_won(multi_currency, lead, 700.0, CurrencyIsoCode="GBP")
    later(clock, 1)

    await poll(app)

    assert [r.amount for r in await events_of(app, lead)] == [None, Decimal("700.00")]
