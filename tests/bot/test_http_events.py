"""`POST /events` through the real aiohttp app on a loopback port: signed as `/leads` is (the
signature written here from the README's contract), each event stored once, a batch all or
nothing, one answer whether or not the lead exists, and an event told before its lead kept
for it."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.bootstrap import bootstrap
from bot.jobs import declare_jobs
from routing.policy import Policy
from storage.db import Database
from tests.bot.conftest import Client, Clock, MakeClient, settings_for
from tests.bot.webhook import as_body, signed

LEAD = {"id": "L-1", "email": "cto@bigco.com", "country": "US", "employees": 5000}
TOUCH = {"lead": "L-1", "kind": "first_touch", "at": "2026-11-17T17:21:00Z", "via": "call"}
WON = {
    "lead": "L-1",
    "kind": "won",
    "at": "2026-11-20T10:00:00+01:00",
    "amount": 12000.5,
    "close_date": "2026-11-20",
    "id": "opp-0061",
    "source": "outreach",
}


async def route(client: Client, clock: Clock, *lead_ids: str) -> None:
    """Route these leads now, then move the clock on past every event the tests post."""
    for lead_id in lead_ids:
        assert (await send(client, "/leads", {**LEAD, "id": lead_id}, clock))[0] == 201
    clock.advance(days=5)


async def send(
    client: Client, path: str, data: Any, clock: Clock, **headers: str
) -> tuple[int, dict[str, Any]]:
    body = data if isinstance(data, bytes) else as_body(data)
    response = await client.post(
        path, data=body, headers={**signed(body, at=clock.timestamp()), **headers}
    )
    return response.status, await response.json()


def events(database: Path) -> list[tuple[Any, ...]]:
    """The stored events, read with the standard library so the code under test plays no part."""
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT l.external_id, e.kind, e.at, e.amount, e.close_date, e.source, e.source_key,"
            " e.via FROM lead_events e JOIN leads l ON l.id = e.lead_id ORDER BY e.id"
        ).fetchall()


async def test_a_signed_event_about_a_routed_lead_is_stored_and_answered_200(
    client: Client, clock: Clock, database_path: Path
) -> None:
    await route(client, clock, "L-1")
    assert await send(client, "/events", TOUCH, clock) == (200, {"accepted": 1})
    assert await send(client, "/events", WON, clock) == (200, {"accepted": 1})
    assert events(database_path) == [
        (
            "L-1",
            "first_touch",
            "2026-11-17 17:21:00.000000",
            None,
            None,
            "api",
            "2026-11-17T17:21:00+00:00",
            "call",
        ),
        (
            "L-1",
            "won",
            "2026-11-20 09:00:00.000000",
            12000.5,
            "2026-11-20",
            "outreach",
            "opp-0061",
            None,
        ),
    ]


async def test_an_event_sent_again_is_answered_alike_and_stored_once(
    client: Client, clock: Clock, database_path: Path
) -> None:
    await route(client, clock, "L-1")
    answers = [await send(client, "/events", WON, clock) for _ in range(3)]
    assert answers == [(200, {"accepted": 1})] * 3
    assert len(events(database_path)) == 1


async def test_an_event_about_an_unknown_lead_gets_the_same_answer_and_is_no_leads_event(
    client: Client, clock: Clock, database_path: Path
) -> None:
    await route(client, clock, "L-1")
    unknown = await send(client, "/events", {**TOUCH, "lead": "L-nobody"}, clock)
    known = await send(client, "/events", TOUCH, clock)
    assert unknown == known == (200, {"accepted": 1})
    assert [row[0] for row in events(database_path)] == ["L-1"]


async def test_an_event_sent_before_its_lead_is_stored_once_the_lead_arrives(
    make_client: MakeClient,
    clock: Clock,
    database_path: Path,
    sqlite_db: Database,
    policy: Policy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = bootstrap(settings_for(database_path), db=sqlite_db, policy=policy, clock=clock)
    client = await make_client(app=app)
    (waiting,) = [job for job in declare_jobs(policy) if job.name == "waiting-events"]
    clock.advance(days=5)  # past the event's time
    # A sequencer's call on L-2 is told before L-2's own POST /leads (a retry, say) gets here.
    with caplog.at_level(logging.INFO, logger="bot.http.events"):
        early = await send(client, "/events", {**TOUCH, "lead": "L-2"}, clock)
    assert early == (200, {"accepted": 1})
    assert "1 of 1 events name no lead here yet; kept until it arrives" in caplog.text
    await waiting.call(app.uow)
    assert events(database_path) == []

    assert (await send(client, "/leads", {**LEAD, "id": "L-2"}, clock))[0] == 201
    await waiting.call(app.uow)  # as the scheduler runs it, every minute
    assert [(row[0], row[1], row[2]) for row in events(database_path)] == [
        ("L-2", "first_touch", "2026-11-17 17:21:00.000000")
    ]
    await waiting.call(app.uow)
    assert len(events(database_path)) == 1


async def test_a_batch_with_one_bad_event_is_refused_whole_with_every_problem(
    client: Client, clock: Clock, database_path: Path
) -> None:
    await route(client, clock, "L-1")
    bad = [
        TOUCH,
        {"lead": "L-1", "kind": "won", "at": "2026-11-17 17:00", "amount": "12.345"},
        {"lead": "", "kind": "called", "at": "2026-11-22T17:21:00Z", "colour": "red"},
        {"lead": "L-1", "kind": "first_touch", "at": "2026-11-17T17:00:00Z", "amount": 5},
        "not an object",
    ]
    status, body = await send(client, "/events", {"events": bad}, clock)
    assert status == 422
    assert body["errors"] == [
        {"field": "events[1].at", "message": "must carry its offset from UTC (a Z, or +01:00)"},
        {"field": "events[1].amount", "message": "has more than 2 decimal places"},
        {
            "field": "events[2].colour",
            "message": "is not a field of an event "
            "(lead, kind, at, amount, currency, close_date, id, source, via)",
        },
        {
            "field": "events[2].lead",
            "message": "is required: the lead's id, as it was sent to /leads",
        },
        {"field": "events[2].kind", "message": "must be one of first_touch, converted, won, lost"},
        {"field": "events[2].at", "message": "is in the future"},
        {
            "field": "events[3].amount",
            "message": "is for converted, won or lost, not a first touch",
        },
        {"field": "events[4]", "message": "an event is a JSON object of fields"},
    ]
    assert events(database_path) == []


async def test_a_batch_is_stored_whole_in_its_order_and_out_of_order_events_settle_alike(
    client: Client, clock: Clock, database_path: Path
) -> None:
    await route(client, clock, "L-1", "L-2")
    batch = [
        {**WON, "lead": "L-2"},
        {"lead": "L-2", "kind": "converted", "at": "2026-11-18T09:00:00Z", "id": "opp-0061"},
        {**TOUCH, "lead": "L-2", "at": "2026-11-17T18:00:00Z"},
        {**TOUCH, "lead": "L-2", "at": "2026-11-17T17:30:00Z"},  # earlier, sent later
        {**TOUCH, "lead": "L-404"},
    ]
    assert await send(client, "/events", {"events": batch}, clock) == (200, {"accepted": 5})
    kinds = [(row[1], row[2]) for row in events(database_path)]
    assert kinds == [
        ("won", "2026-11-20 09:00:00.000000"),
        ("converted", "2026-11-18 09:00:00.000000"),
        ("first_touch", "2026-11-17 18:00:00.000000"),
        ("first_touch", "2026-11-17 17:30:00.000000"),
    ]


async def test_an_unsigned_or_stale_event_is_refused_401_and_nothing_is_read(
    client: Client, clock: Clock, database_path: Path
) -> None:
    await route(client, clock, "L-1")
    body = as_body(TOUCH)
    unsigned = await client.post("/events", data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status == 401
    stale = signed(body, at=clock.timestamp() - 301)
    assert (await client.post("/events", data=body, headers=stale)).status == 401
    wrong = signed(body, at=clock.timestamp(), secret="another-secret-0123456789")
    assert (await client.post("/events", data=body, headers=wrong)).status == 401
    assert events(database_path) == []


async def test_the_body_must_be_json_an_event_or_a_list_of_events(
    client: Client, clock: Clock
) -> None:
    assert (await send(client, "/events", b"{not json", clock))[0] == 400
    assert (await send(client, "/events", [TOUCH], clock))[0] == 400
    assert (await send(client, "/events", {"events": []}, clock))[0] == 400
    assert (await send(client, "/events", {"events": [TOUCH] * 1001}, clock))[0] == 400
    status, _ = await send(client, "/events", TOUCH, clock, **{"Content-Type": "text/plain"})
    assert status == 415


async def test_an_event_with_a_key_written_twice_is_refused_400_naming_it_and_stores_nothing(
    client: Client, clock: Clock, database_path: Path
) -> None:
    await route(client, clock, "L-1")
    body = b'{"lead": "L-1", "kind": "won", "at": "2026-11-20T10:00:00Z", "kind": "lost"}'
    status, answer = await send(client, "/events", body, clock)
    assert status == 400
    assert 'the key "kind" twice' in answer["error"]
    assert events(database_path) == []


async def test_events_in_latin1_or_as_a_form_are_refused_415_saying_what_they_came_as(
    client: Client, clock: Clock, database_path: Path
) -> None:
    latin = json.dumps({**TOUCH, "via": "call"}, ensure_ascii=False).encode("latin-1")
    charset = "application/json; charset=iso-8859-1"
    status, body = await send(client, "/events", latin, clock, **{"Content-Type": charset})
    assert status == 415 and "charset=iso-8859-1" in body["error"]
    form = "application/x-www-form-urlencoded"
    status, body = await send(client, "/events", b"lead=L-1", clock, **{"Content-Type": form})
    assert status == 415 and f"it came as {form}" in body["error"]
    assert "the events" in body["error"]
    assert events(database_path) == []


async def test_without_a_webhook_secret_events_are_refused_503(
    make_client: MakeClient, clock: Clock
) -> None:
    client = await make_client(secret=None)
    status, body = await send(client, "/events", TOUCH, clock)
    assert status == 503
    assert "LEADROUTER_WEBHOOK_SECRET" in body["error"]


async def test_a_lead_is_named_as_for_leads_text_or_a_whole_number_without_blanks(
    client: Client, clock: Clock, database_path: Path
) -> None:
    assert (await send(client, "/leads", {**LEAD, "id": 4021}, clock))[0] == 201
    assert (await send(client, "/leads", {**LEAD, "id": "L-9"}, clock))[0] == 201
    clock.advance(days=5)
    await send(client, "/events", {**TOUCH, "lead": 4021}, clock)
    await send(client, "/events", {**TOUCH, "lead": " L-9 "}, clock)
    status, body = await send(client, "/events", {**TOUCH, "lead": True}, clock)
    assert status == 422 and body["errors"][0]["field"] == "lead"
    assert sorted(row[0] for row in events(database_path)) == ["4021", "L-9"]


# --- currencies --------------------------------------------------------------------------------


@pytest.fixture
async def in_dollars(
    make_client: MakeClient, database_path: Path, sqlite_db: Database, policy: Policy, clock: Clock
) -> Client:
    """The server with LEADROUTER_CURRENCY=USD."""
    settings = settings_for(database_path).model_copy(update={"currency": "USD"})
    return await make_client(app=bootstrap(settings, db=sqlite_db, policy=policy, clock=clock))


async def test_an_amount_in_another_currency_is_refused_naming_both_and_nothing_is_stored(
    in_dollars: Client, clock: Clock, database_path: Path
) -> None:
    await route(in_dollars, clock, "L-1")

    status, body = await send(in_dollars, "/events", {**WON, "currency": "GBP"}, clock)

    assert status == 422
    assert body == {
        "errors": [
            {
                "field": "amount",
                "message": "is in GBP, and amounts here are in USD (LEADROUTER_CURRENCY): "
                "send it in USD, or send the event without its amount",
            }
        ]
    }
    assert events(database_path) == []


@pytest.mark.parametrize("currency", ["USD", "usd", None])
async def test_an_amount_in_our_currency_or_with_none_named_is_stored(
    in_dollars: Client, clock: Clock, database_path: Path, currency: str | None
) -> None:
    await route(in_dollars, clock, "L-1")
    event = {**WON, "currency": currency} if currency else WON

    assert await send(in_dollars, "/events", event, clock) == (200, {"accepted": 1})
    [(_, kind, _, amount, *_)] = events(database_path)
    assert (kind, amount) == ("won", 12000.5)


async def test_an_event_in_another_currency_without_an_amount_is_stored(
    in_dollars: Client, clock: Clock, database_path: Path
) -> None:
    await route(in_dollars, clock, "L-1")
    lost = {"lead": "L-1", "kind": "lost", "at": "2026-11-20T10:00:00Z", "currency": "EUR"}

    assert await send(in_dollars, "/events", lost, clock) == (200, {"accepted": 1})
    assert [row[1] for row in events(database_path)] == ["lost"]


@pytest.mark.parametrize("currency", ["dollars", "XAU", 840, ""])
async def test_a_currency_that_is_not_an_iso_4217_code_is_refused(
    client: Client, clock: Clock, currency: Any
) -> None:
    await route(client, clock, "L-1")
    status, body = await send(client, "/events", {**WON, "currency": currency}, clock)

    assert status == 422
    assert body["errors"] == [
        {"field": "currency", "message": "must be an ISO 4217 currency code, such as USD or EUR"}
    ]


async def test_a_first_touch_has_no_currency(client: Client, clock: Clock) -> None:
    await route(client, clock, "L-1")
    status, body = await send(client, "/events", {**TOUCH, "currency": "USD"}, clock)

    assert status == 422
    assert body["errors"] == [
        {"field": "currency", "message": "is for converted, won or lost, not a first touch"}
    ]


async def test_without_a_currency_set_an_amount_is_stored_whatever_currency_it_names(
    client: Client, clock: Clock, database_path: Path
) -> None:
    await route(client, clock, "L-1")

    assert await send(client, "/events", {**WON, "currency": "GBP"}, clock) == (
        200,
        {"accepted": 1},
    )
    [(_, _, _, amount, *_)] = events(database_path)
    assert amount == 12000.5
