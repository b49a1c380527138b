"""Salesforce end to end through `bootstrap`: new Leads polled and routed, Accounts synced, the
owner written back by the outbox worker, failures retried or surfaced.

simple-salesforce runs for real against `responses` (unregistered URLs fail; nothing leaves the
machine); the database is a real SQLite file; the clock is the test's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import select
from sqlmodel import col

from bot.bootstrap import App, bootstrap
from bot.crm.sync import LEADS_CURSOR, accounts_cursor, poll_salesforce_leads, sync_accounts
from bot.metrics import Metrics
from bot.policy_file import load_policy
from bot.reading import Viewer
from bot.service.crm import crm_cursor, move_crm_cursor
from bot.service.digests import load_digest
from bot.service.intake import intake
from bot.service.kinds import OutboxKind
from bot.service.offers import claim
from bot.settings import Settings
from storage.models import AccountRow, LeadRow, OutboxRow
from tests.service.conftest import Clock

INSTANCE = "https://acme.my.salesforce.com"
DATA = f"{INSTANCE}/services/data/v59.0"
QUERY = f"{DATA}/query/"
TOKEN = "00Dxx!flow-token"
ANN_USER, BEN_USER = "0055e00000AnnAAAAA", "0055e00000BenBBBBB"
CAT_USER = "0055e00000CatCCCCC"
NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
POLICY = """\
reps:
  - {id: ann, name: Ann Archer, email: ann@acme.example}
  - {id: ben, name: Ben Baker, email: Ben@Acme.example}
  - {id: cat, name: Cat Cole, salesforce_user_id: 0055e00000CatCCCCC}
managers:
  - {id: mia, name: Mia Moss}
teams:
  trio: {members: [ann, ben, cat], distribution: round_robin, manager: mia}
rules:
  - name: Everyone
    assign: {team: trio}
crm:
  salesforce:
    poll_leads_every: 1m
    sync_accounts_every: 15m
    tier_field: Tier__c
