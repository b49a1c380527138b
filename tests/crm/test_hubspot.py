"""`HubSpotCrm` over the real hubspot-api-client, against a fake HubSpot on a loopback port;
and `CrmCalls`, the runner every CRM call goes through (concurrency bound, Retry-After pause).

The client is synchronous and the fake runs on the test's event loop, so each call is made from
a thread (`asyncio.to_thread`, or `CrmCalls`' own pool)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from bot.crm.base import (
    DAILY_LIMIT_WAIT_S,
    AccountPage,
    CrmCalls,
    CrmDailyLimit,
    CrmOwnerRefused,
    CrmPermanent,
    CrmTransient,
)
from bot.crm.hubspot import HubSpotCrm, client
from tests.fakes.hubspot import TOKEN, FakeHubSpot, millis

T = TypeVar("T")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot() as hubspot:
        yield hubspot


def crm_for(fake: FakeHubSpot, *, token: str = TOKEN, tier: str | None = "tier") -> HubSpotCrm:
    return HubSpotCrm(
        client(access_token=token, api_url=fake.url, concurrency=4),
        tier_property=tier,
        search_interval_s=0,  # the fake takes searches as fast as they come
    )


@pytest.fixture
def crm(fake: FakeHubSpot) -> HubSpotCrm:
    return crm_for(fake)


async def call(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


async def read_accounts(crm: HubSpotCrm, since: datetime | None) -> list[AccountPage]:
    return await call(lambda: list(crm.accounts_modified_since(since)))


# --- owners --------------------------------------------------------------------------------


async def test_owners_are_found_by_email_across_several_pages(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    ids = [
        fake.add_owner(f"rep{n}@acme.example", first_name="Rep", last_name=str(n))
        for n in range(250)
    ]

    found = await call(
        crm.owners_by_email,
        ["rep3@acme.example", " REP249@Acme.Example ", "nobody@acme.example", ""],
    )

    assert found == {"rep3@acme.example": ids[3], "rep249@acme.example": ids[249]}
    pages = fake.calls("GET", "/crm/v3/owners")
    assert [r.query.get("after") for r in pages] == [None, ["100"], ["200"]]


async def test_an_archived_owner_is_not_an_owner_to_assign(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    fake.add_owner("gone@acme.example", archived=True)
    assert await call(crm.owners_by_email, ["gone@acme.example"]) == {}


# --- the owner of a contact ----------------------------------------------------------------


async def test_set_owner_patches_hubspot_owner_id_and_the_contact_changes(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    owner = fake.add_owner("ann@acme.example")
    contact = fake.add_contact(email="cto@bigco.example")

    await call(crm.set_owner, contact, owner)

    assert fake.patches == [(contact, {"hubspot_owner_id": owner})]
    assert fake.contacts[contact].properties["hubspot_owner_id"] == owner
    (patch,) = fake.calls("PATCH")
    assert patch.path == f"/crm/v3/objects/contacts/{contact}" and patch.status == 200


async def test_a_merged_contacts_old_id_sets_the_owner_on_the_merged_record_and_says_so(
    fake: FakeHubSpot, crm: HubSpotCrm, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.crm.hubspot")
    owner = fake.add_owner("ann@acme.example")
    routed = fake.add_contact(email="cto@bigco.example", hubspot_owner_id="77")
    duplicate = fake.add_contact(email="cto@bigco.example")
    merged = fake.merge_contacts(duplicate, routed)  # HubSpot makes a new record of the two

    await call(crm.set_owner, routed, owner)  # the id the lead was routed with

    assert fake.contacts[merged].properties["hubspot_owner_id"] == owner
    assert fake.patches == [(merged, {"hubspot_owner_id": owner})]
    assert f"HubSpot contact {routed} was merged into contact {merged}" in caplog.text


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("set_owner", ("abc", "101")),
        ("set_owner", ("101", "ann@acme.example")),
        ("set_owner", ("../owners/101", "101")),
        ("set_owner", ("101?archived=true", "101")),
        ("set_owner", ("", "101")),
        ("set_owner", ("١٠١", "101")),  # digits, but not ASCII ones
        ("lead", ("1 OR 1=1",)),
        ("lead", ("-5",)),
        ("lead", ("9" * 21,)),
    ],
)
async def test_an_id_that_is_not_a_hubspot_number_is_refused_before_any_request(
    fake: FakeHubSpot, crm: HubSpotCrm, method: str, args: tuple[str, ...]
) -> None:
    fake.add_owner("ann@acme.example", owner_id="101")
    fake.add_contact("101")
    with pytest.raises(CrmPermanent, match="is not a HubSpot"):
        await call(getattr(crm, method), *args)
    assert fake.requests == []


async def test_a_contact_hubspot_does_not_have_is_a_permanent_failure(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    owner = fake.add_owner("ann@acme.example")
    with pytest.raises(CrmPermanent, match="no such record"):
        await call(crm.set_owner, "424242", owner)
    with pytest.raises(CrmPermanent, match="no such record"):
        await call(crm.lead, "424242")
    assert [r.status for r in fake.requests] == [404, 404]
    assert fake.patches == []


async def test_hubspot_is_not_polled_for_new_leads_its_webhook_announces_them(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    with pytest.raises(CrmPermanent, match="webhook") as raised:
        await call(crm.new_leads, None)
    assert "POST /webhooks/hubspot" in str(raised.value)  # the address the server listens at
    assert fake.requests == []


async def test_an_owner_hubspot_does_not_know_is_an_owner_refused_in_hubspots_own_words(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    contact = fake.add_contact(email="cto@bigco.example", hubspot_owner_id="77")

    with pytest.raises(CrmOwnerRefused) as raised:
        await call(crm.set_owner, contact, "999999")

    assert str(raised.value) == "HubSpot refused the owner: 999999 is not a valid owner id"
    assert fake.patches == []
    assert fake.contacts[contact].properties["hubspot_owner_id"] == "77"


# --- failures ------------------------------------------------------------------------------


async def test_a_rate_limit_is_transient_and_carries_hubspots_retry_after(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    contact = fake.add_contact(email="cto@bigco.example")
    fake.fail_next(429, headers={"Retry-After": "3"})

    with pytest.raises(CrmTransient) as raised:
        await call(crm.lead, contact)

    assert raised.value.retry_after == 3.0
    assert "429" in str(raised.value)
    # HubSpot let the next one through: it is answered.
    assert (await call(crm.lead, contact)).crm_id == contact


def daily_limit() -> dict[str, Any]:
    """HubSpot's answer once the account's calls for the day are spent."""
    return {
        "status": "error",
        "message": "You have reached your daily limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "5d8a0c5e-0000-4000-8000-000000000000",
        "policyName": "DAILY",
        "groupName": "daily-limit",
    }


async def test_the_daily_limit_is_told_apart_from_the_short_rate_limits_and_says_when_it_resets(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    contact = fake.add_contact(email="cto@bigco.example")
    fake.fail_next(429, body=daily_limit())
    fake.fail_next(429)  # HubSpot's secondly limit, without a Retry-After

    with pytest.raises(CrmDailyLimit) as daily:
        await call(crm.lead, contact)
    with pytest.raises(CrmTransient) as secondly:
        await call(crm.lead, contact)

    assert "daily API call limit" in str(daily.value)
    assert "midnight in the HubSpot account's time zone" in str(daily.value)
    assert not isinstance(secondly.value, CrmDailyLimit)
    assert str(secondly.value) == "HubSpot answered 429"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, None),
        (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
        (503, None),
        (504, b""),
    ],
)
async def test_a_server_error_is_transient_with_no_wait_of_its_own(
    fake: FakeHubSpot, crm: HubSpotCrm, status: int, body: bytes | None
) -> None:
    owner = fake.add_owner("ann@acme.example")
    contact = fake.add_contact(email="cto@bigco.example")
    fake.fail_next(status, body=body)

    with pytest.raises(CrmTransient) as raised:
        await call(crm.set_owner, contact, owner)

    assert str(status) in str(raised.value)
    assert raised.value.retry_after is None
    assert fake.patches == []


async def test_a_wrong_token_is_permanent_names_the_setting_and_never_shows_the_token(
    fake: FakeHubSpot,
) -> None:
    wrong = "pat-na1-11111111-2222-3333-4444-revoked-token"
    crm = crm_for(fake, token=wrong)

    with pytest.raises(CrmPermanent) as raised:
        await call(crm.owners_by_email, ["ann@acme.example"])

    message = str(raised.value)
    assert "HUBSPOT_ACCESS_TOKEN" in message
    assert "Private Apps → the app → Auth" in message and "leadrouter crm retry" in message
    assert wrong not in message and "revoked-token" not in message
    assert [r.status for r in fake.requests] == [401]


async def test_a_token_without_a_scope_a_call_needs_is_told_which_scope_to_add() -> None:
    scopes = {"crm.objects.owners.read", "crm.objects.contacts.read"}
    async with FakeHubSpot(scopes=scopes) as fake:
        crm = crm_for(fake)
        with pytest.raises(CrmPermanent) as raised:
            await read_accounts(crm, None)
        await call(crm.owners_by_email, ["ann@acme.example"])  # a scope it has: no refusal

    message = str(raised.value)
    assert "crm.objects.companies.read" in message
    assert "HUBSPOT_ACCESS_TOKEN" in message and TOKEN not in message
    assert [r.status for r in fake.requests] == [403, 200]


async def test_hubspot_out_of_reach_is_transient(fake: FakeHubSpot) -> None:
    url = fake.url
    await fake.close()  # nothing listens on the port now
    crm = HubSpotCrm(client(access_token=TOKEN, api_url=url, concurrency=1))
    with pytest.raises(CrmTransient, match="could not be reached"):
        await call(crm.lead, "101")


# --- contacts as leads ---------------------------------------------------------------------


async def test_a_contact_is_read_as_a_lead_in_the_field_names_routing_reads(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    contact = fake.add_contact(
        email="cto@bigco.example",
        firstname="Grace",
        lastname="Hopper",
        company="BigCo",
        website="https://bigco.example",
        jobtitle="CTO",
        phone="",  # HubSpot keeps an emptied property as ""
        country="United States",
        state="CA",
        industry="COMPUTER_SOFTWARE",
        numemployees="5000",
        hs_analytics_source="PAID_SEARCH",
        favourite_colour="teal",  # a property leadrouter does not read
    )

    record = await call(crm.lead, contact)

    assert record.crm_id == contact
    assert record.values == {
        "email": "cto@bigco.example",
        "first_name": "Grace",
        "last_name": "Hopper",
        "company": "BigCo",
        "website": "https://bigco.example",
        "title": "CTO",
        "country": "United States",
        "state": "CA",
        "industry": "COMPUTER_SOFTWARE",
        "employees": "5000",
        "source": "PAID_SEARCH",
    }
    created = fake.contacts[contact].created_at
    assert abs(record.created_at - created) < timedelta(milliseconds=1)
    (request,) = fake.requests
    assert "numemployees" in request.query["properties"]
    assert "favourite_colour" not in request.query["properties"]


async def test_calls_through_one_adapter_share_its_connections(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    contact = fake.add_contact(email="cto@bigco.example")
    for _ in range(5):
        await call(crm.lead, contact)
    assert len({r.peer_port for r in fake.requests}) == 1


# --- companies as accounts -----------------------------------------------------------------


def add_companies(fake: FakeHubSpot, count: int) -> list[str]:
    """`count` companies changed a minute apart, created (so numbered) in shuffled order;
    returns their ids oldest change first."""
    minutes = list(range(count))
    random.Random(7).shuffle(minutes)
    by_minute = {
        minute: fake.add_company(
            modified_at=START + timedelta(minutes=minute), name=f"Company {minute}"
        )
        for minute in minutes
    }
    return [by_minute[minute] for minute in range(count)]


async def test_accounts_are_paged_through_oldest_change_first_from_since(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    ids = add_companies(fake, 250)
    since = START + timedelta(minutes=20)

    pages = await read_accounts(crm, since)

    assert [len(page.accounts) for page in pages] == [100, 100, 30]
    read = [account for page in pages for account in page.accounts]
    assert [a.id for a in read] == ids[20:]  # the one changed exactly at `since` included
    assert read[0].modified_at == since
    for page in pages:
        assert page.last_modified == max(a.modified_at for a in page.accounts)
    searches = fake.calls("POST", "/crm/v3/objects/companies/search")
    assert len(searches) == 3
    assert searches[0].body["filterGroups"] == [
        {
            "filters": [
                {
                    "propertyName": "hs_lastmodifieddate",
                    "operator": "GTE",
                    "value": str(millis(since)),
                }
            ]
        }
    ]


async def test_without_since_every_account_is_read(fake: FakeHubSpot, crm: HubSpotCrm) -> None:
    ids = add_companies(fake, 120)
    pages = await read_accounts(crm, None)
    assert [a.id for page in pages for a in page.accounts] == ids


async def test_no_account_changed_since_gives_no_page(fake: FakeHubSpot, crm: HubSpotCrm) -> None:
    add_companies(fake, 3)
    assert await read_accounts(crm, START + timedelta(days=1)) == []


async def test_a_company_is_read_with_its_owner_website_tier_country_and_state(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    full = fake.add_company(
        modified_at=START,
        name="BigCo",
        domain="bigco.example",
        website="https://www.bigco.example",
        hubspot_owner_id="501",
        tier="Strategic",
        country="Deutschland",
        state="Berlin ",
    )
    bare = fake.add_company(
        modified_at=START + timedelta(seconds=1), domain="smallco.example", hubspot_owner_id=""
    )

    (page,) = await read_accounts(crm, None)

    first, second = page.accounts
    assert (first.id, first.name, first.website, first.owner_id, first.tier) == (
        full,
        "BigCo",
        "https://www.bigco.example",
        "501",
        "Strategic",
    )
    assert first.modified_at == START
    assert (first.country, first.state) == ("DE", "Berlin")
    # No name: the domain names it and stands for the website; no owner, no tier, no place.
    assert (second.id, second.name, second.website, second.owner_id, second.tier) == (
        bare,
        "smallco.example",
        "smallco.example",
        None,
        None,
    )
    assert (second.country, second.state) == (None, None)
    assert {"tier", "country", "state"} <= set(fake.requests[0].body["properties"])


async def test_without_a_tier_property_no_tier_is_read(fake: FakeHubSpot) -> None:
    fake.add_company(modified_at=START, name="BigCo", tier="Strategic")
    (page,) = await read_accounts(crm_for(fake, tier=None), None)
    assert page.accounts[0].tier is None
    assert "tier" not in fake.requests[0].body["properties"]


async def test_more_changes_than_hubspots_search_window_are_read_by_searching_again(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    base = datetime(2026, 3, 2, tzinfo=UTC)
    ids = [fake.add_company(modified_at=base + timedelta(seconds=n)) for n in range(10_150)]

    pages = await read_accounts(crm, None)

    read = [a.id for page in pages for a in page.accounts]
    assert set(read) == set(ids)
    assert all(r.status == 200 for r in fake.requests)  # never paged past the window
    afters = [r.body.get("after") for r in fake.requests]
    assert afters.count(None) == 2  # the second search starts afresh, from the newest change
    assert fake.requests[-1].body["filterGroups"][0]["filters"][0]["value"] == str(
        millis(base + timedelta(seconds=9_999))
    )


# --- CrmCalls: the Retry-After pause and the concurrency bound ------------------------------


async def test_after_a_retry_after_the_next_call_waits_until_the_pause_ends(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    calls = CrmCalls(concurrency=4)
    fake.fail_next(429, headers={"Retry-After": "0.5"})
    try:
        with pytest.raises(CrmTransient):
            await calls(crm.whoami)
        await calls(crm.whoami)
    finally:
        calls.close()

    limited, following = fake.requests
    assert limited.status == 429 and following.status == 200
    assert limited.answered_at is not None
    assert following.at - limited.answered_at >= 0.5
    assert fake.retry_after_violations == 0
    assert calls.paused == 1


async def test_one_rate_limit_answer_holds_back_every_caller_of_the_same_crm(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    fake.latency_s = 0.02
    fake.rate_limit_every = 7
    fake.retry_after_s = 0.3
    calls = CrmCalls(concurrency=4)
    try:
        outcomes = await asyncio.gather(
            *(calls(crm.whoami) for _ in range(24)), return_exceptions=True
        )
    finally:
        calls.close()

    limited = [o for o in outcomes if isinstance(o, CrmTransient)]
    assert len(limited) == 3 and all(o.retry_after == 0.3 for o in limited)
    assert all(isinstance(o, str) for o in outcomes if o not in limited)
    assert len(fake.retry_windows) == 3
    assert fake.retry_after_violations == 0


async def test_past_a_daily_limit_no_call_is_sent_until_the_wait_is_over(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    calls = CrmCalls(concurrency=4)
    fake.fail_next(429, body=daily_limit())
    try:
        with pytest.raises(CrmDailyLimit) as first:
            await calls(crm.whoami)
        started = time.monotonic()
        refused = await asyncio.gather(
            *(calls(crm.whoami) for _ in range(20)), return_exceptions=True
        )
    finally:
        calls.close()

    assert first.value.retry_after == DAILY_LIMIT_WAIT_S
    assert [r.status for r in fake.requests] == [429]  # the 20 others were never sent
    assert all(isinstance(r, CrmDailyLimit) for r in refused)
    assert all(str(r) == str(first.value) for r in refused)
    waits = [r.retry_after for r in refused if isinstance(r, CrmDailyLimit)]
    assert all(w is not None and DAILY_LIMIT_WAIT_S - 60 < w <= DAILY_LIMIT_WAIT_S for w in waits)
    assert time.monotonic() - started < 5  # refused at once, not held for half an hour


async def test_after_a_daily_limit_one_call_finds_out_whether_it_reset_before_the_others_go(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    calls = CrmCalls(concurrency=4, daily_limit_wait_s=0.3)
    fake.fail_next(429, body=daily_limit())
    try:
        with pytest.raises(CrmDailyLimit):
            await calls(crm.whoami)
        await asyncio.sleep(0.35)
        fake.fail_next(429, body=daily_limit())  # not reset yet
        still = await asyncio.gather(*(calls(crm.whoami) for _ in range(8)), return_exceptions=True)
        statuses_still = [r.status for r in fake.requests]
        await asyncio.sleep(0.35)
        fake.latency_s = 0.05
        reset = await asyncio.gather(*(calls(crm.whoami) for _ in range(8)), return_exceptions=True)
    finally:
        calls.close()

    assert statuses_still == [429, 429]  # one call found out; the other seven were not sent
    assert all(isinstance(r, CrmDailyLimit) for r in still)
    assert all(isinstance(r, str) for r in reset)  # once one passed, all went
    assert len(fake.requests) == 10


async def test_a_call_answered_before_the_daily_limit_does_not_lift_it_for_the_calls_after(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    """Two calls under way: one meets the limit, the other's answer (given before the limit
    was reached) arrives after. The calls that follow are still refused at once, not held in
    their slots for the whole wait."""
    calls = CrmCalls(concurrency=4, daily_limit_wait_s=30)
    fake.delays.append(0.5)  # the first call answers late: 200, as it was in time
    fake.fail_next(429, body=daily_limit())  # the second, at once: the limit
    answered_late = asyncio.ensure_future(calls(crm.whoami))
    try:
        async with asyncio.timeout(5):
            while not fake.requests:  # noqa: ASYNC110 (the fake records it; no event to wait on)
                await asyncio.sleep(0.01)
        with pytest.raises(CrmDailyLimit):
            await calls(crm.whoami)
        assert isinstance(await answered_late, str)
        started = time.monotonic()
        with pytest.raises(CrmDailyLimit):
            await asyncio.wait_for(calls(crm.whoami), timeout=5)
    finally:
        calls.close()

    assert time.monotonic() - started < 1  # refused at once, no request sent
    assert len(fake.requests) == 2


async def test_no_more_calls_are_in_flight_than_the_concurrency_bound(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    fake.latency_s = 0.1
    calls = CrmCalls(concurrency=2)
    started = time.monotonic()
    try:
        await asyncio.gather(*(calls(crm.whoami) for _ in range(6)))
    finally:
        calls.close()

    assert fake.max_in_flight == 2
    assert len(fake.requests) == 6
    assert time.monotonic() - started >= 0.3  # three rounds of two


async def test_the_fake_counts_a_call_made_inside_a_retry_after_so_a_pause_is_checked(
    fake: FakeHubSpot, crm: HubSpotCrm
) -> None:
    fake.fail_next(429, headers={"Retry-After": "2"})
    with pytest.raises(CrmTransient):
        await call(crm.whoami)
    await asyncio.sleep(0.1)  # past the grace given to requests already on their way
    await call(crm.whoami)  # straight to the client: nothing holds it back
    assert fake.retry_after_violations == 1