"""


def _sf_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _lead(number: int, created: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Lead"},
        "Id": f"00Q5e00000Lead{number:04d}",
        "CreatedDate": _sf_time(created),
        "Email": f"buyer{number}@corp{number}.example",
        "FirstName": "Pat",
        "LastName": f"Buyer {number}",
        "Company": f"Corp {number}",
        "NumberOfEmployees": 250,
        "LeadSource": "Web",
        **fields,
    }


def _page(records: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"totalSize": len(records), "done": next_url is None, "records": records}
    if next_url:
        page["nextRecordsUrl"] = next_url
    return page


def _soql(call: Any) -> str:
    return parse_qs(urlsplit(call.request.url).query).get("q", [""])[0]


def _users(*, cat_active: bool = True) -> dict[str, Any]:
    """The org's users (each User query is answered with them all): Ann and Ben found by
    email, Cat by the id the policy gives."""
    users = [(ANN_USER, "ann@acme.example", True), (BEN_USER, "ben@acme.example", True)]
    users.append((CAT_USER, None, cat_active))
    return _page(
        [
            {"attributes": {"type": "User"}, "Id": user, "Email": email, "IsActive": active}
            for user, email, active in users
        ]
    )


def _is_user_query(request: Any) -> tuple[bool, str]:
    query = parse_qs(urlsplit(request.url).query).get("q", [""])[0]
    return ("FROM User" in query, "not the User query")


def _is_query_of(sobject: str) -> Any:
    def match(request: Any) -> tuple[bool, str]:
        query = parse_qs(urlsplit(request.url).query).get("q", [""])[0]
        return (f"FROM {sobject}" in query, f"not a query of {sobject}")

    return match


@pytest.fixture
def salesforce() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


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


async def _leads(app: App) -> dict[str, LeadRow]:
    async with app.db.reading() as session:
        rows = (await session.execute(select(LeadRow))).scalars().all()
        return {row.external_id: row for row in rows}


async def _outbox(app: App, kind: str) -> list[OutboxRow]:
    async with app.db.reading() as session:
        rows = await session.execute(
            select(OutboxRow).where(col(OutboxRow.kind) == kind).order_by(col(OutboxRow.id))
        )
        return list(rows.scalars().all())


# --- leads in -----------------------------------------------------------------------------------


async def test_the_first_poll_routes_leads_of_the_last_15_minutes_across_pages(
    app: App, salesforce: responses.RequestsMock
) -> None:
    first, second = NOW - timedelta(minutes=10), NOW - timedelta(minutes=2)
    salesforce.get(
        QUERY,
        json=_page([_lead(1, first)], next_url="/services/data/v59.0/query/01g-2000"),
        match=[_is_query_of("Lead")],
    )
    salesforce.get(f"{QUERY}01g-2000", json=_page([_lead(2, second)]))

    result = await poll_salesforce_leads(
        app.uow, app.crm["salesforce"], first_look_back=timedelta(minutes=15)
    )

    assert (result.created, result.repeated, result.invalid) == (2, 0, 0)
    assert "CreatedDate >= 2026-11-17T17:00:00.000Z" in _soql(salesforce.calls[0])
    leads = await _leads(app)
    assert sorted(leads) == ["salesforce:00Q5e00000Lead0001", "salesforce:00Q5e00000Lead0002"]
    one = leads["salesforce:00Q5e00000Lead0001"]
    assert (one.crm_system, one.crm_id, one.status) == (
        "salesforce",
        "00Q5e00000Lead0001",
        "offered",
    )
    assert await crm_cursor(app.uow, LEADS_CURSOR) == second


async def test_the_next_poll_starts_two_minutes_behind_the_watermark_and_routes_each_lead_once(
    app: App, salesforce: responses.RequestsMock
) -> None:
    mark = NOW - timedelta(minutes=3)
    await move_crm_cursor(app.uow, LEADS_CURSOR, mark)
    # The lead at the watermark comes again (>=): intake knows it and routes only the new one.
    salesforce.get(QUERY, json=_page([_lead(1, mark)]), match=[_is_query_of("Lead")])
    await poll_salesforce_leads(app.uow, app.crm["salesforce"], first_look_back=timedelta())
    salesforce.replace(
        responses.GET,
        QUERY,
        json=_page([_lead(1, mark), _lead(2, NOW)]),
        match=[_is_query_of("Lead")],
    )
    result = await poll_salesforce_leads(
        app.uow, app.crm["salesforce"], first_look_back=timedelta()
    )
    assert (result.created, result.repeated) == (1, 1)
    assert "CreatedDate >= 2026-11-17T17:10:00.000Z" in _soql(salesforce.calls[0])  # overlap
    assert len(await _leads(app)) == 2
    assert await crm_cursor(app.uow, LEADS_CURSOR) == NOW


async def test_a_lead_saved_late_with_a_creation_time_behind_the_watermark_is_still_routed(
    app: App, salesforce: responses.RequestsMock
) -> None:
    # A lead's CreatedDate is its transaction's start: one that commits slowly (a flow, a
    # trigger, a bulk load) appears after a later lead has moved the watermark past it.
    mark = NOW - timedelta(minutes=3)
    await move_crm_cursor(app.uow, LEADS_CURSOR, mark)
    late = _lead(7, mark - timedelta(seconds=40))

    def created_since(request: Any) -> tuple[bool, str]:
        soql = parse_qs(urlsplit(request.url).query).get("q", [""])[0]
        since = soql.split("CreatedDate >= ")[1].split(" ")[0]
        wanted = datetime.fromisoformat(since.replace("Z", "+00:00"))
        return (wanted <= mark - timedelta(seconds=40), "the late lead is not asked for")

    salesforce.get(QUERY, json=_page([late]), match=[_is_query_of("Lead"), created_since])

    result = await poll_salesforce_leads(
        app.uow, app.crm["salesforce"], first_look_back=timedelta()
    )

    assert result.created == 1
    assert "salesforce:00Q5e00000Lead0007" in await _leads(app)
    assert await crm_cursor(app.uow, LEADS_CURSOR) == mark  # never moved back


async def test_a_poll_that_fails_half_way_keeps_the_committed_page_and_resumes_after_it(
    app: App, salesforce: responses.RequestsMock
) -> None:
    early = NOW - timedelta(minutes=9)
    salesforce.get(
        QUERY,
        json=_page([_lead(1, early)], next_url="/services/data/v59.0/query/01g-2000"),
        match=[_is_query_of("Lead")],
    )
    salesforce.get(f"{QUERY}01g-2000", status=503, json=[{"errorCode": "SERVER_UNAVAILABLE"}])
    with pytest.raises(Exception, match="Salesforce"):
        await poll_salesforce_leads(
            app.uow, app.crm["salesforce"], first_look_back=timedelta(minutes=15)
        )
    assert list(await _leads(app)) == ["salesforce:00Q5e00000Lead0001"]
    assert await crm_cursor(app.uow, LEADS_CURSOR) == early


async def test_a_salesforce_lead_that_is_not_a_valid_lead_is_counted_and_the_rest_are_routed(
    app: App, salesforce: responses.RequestsMock
) -> None:
    salesforce.get(
        QUERY,
        json=_page([_lead(1, NOW, Email="not an email"), _lead(2, NOW)]),
        match=[_is_query_of("Lead")],
    )
    result = await poll_salesforce_leads(
        app.uow, app.crm["salesforce"], first_look_back=timedelta(minutes=15)
    )
    assert (result.created, result.invalid) == (1, 1)
    assert list(await _leads(app)) == ["salesforce:00Q5e00000Lead0002"]


async def test_only_leads_owned_by_the_intake_queue_are_asked_for_when_one_is_named(
    tmp_path: Path, clock: Clock, salesforce: responses.RequestsMock
) -> None:
    rules = tmp_path / "queue.yml"
    rules.write_text(POLICY + "    intake_queue: 00G5e00000QuEuEABC\n", encoding="utf-8")
    settings = Settings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'q.db'}",
        SALESFORCE_INSTANCE_URL=INSTANCE,
        SALESFORCE_ACCESS_TOKEN=TOKEN,
    )
    application = bootstrap(settings, policy=load_policy(rules), clock=clock)
    await application.db.create_tables()
    try:
        salesforce.get(QUERY, json=_page([]), match=[_is_query_of("Lead")])
        await poll_salesforce_leads(
            application.uow, application.crm["salesforce"], first_look_back=timedelta()
        )
    finally:
        await application.close()
    assert "OwnerId = '00G5e00000QuEuEABC'" in _soql(salesforce.calls[0])


# --- accounts -----------------------------------------------------------------------------------


def _account(number: int, modified: datetime, owner: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Account"},
        "Id": f"0015e00000Acct{number:04d}",
        "Name": f"Account {number} Inc",
        "Website": f"https://www.account{number}.co.uk/about",
        "OwnerId": owner,
        "LastModifiedDate": _sf_time(modified),
        "Tier__c": "Gold",
        **fields,
    }


async def test_accounts_sync_maps_owners_to_reps_and_resumes_from_its_watermark(
    app: App, salesforce: responses.RequestsMock
) -> None:
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    t1, t2 = NOW - timedelta(days=2), NOW - timedelta(days=1)
    salesforce.get(
        QUERY,
        json=_page(
            [_account(1, t1, ANN_USER), _account(2, t1, "0055e00000NoRepXXX")],
            next_url="/services/data/v59.0/query/01g-acc",
        ),
        match=[_is_query_of("Account")],
    )
    salesforce.get(f"{QUERY}01g-acc", json=_page([_account(3, t2, "0055e00000CatCCCCC")]))

    result = await sync_accounts(app.uow, app.crm["salesforce"])

    assert (result.created, result.updated, result.unowned) == (3, 0, 1)
    async with app.db.reading() as session:
        rows = {a.id: a for a in (await session.execute(select(AccountRow))).scalars().all()}
    one = rows["0015e00000Acct0001"]
    assert (one.name, one.domain, one.owner_rep, one.tier, one.crm_system) == (
        "Account 1 Inc",
        "account1.co.uk",
        "ann",
        "Gold",
        "salesforce",
    )
    assert rows["0015e00000Acct0002"].owner_rep is None  # its owner is no rep
    assert rows["0015e00000Acct0003"].owner_rep == "cat"  # named in the policy, no lookup
    assert await crm_cursor(app.uow, accounts_cursor("salesforce")) == t2
    account_queries = [_soql(c) for c in salesforce.calls if "FROM Account" in _soql(c)]
    assert "WHERE" not in account_queries[0]  # the first sync takes every account

    salesforce.replace(
        responses.GET,
        QUERY,
        json=_page([_account(3, NOW, BEN_USER, Name="Account 3 Renamed")]),
        match=[_is_query_of("Account")],
    )
    again = await sync_accounts(app.uow, app.crm["salesforce"])
    assert (again.created, again.updated) == (0, 1)
    last = [_soql(c) for c in salesforce.calls if "FROM Account" in _soql(c)][-1]
    assert "LastModifiedDate >= 2026-11-16T17:13:00.000Z" in last  # two minutes' overlap
    async with app.db.reading() as session:
        renamed = await session.get(AccountRow, "0015e00000Acct0003")
    assert renamed is not None and (renamed.name, renamed.owner_rep) == ("Account 3 Renamed", "ben")


async def test_accounts_sync_stores_the_billing_country_as_its_code_and_the_billing_state(
    app: App, salesforce: responses.RequestsMock
) -> None:
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    then = NOW - timedelta(days=1)
    accounts = [
        _account(1, then, ANN_USER, BillingCountry="United Kingdom", BillingState="Greater London"),
        _account(2, then, ANN_USER, BillingCountry="deu", BillingState=" Bayern "),
        _account(3, then, ANN_USER, BillingCountry="Atlantis", BillingState=None),
        _account(4, then, ANN_USER, BillingCountry=None, BillingState=None),
    ]
    salesforce.get(QUERY, json=_page(accounts), match=[_is_query_of("Account")])

    result = await sync_accounts(app.uow, app.crm["salesforce"])

    assert result.created == 4
    async with app.db.reading() as session:
        rows = (await session.execute(select(AccountRow))).scalars().all()
    assert {row.id[-1]: (row.country, row.state) for row in rows} == {
        "1": ("GB", "Greater London"),
        "2": ("DE", "Bayern"),
        "3": (None, None),  # no country anyone knows: kept without one
        "4": (None, None),
    }
    (soql,) = [_soql(c) for c in salesforce.calls if "FROM Account" in _soql(c)]
    assert "BillingCountry, BillingState" in soql


async def test_a_new_version_of_the_policy_changes_the_fields_and_queue_salesforce_is_read_by(
    app: App, salesforce: responses.RequestsMock
) -> None:
    from routing.policy import parse_policy

    changed = POLICY.replace("Tier__c", "Segment__c") + "    intake_queue: 00G5e00000QuEuEABC\n"
    app.live.switch(parse_policy(changed))  # as serve does on SIGHUP or an activated version
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    salesforce.get(QUERY, json=_page([]), match=[_is_query_of("Account")])
    salesforce.get(QUERY, json=_page([]), match=[_is_query_of("Lead")])

    await sync_accounts(app.uow, app.crm["salesforce"])
    await poll_salesforce_leads(app.uow, app.crm["salesforce"], first_look_back=timedelta())

    (accounts,) = [_soql(c) for c in salesforce.calls if "FROM Account" in _soql(c)]
    assert "Segment__c" in accounts and "Tier__c" not in accounts
    (leads,) = [_soql(c) for c in salesforce.calls if "FROM Lead" in _soql(c)]
    assert "OwnerId = '00G5e00000QuEuEABC'" in leads


# --- write-back ---------------------------------------------------------------------------------


async def _claimed_salesforce_lead(app: App, external_id: str, crm_id: str) -> None:
    from routing.leads import parse_lead

    lead = parse_lead(
        {
            "id": external_id,
            "email": "pat@corp.example",
            "crm_system": "salesforce",
            "crm_id": crm_id,
        }
    )
    result = await intake(app.uow, lead)
    assert result.lead.rep is not None
    await claim(app.uow, external_id, by=result.lead.rep)


def _patches(salesforce: responses.RequestsMock) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(call.request.url), json.loads(call.request.body))
        for call in salesforce.calls
        if call.request.method == "PATCH"
    ]


async def test_a_claim_sets_the_lead_owner_to_the_reps_salesforce_user(
    app: App, salesforce: responses.RequestsMock
) -> None:
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    salesforce.patch(f"{DATA}/sobjects/Lead/00Q5e00000AbCdEFGH", status=204)
    await _claimed_salesforce_lead(app, "L-1", "00Q5e00000AbCdEFGH")  # ann's

    (worker,) = app.crm_workers
    assert await worker.deliver_due() == 1

    assert _patches(salesforce) == [
        (f"{DATA}/sobjects/Lead/00Q5e00000AbCdEFGH", {"OwnerId": ANN_USER})
    ]
    (item,) = await _outbox(app, OutboxKind.SALESFORCE_OWNER)
    assert item.done_at is not None and item.failed_at is None
    story = await app.reader.story("L-1", Viewer(rep=None, manager="mia"))
    assert story is not None and any("Owner set in Salesforce" in e.what for e in story.events)


async def test_a_rate_limited_write_is_retried_no_sooner_than_asked_and_then_succeeds(
    app: App, salesforce: responses.RequestsMock, clock: Clock
) -> None:
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    url = f"{DATA}/sobjects/Lead/00Q5e00000AbCdEFGH"
    salesforce.patch(url, status=503, headers={"Retry-After": "1"}, json=[{"errorCode": "X"}])
    await _claimed_salesforce_lead(app, "L-1", "00Q5e00000AbCdEFGH")
    (worker,) = app.crm_workers

    await worker.deliver_due()
    (item,) = await _outbox(app, OutboxKind.SALESFORCE_OWNER)
    assert item.done_at is None and item.failed_at is None and item.attempts == 1
    assert item.next_attempt_at >= NOW + timedelta(seconds=1)
    assert "503" in (item.last_error or "")
    assert await worker.deliver_due() == 0  # not due yet

    salesforce.replace(responses.PATCH, url, status=204)
    clock.advance(seconds=5)
    assert await worker.deliver_due() == 1
    (item,) = await _outbox(app, OutboxKind.SALESFORCE_OWNER)
    assert item.done_at is not None and item.attempts == 2
    assert len(_patches(salesforce)) == 2


async def test_a_write_back_outlasts_a_salesforce_outage_of_hours_and_is_written_once(
    app: App, salesforce: responses.RequestsMock, clock: Clock
) -> None:
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    url = f"{DATA}/sobjects/Lead/00Q5e00000AbCdEFGH"
    salesforce.patch(url, status=503, json=[{"errorCode": "SERVER_UNAVAILABLE"}])
    await _claimed_salesforce_lead(app, "L-1", "00Q5e00000AbCdEFGH")
    (worker,) = app.crm_workers

    down_until = clock() + timedelta(hours=6)  # a maintenance window
    while clock() < down_until:
        await worker.deliver_due()
        clock.advance(minutes=6)  # past the longest backoff
    (item,) = await _outbox(app, OutboxKind.SALESFORCE_OWNER)
    assert item.failed_at is None, item.last_error  # still to be tried, not given up
    assert item.attempts > 12

    salesforce.replace(responses.PATCH, url, status=204)
    assert await worker.deliver_due() == 1
    clock.advance(hours=1)
    assert await worker.deliver_due() == 0
    (item,) = await _outbox(app, OutboxKind.SALESFORCE_OWNER)
    assert item.done_at is not None
    written = [
        c for c in salesforce.calls if c.request.method == "PATCH" and c.response.status_code == 204
    ]
    assert len(written) == 1
    story = await app.reader.story("L-1", Viewer(rep=None, manager="mia"))
    assert story is not None
    told = [e.what for e in story.events if e.what.startswith("Owner")]
    assert told == [  # the first failure once, not each of the retries, then the write
        "Owner not yet set in Salesforce, trying again (Ann Archer) · Salesforce answered 503",
        "Owner set in Salesforce (Ann Archer)",
    ]


async def test_past_the_orgs_daily_request_limit_write_backs_wait_without_spending_calls(
    app: App, salesforce: responses.RequestsMock, clock: Clock
) -> None:
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    limit = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
    for n in (1, 2, 3):
        salesforce.patch(f"{DATA}/sobjects/Lead/00Q5e00000Lead000{n}", status=403, json=limit)
    (worker,) = app.crm_workers
    # One write meets the limit first (writes already under way then cannot be called back).
    await _claimed_salesforce_lead(app, "L-1", "00Q5e00000Lead0001")
    assert await worker.deliver_due() == 1
    for n in (2, 3):
        await _claimed_salesforce_lead(app, f"L-{n}", f"00Q5e00000Lead000{n}")

    assert await worker.deliver_due() == 2  # refused at once, no request sent
    clock.advance(minutes=6)  # past the longest backoff of an ordinary failure
    assert await worker.deliver_due() == 0  # nothing due: they wait for the limit

    assert len(_patches(salesforce)) == 1  # one write met the limit; the others were not sent
    items = await _outbox(app, OutboxKind.SALESFORCE_OWNER)
    assert all(i.failed_at is None and i.attempts == 1 for i in items)  # waiting, not given up
    assert all(i.next_attempt_at >= NOW + timedelta(minutes=29) for i in items)
    assert all("last 24 hours is used up" in (i.last_error or "") for i in items)


async def test_a_deleted_lead_is_given_up_at_once_and_shows_in_why_and_the_digest(
    app: App, salesforce: responses.RequestsMock, clock: Clock
) -> None:
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    salesforce.patch(
        f"{DATA}/sobjects/Lead/00Q5e00000GoneAAAA",
        status=404,
        json=[{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
    )
    await _claimed_salesforce_lead(app, "L-gone", "00Q5e00000GoneAAAA")
    (worker,) = app.crm_workers
    await worker.deliver_due()
    clock.advance(hours=1)
    assert await worker.deliver_due() == 0  # given up: never tried again

    (item,) = await _outbox(app, OutboxKind.SALESFORCE_OWNER)
    assert item.failed_at is not None and item.attempts == 1
    assert "no such record" in (item.last_error or "")
    story = await app.reader.story("L-gone", Viewer(rep=None, manager="mia"))
    assert story is not None
    (failed,) = [e.what for e in story.events if "NOT set" in e.what]
    assert "Salesforce" in failed and "no such record" in failed
    async with app.db.reading() as session:
        digest = await load_digest(
            session, app.policy, manager_id="mia", since=NOW - timedelta(hours=1), now=clock()
        )
    assert digest.crm_failures_total == 1
    assert digest.crm_failures[0].lead_id == "L-gone"


async def test_write_backs_given_up_for_an_expired_token_go_out_once_after_crm_retry(
    tmp_path: Path, salesforce: responses.RequestsMock
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    url = f"sqlite+aiosqlite:///{tmp_path / 'retry.db'}"
    env = {"DATABASE_URL": url, "LEADROUTER_RULES": str(rules)}
    upgraded = CliRunner().invoke(cli, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    settings = Settings(
        DATABASE_URL=url,
        LEADROUTER_RULES=rules,
        SALESFORCE_INSTANCE_URL=INSTANCE,
        SALESFORCE_ACCESS_TOKEN=TOKEN,
    )
    clock = Clock(datetime.now(UTC))  # the command queues by the time it reads itself
    app = bootstrap(settings, policy=load_policy(rules), clock=clock)
    try:
        salesforce.get(QUERY, json=_users(), match=[_is_user_query])
        lead_url = f"{DATA}/sobjects/Lead/00Q5e00000AbCdEFGH"
        expired = [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]
        salesforce.patch(lead_url, status=401, json=expired)
        await _claimed_salesforce_lead(app, "L-1", "00Q5e00000AbCdEFGH")
        (worker,) = app.crm_workers
        await worker.deliver_due()
        (item,) = await _outbox(app, OutboxKind.SALESFORCE_OWNER)
        assert item.failed_at is not None and "SALESFORCE_ACCESS_TOKEN" in (item.last_error or "")

        # The admin sets a new token, then asks for what was given up to be tried again.
        # (The command runs its own event loop: on a thread of its own here.)
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["crm", "retry"], env=env)
        assert result.exit_code == 0, result.output
        assert "1 CRM item given up is queued again" in " ".join(result.output.split())
        again = await asyncio.to_thread(CliRunner().invoke, cli, ["crm", "retry"], env=env)
        assert "nothing given up" in again.output  # once queued, it is no longer given up

        salesforce.replace(responses.PATCH, lead_url, status=204)
        clock.advance(seconds=5)
        assert await worker.deliver_due() == 1
        clock.advance(hours=1)
        assert await worker.deliver_due() == 0
        (item,) = await _outbox(app, OutboxKind.SALESFORCE_OWNER)
        story = await app.reader.story("L-1", Viewer(rep=None, manager="mia"))
    finally:
        await app.close()
    assert item.done_at is not None and item.failed_at is None
    patched = [c.response.status_code for c in salesforce.calls if c.request.method == "PATCH"]
    assert patched == [401, 204]
    assert story is not None
    owner_events = [e.what for e in story.events if "Owner" in e.what]
    assert len(owner_events) == 2
    assert owner_events[0].startswith("Owner NOT set in Salesforce, given up")
    assert owner_events[1].startswith("Owner set in Salesforce")


async def test_a_write_back_given_up_and_one_retried_are_counted_in_the_metrics(
    app: App, salesforce: responses.RequestsMock, clock: Clock
) -> None:
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    salesforce.patch(f"{DATA}/sobjects/Lead/00Q5e00000GoneAAAA", status=404, json=[{}])
    salesforce.patch(f"{DATA}/sobjects/Lead/00Q5e00000BusyAAAA", status=503, json=[{}])
    await _claimed_salesforce_lead(app, "L-gone", "00Q5e00000GoneAAAA")
    await _claimed_salesforce_lead(app, "L-busy", "00Q5e00000BusyAAAA")
    (worker,) = app.crm_workers
    await worker.deliver_due()

    text = (await Metrics().scrape(app)).decode()
    assert 'leadrouter_crm_writebacks_given_up_total{crm="salesforce"} 1.0' in text
    assert 'leadrouter_crm_writebacks_failed_total{crm="salesforce"} 2.0' in text


async def test_a_rep_with_no_salesforce_user_is_a_failure_that_says_what_to_set(
    tmp_path: Path, clock: Clock, salesforce: responses.RequestsMock
) -> None:
    rules = tmp_path / "nouser.yml"
    rules.write_text(POLICY.replace("Ben@Acme.example", "ben@elsewhere.example"), encoding="utf-8")
    settings = Settings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'n.db'}",
        SALESFORCE_INSTANCE_URL=INSTANCE,
        SALESFORCE_ACCESS_TOKEN=TOKEN,
    )
    application = bootstrap(settings, policy=load_policy(rules), clock=clock)
    await application.db.create_tables()
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    try:
        from routing.leads import parse_lead

        for n in (1, 2):  # round robin: ann, then ben
            lead = {"id": f"L-{n}", "crm_system": "salesforce", "crm_id": f"00Q5e00000Lead000{n}"}
            result = await intake(application.uow, parse_lead(lead))
            assert result.lead.rep is not None
            await claim(application.uow, f"L-{n}", by=result.lead.rep)
        salesforce.patch(f"{DATA}/sobjects/Lead/00Q5e00000Lead0001", status=204)
        await application.crm_workers[0].deliver_due()
        items = await _outbox(application, OutboxKind.SALESFORCE_OWNER)
    finally:
        await application.close()
    assert [i.payload["rep"] for i in items] == ["ann", "ben"]
    assert items[0].done_at is not None
    assert items[1].failed_at is not None
    assert "salesforce_user_id" in (items[1].last_error or "")
    assert "ben@elsewhere.example" in (items[1].last_error or "")


async def test_an_owner_or_permission_salesforce_refuses_is_given_up_saying_what_to_fix(
    app: App, salesforce: responses.RequestsMock
) -> None:
    from routing.leads import parse_lead

    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    refusals = {  # by the rep the lead went to: ann and ben found by email, cat given outright
        "ann": (400, "INACTIVE_OWNER_OR_USER", "operation performed with inactive user"),
        "ben": (403, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id"),
        "cat": (400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"),
    }
    for n in (1, 2, 3):
        lead_id = f"00Q5e00000Lead000{n}"
        lead = {"id": f"L-{n}", "crm_system": "salesforce", "crm_id": lead_id}
        rep = (await intake(app.uow, parse_lead(lead))).lead.rep
        assert rep is not None
        await claim(app.uow, f"L-{n}", by=rep)
        status, code, message = refusals[rep]
        salesforce.patch(
            f"{DATA}/sobjects/Lead/{lead_id}",
            status=status,
            json=[{"errorCode": code, "message": message, "fields": ["OwnerId"]}],
        )
    (worker,) = app.crm_workers
    assert await worker.deliver_due() == 3

    items = {i.payload["rep"]: i for i in await _outbox(app, OutboxKind.SALESFORCE_OWNER)}
    assert all(i.failed_at is not None and i.attempts == 1 for i in items.values())
    assert items["ann"].last_error == (
        "Salesforce refused it: INACTIVE_OWNER_OR_USER operation performed with inactive user; "
        "it is the Salesforce user with rep ann's email: reactivate the user, or set "
        "salesforce_user_id on the rep, then `leadrouter crm retry`"
    )
    assert items["ben"].last_error == (
        "Salesforce refused it: INSUFFICIENT_ACCESS_OR_READONLY insufficient access rights on "
        "object id: the Salesforce user leadrouter logs in as may not change this lead's owner; "
        "give it Edit on Leads and Transfer Leads (`leadrouter crm check` checks them) and "
        "access to the lead (sharing rules), then `leadrouter crm retry`"
    )
    assert items["cat"].last_error == (
        "Salesforce refused it: INVALID_CROSS_REFERENCE_KEY invalid cross reference id; it is "
        "rep cat's salesforce_user_id in the policy: give an active Salesforce owner's id "
        "(`leadrouter crm check` checks them), then `leadrouter crm retry`"
    )
    leads = await _leads(app)
    assert {lead.status for lead in leads.values()} == {"claimed"}  # routing went on as ever


async def test_write_backs_survive_a_restart(
    tmp_path: Path, clock: Clock, salesforce: responses.RequestsMock
) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    settings = Settings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}",
        SALESFORCE_INSTANCE_URL=INSTANCE,
        SALESFORCE_ACCESS_TOKEN=TOKEN,
    )
    first = bootstrap(settings, policy=load_policy(rules), clock=clock)
    await first.db.create_tables()
    await _claimed_salesforce_lead(first, "L-1", "00Q5e00000AbCdEFGH")
    await first.close()  # stopped before its worker ran

    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    salesforce.patch(f"{DATA}/sobjects/Lead/00Q5e00000AbCdEFGH", status=204)
    second = bootstrap(settings, policy=load_policy(rules), clock=clock)
    try:
        assert await second.crm_workers[0].deliver_due() == 1
    finally:
        await second.close()
    assert _patches(salesforce) == [
        (f"{DATA}/sobjects/Lead/00Q5e00000AbCdEFGH", {"OwnerId": ANN_USER})
    ]


# --- the command line and the jobs -------------------------------------------------------------


def test_crm_check_lists_the_connection_each_reps_owner_and_who_is_missing(
    tmp_path: Path, salesforce: responses.RequestsMock
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY.replace("Ben@Acme.example", "ben@elsewhere.example"), encoding="utf-8")
    salesforce.get(f"{DATA}/limits", json={"DailyApiRequests": {"Max": 100000, "Remaining": 99000}})
    salesforce.get(f"{DATA}/sobjects/Lead/describe", json=_describe(OwnerId=True))
    salesforce.get(f"{DATA}/sobjects/Account/describe", json=_describe(Tier__c=False))
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    env = {
        "SALESFORCE_INSTANCE_URL": INSTANCE,
        "SALESFORCE_ACCESS_TOKEN": TOKEN,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
    }
    result = CliRunner().invoke(cli, ["crm", "check", "--rules", str(rules)], env=env)
    assert result.exit_code == 1, result.output
    assert (
        "Salesforce: connected to acme.my.salesforce.com, 99000 API requests left" in result.output
    )
    assert f"ann -> {ANN_USER} (by email)" in result.output
    assert "cat -> 0055e00000CatCCCCC (set in the policy)" in result.output
    assert "missing: no active Salesforce user has rep ben's email ben@elsewhere.example" in (
        result.output
    )
    assert "1 problem(s)" in result.output
    assert TOKEN not in result.output


def test_crm_check_says_when_the_user_id_the_policy_gives_a_rep_is_inactive(
    tmp_path: Path, salesforce: responses.RequestsMock
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    salesforce.get(f"{DATA}/limits", json={"DailyApiRequests": {"Remaining": 99000}})
    salesforce.get(f"{DATA}/sobjects/Lead/describe", json=_describe(OwnerId=True))
    salesforce.get(f"{DATA}/sobjects/Account/describe", json=_describe(Tier__c=True))
    salesforce.get(QUERY, json=_users(cat_active=False), match=[_is_user_query])
    env = {"SALESFORCE_INSTANCE_URL": INSTANCE, "SALESFORCE_ACCESS_TOKEN": TOKEN}
    result = CliRunner().invoke(cli, ["crm", "check", "--rules", str(rules)], env=env)

    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert (
        f"problem: rep cat's salesforce_user_id {CAT_USER} is an inactive Salesforce user: "
        "give an active user's id, or remove it to find the rep by their email" in output
    )
    assert "1 problem(s) to fix" in output
    (asked,) = [_soql(c) for c in salesforce.calls if "WHERE Id IN" in _soql(c)]
    assert asked == f"SELECT Id, IsActive FROM User WHERE Id IN ('{CAT_USER}')"


async def test_crm_check_counts_the_write_backs_given_up_and_failing_with_the_latest_error(
    tmp_path: Path, salesforce: responses.RequestsMock
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    url = f"sqlite+aiosqlite:///{tmp_path / 'check.db'}"
    env = {
        "DATABASE_URL": url,
        "LEADROUTER_RULES": str(rules),
        "SALESFORCE_INSTANCE_URL": INSTANCE,
        "SALESFORCE_ACCESS_TOKEN": TOKEN,
    }
    upgraded = CliRunner().invoke(cli, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    settings = Settings(
        DATABASE_URL=url,
        LEADROUTER_RULES=rules,
        SALESFORCE_INSTANCE_URL=INSTANCE,
        SALESFORCE_ACCESS_TOKEN=TOKEN,
    )
    app = bootstrap(settings, policy=load_policy(rules), clock=Clock(datetime.now(UTC)))
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    salesforce.patch(f"{DATA}/sobjects/Lead/00Q5e00000GoneAAAA", status=404, json=[{}])
    salesforce.patch(f"{DATA}/sobjects/Lead/00Q5e00000BusyAAAA", status=503, json=[{}])
    try:
        await _claimed_salesforce_lead(app, "L-gone", "00Q5e00000GoneAAAA")
        await _claimed_salesforce_lead(app, "L-busy", "00Q5e00000BusyAAAA")
        await app.crm_workers[0].deliver_due()
    finally:
        await app.close()
    salesforce.get(f"{DATA}/limits", json={"DailyApiRequests": {"Remaining": 99000}})
    salesforce.get(f"{DATA}/sobjects/Lead/describe", json=_describe(OwnerId=True))
    salesforce.get(f"{DATA}/sobjects/Account/describe", json=_describe(Tier__c=True))

    # The command runs its own event loop: on a thread of its own here.
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["crm", "check"], env=env)
    missing = tmp_path / "none.db"
    no_database = {**env, "DATABASE_URL": f"sqlite+aiosqlite:///{missing}"}
    unread = await asyncio.to_thread(CliRunner().invoke, cli, ["crm", "check"], env=no_database)

    assert result.exit_code == 0, result.output  # what serve gave up is no problem of the setup
    output = " ".join(result.output.split())
    assert (
        "given up: 1 owner write-back (the latest: Salesforce has no such record (deleted or "
        "merged?)); once that is fixed, `leadrouter crm retry` queues it again" in output
    )
    assert "failing: 1 owner write-back, tried again (the latest: Salesforce answered 503)" in (
        output
    )
    assert TOKEN not in result.output
    assert unread.exit_code == 0, unread.output
    assert "note: CRM items given up or failing are not counted: no database at" in " ".join(
        unread.output.split()
    )
    assert not missing.exists()  # looked for, never made


def _describe(**fields: bool) -> dict[str, Any]:
    """An object's describe as the Salesforce user sees it: each field, and if it may edit it."""
    return {
        "updateable": True,
        "fields": [{"name": name, "updateable": edit} for name, edit in fields.items()],
    }


def test_crm_check_says_when_the_user_cannot_change_owners_or_a_policy_field_is_not_there(
    tmp_path: Path, salesforce: responses.RequestsMock
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")  # tier_field: Tier__c, accounts synced
    salesforce.get(f"{DATA}/limits", json={"DailyApiRequests": {"Remaining": 99000}})
    salesforce.get(f"{DATA}/sobjects/Lead/describe", json=_describe(OwnerId=False))
    salesforce.get(f"{DATA}/sobjects/Account/describe", json=_describe(Tier=False))
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    env = {"SALESFORCE_INSTANCE_URL": INSTANCE, "SALESFORCE_ACCESS_TOKEN": TOKEN}
    result = CliRunner().invoke(cli, ["crm", "check", "--rules", str(rules)], env=env)

    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "problem: the Salesforce user cannot edit a Lead's owner (Lead.OwnerId)" in output
    assert "crm.salesforce.tier_field Tier__c is no field of Account" in output
    assert "2 problem(s) to fix" in output  # every rep has a user
    assert TOKEN not in result.output


def test_crm_check_says_when_the_user_cannot_read_accounts_at_all(
    tmp_path: Path, salesforce: responses.RequestsMock
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")  # accounts synced
    salesforce.get(f"{DATA}/limits", json={"DailyApiRequests": {"Remaining": 99000}})
    salesforce.get(f"{DATA}/sobjects/Lead/describe", json=_describe(OwnerId=True))
    gone = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
    salesforce.get(f"{DATA}/sobjects/Account/describe", status=404, json=gone)
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    env = {"SALESFORCE_INSTANCE_URL": INSTANCE, "SALESFORCE_ACCESS_TOKEN": TOKEN}
    result = CliRunner().invoke(cli, ["crm", "check", "--rules", str(rules)], env=env)

    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "connected to acme.my.salesforce.com" in output  # not "cannot connect"
    assert "problem: the Salesforce user cannot read Account records" in output
    assert "ann -> " in output  # the mapping is still checked


def test_crm_check_says_when_the_intake_queue_is_no_queue_in_salesforce(
    tmp_path: Path, salesforce: responses.RequestsMock
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY + "    intake_queue: 00G5e00000QuEuEABC\n", encoding="utf-8")
    salesforce.get(f"{DATA}/limits", json={"DailyApiRequests": {"Remaining": 99000}})
    salesforce.get(f"{DATA}/sobjects/Lead/describe", json=_describe(OwnerId=True))
    salesforce.get(f"{DATA}/sobjects/Account/describe", json=_describe(Tier__c=True))
    salesforce.get(QUERY, json=_page([]), match=[_is_query_of("Group")])
    salesforce.get(QUERY, json=_users(), match=[_is_user_query])
    env = {"SALESFORCE_INSTANCE_URL": INSTANCE, "SALESFORCE_ACCESS_TOKEN": TOKEN}
    result = CliRunner().invoke(cli, ["crm", "check", "--rules", str(rules)], env=env)

    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "crm.salesforce.intake_queue 00G5e00000QuEuEABC is no queue" in output
    (group,) = [_soql(c) for c in salesforce.calls if "FROM Group" in _soql(c)]
    assert "Type = 'Queue' AND Id = '00G5e00000QuEuEABC'" in group


def test_crm_check_says_so_when_the_token_is_refused_without_repeating_it(
    tmp_path: Path, salesforce: responses.RequestsMock
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    salesforce.get(
        f"{DATA}/limits",
        status=401,
        json=[{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}],
    )
    env = {"SALESFORCE_INSTANCE_URL": INSTANCE, "SALESFORCE_ACCESS_TOKEN": TOKEN}
    result = CliRunner().invoke(cli, ["crm", "check", "--rules", str(rules)], env=env)
    assert result.exit_code == 1
    assert "Salesforce: cannot connect:" in result.output
    assert "SALESFORCE_ACCESS_TOKEN" in result.output and TOKEN not in result.output


def test_without_credentials_crm_check_names_the_settings_to_give(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    result = CliRunner().invoke(cli, ["crm", "check", "--rules", str(rules)], env={})
    assert result.exit_code == 1
    assert "no CRM is configured" in result.output and "HUBSPOT_ACCESS_TOKEN" in result.output


async def test_the_crm_jobs_exist_only_for_a_configured_crm_and_run_through_the_service(
    app: App, salesforce: responses.RequestsMock
) -> None:
    from bot.jobs import declare_jobs

    assert {job.name for job in declare_jobs(app.policy)} == {
        "sla-sweep",
        "report",
        "waiting-events",
    }
    jobs = {job.name: job for job in declare_jobs(app.policy, app.crm)}
    assert set(jobs) == {
        "sla-sweep",
        "report",
        "waiting-events",
        "salesforce-leads",
        "accounts:salesforce",
    }
    assert jobs["salesforce-leads"].at_start and jobs["accounts:salesforce"].at_start

    salesforce.get(QUERY, json=_page([_lead(1, NOW)]), match=[_is_query_of("Lead")])
    await jobs["salesforce-leads"].call(app.uow)
    assert list(await _leads(app)) == ["salesforce:00Q5e00000Lead0001"]
