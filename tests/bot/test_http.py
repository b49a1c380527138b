"""`POST /leads`, `/healthz` and `/metrics` through the real aiohttp app on a loopback port."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from bot.bootstrap import bootstrap
from bot.metrics import Metrics
from bot.service.unit_of_work import Transaction, UnitOfWork
from routing.policy import Policy
from storage.db import Database, open_database
from storage.models import DecisionRow, LeadRow, OfferRow, OutboxRow
from tests.bot.conftest import Client, Clock, MakeClient, settings_for
from tests.bot.webhook import SECRET, as_body, row_counts, signed
from tests.pg import PostgresServer

VIEW_KEYS = ["id", "status", "rep", "team", "rule", "reason", "sla_due_at"]
ENTERPRISE = {"email": "cto@bigco.com", "country": "US", "employees": 5000}
NOTHING = dict.fromkeys(("leads", "offers", "decisions", "outbox", "audit_events"), 0)
T = TypeVar("T")


def lead(lead_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": lead_id, **ENTERPRISE, **fields}


async def post(client: Client, data: Any, clock: Clock, **sign: Any) -> tuple[int, dict[str, Any]]:
    body = data if isinstance(data, bytes) else as_body(data)
    response = await client.post(
        "/leads", data=body, headers=signed(body, at=clock.timestamp(), **sign)
    )
    return response.status, await response.json()


def stored(database_path: Path) -> dict[str, int]:
    counts = row_counts(database_path)
    return {table: counts[table] for table in NOTHING}


# --- one lead ------------------------------------------------------------------------------------


async def test_a_signed_new_lead_is_routed_and_answered_201_with_its_decision(
    client: Client, clock: Clock, database_path: Path
) -> None:
    status, body = await post(client, lead("L-1"), clock)
    assert status == 201
    assert list(body) == VIEW_KEYS
    assert body["id"] == "L-1" and body["status"] == "offered" and body["rep"] == "alice"
    assert body["team"] == "enterprise" and body["rule"] == "Enterprise North America"
    assert body["sla_due_at"] == "2026-11-17T17:20:00+00:00"
    assert stored(database_path) == dict.fromkeys(NOTHING, 1)


async def test_the_same_external_id_again_answers_200_with_the_stored_decision(
    client: Client, clock: Clock, database_path: Path
) -> None:
    _, first = await post(client, lead("L-1"), clock)
    clock.advance(minutes=1)
    status, again = await post(client, lead("L-1", company="Changed Inc"), clock)
    assert status == 200
    assert again == first
    assert stored(database_path)["offers"] == 1


async def test_an_id_reused_for_a_lead_with_another_email_is_refused_409_and_changes_nothing(
    client: Client, clock: Clock, database_path: Path
) -> None:
    _, first = await post(client, lead("L-1"), clock)
    before = stored(database_path)
    status, body = await post(client, lead("L-1", email="someone.else@other.com"), clock)
    assert status == 409
    assert "'L-1' was already used for a lead with another e-mail address" in body["error"]
    assert "give each lead its own id" in body["error"]
    assert stored(database_path) == before
    # The first lead is untouched: a retry of it still answers its decision.
    assert await post(client, lead("L-1"), clock) == (200, first)
    scraped = await (await client.get("/metrics")).text()
    assert 'leadrouter_leads_total{outcome="reused"} 1.0' in scraped
    assert 'leadrouter_leads_total{outcome="repeat"} 1.0' in scraped


# Without an e-mail address on either, who the lead is is its name, company, phone and CRM record.
ANA = {
    "id": "N-1",
    "first_name": "Ana",
    "last_name": "Müller",
    "company": "BigCo",
    "phone": "+1 555 0100",
    "country": "US",
    "employees": 5000,
}


async def test_an_id_reused_without_an_email_for_another_person_is_refused_409_saying_what_differs(
    client: Client, clock: Clock, database_path: Path
) -> None:
    _, first = await post(client, ANA, clock)
    before = stored(database_path)
    status, body = await post(client, {**ANA, "first_name": "Bob", "phone": "+1 555 0199"}, clock)
    assert status == 409
    assert "'N-1' was already used for a lead with another name and phone" in body["error"]
    assert "give each lead its own id" in body["error"]
    assert stored(database_path) == before
    status, body = await post(client, {**ANA, "company": "Other Corp"}, clock)
    assert status == 409
    assert "another company" in body["error"]
    assert await post(client, ANA, clock) == (200, first)


async def test_a_retry_without_an_email_is_a_retry_whatever_its_key_order_spacing_or_case(
    client: Client, clock: Clock, database_path: Path
) -> None:
    _, first = await post(client, ANA, clock)
    again = (
        b'{ "employees" : 5000, "phone": "+1 (555) 0100", "company": "  bigco ",\n'
        rb'  "last_name": "M\u00fcller", "first_name": "ANA", "country": "US", "id": "N-1" }'
    )
    assert await post(client, again, clock) == (200, first)
    # A field that does not say who the lead is (a score, a campaign) may change on a retry.
    assert await post(client, {**ANA, "score": 80, "utm_campaign": "spring"}, clock) == (
        200,
        first,
    )
    assert stored(database_path)["leads"] == 1


async def test_an_id_first_used_with_an_email_and_then_without_one_is_refused_409(
    client: Client, clock: Clock, database_path: Path
) -> None:
    await post(client, {**ANA, "email": "ana@bigco.com"}, clock)
    status, body = await post(client, ANA, clock)
    assert status == 409
    assert "another e-mail address" in body["error"]


async def test_in_a_batch_an_id_repeated_without_an_email_for_another_person_is_not_routed(
    client: Client, clock: Clock, database_path: Path
) -> None:
    batch = {"leads": [ANA, {**ANA, "first_name": "Bob"}, {**ANA, "company": " BIGCO"}]}
    status, body = await post(client, batch, clock)
    assert status == 200
    first, reused, repeated = body["results"]
    assert first["created"] is True and "error" not in first
    assert reused["created"] is False and "another name" in reused["error"]
    assert repeated["created"] is False and "error" not in repeated
    assert stored(database_path)["leads"] == 1


async def test_in_a_batch_an_id_reused_for_another_email_is_not_routed_and_says_why(
    client: Client, clock: Clock, database_path: Path
) -> None:
    batch = {
        "leads": [lead("B-1"), lead("B-2", email="b2@bigco.com"), lead("B-1", email="x@y.com")]
    }
    status, body = await post(client, batch, clock)
    assert status == 200
    first, second, reused = body["results"]
    assert "error" not in first and "error" not in second
    assert reused["created"] is False and reused["rep"] == first["rep"]
    assert "'B-1' was already used for a lead with another e-mail address" in reused["error"]
    assert stored(database_path)["leads"] == 2


async def test_an_invalid_lead_is_refused_422_with_every_problem(
    client: Client, clock: Clock, database_path: Path
) -> None:
    status, body = await post(client, {"id": "L-1", "email": "x", "employees": -3}, clock)
    assert status == 422
    assert body == {
        "errors": [
            {"field": "email", "message": "'x' is not an e-mail address"},
            {
                "field": "employees",
                "message": "-3 is not a number of employees: give a whole number such as 250, "
                "a range such as 51-200, or 1000+",
            },
        ]
    }
    assert stored(database_path) == NOTHING


async def test_a_lead_id_too_long_to_travel_in_slack_is_refused_422_and_one_that_fits_is_not(
    client: Client, clock: Clock, database_path: Path
) -> None:
    status, body = await post(client, lead("L" * 249), clock)
    assert status == 422
    assert body == {"errors": [{"field": "id", "message": "is longer than 248 characters"}]}
    assert stored(database_path) == NOTHING
    status, body = await post(client, lead("L" * 248), clock)
    assert status == 201


async def test_a_lead_with_a_custom_field_named_leads_is_one_lead_not_a_batch(
    client: Client, clock: Clock
) -> None:
    status, body = await post(client, lead("L-1", leads="three"), clock)
    assert status == 201 and body["id"] == "L-1"


# --- authentication --------------------------------------------------------------------------


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no headers", "missing X-Leadrouter-Timestamp"),
        ("no signature", "missing X-Leadrouter-Signature"),
        ("no timestamp", "missing X-Leadrouter-Timestamp"),
        ("wrong secret", "X-Leadrouter-Signature does not match"),
        ("body changed after signing", "X-Leadrouter-Signature does not match"),
        ("timestamp changed after signing", "X-Leadrouter-Signature does not match"),
        ("hex without the sha256= prefix", "X-Leadrouter-Signature has no sha256= prefix"),
        ("timestamp not a number", "must be the time of sending in whole unix seconds"),
        ("signed six minutes ago", "more than 5 minutes away"),
        ("signed six minutes ahead", "more than 5 minutes away"),
    ],
)
async def test_a_missing_wrong_or_stale_signature_is_refused_401_and_stores_nothing(
    client: Client, clock: Clock, database_path: Path, case: str, expected: str
) -> None:
    body = as_body(lead("L-1"))
    headers = signed(body, at=clock.timestamp())
    if case == "no headers":
        headers = {"Content-Type": "application/json"}
    elif case == "no signature":
        headers = _without(headers, "X-Leadrouter-Signature")
    elif case == "no timestamp":
        headers = _without(headers, "X-Leadrouter-Timestamp")
    elif case == "wrong secret":
        headers = signed(body, at=clock.timestamp(), secret="another-secret-of-some-length")
    elif case == "body changed after signing":
        body = as_body(lead("L-2"))
    elif case == "timestamp changed after signing":
        headers["X-Leadrouter-Timestamp"] = str(int(clock.timestamp()) - 1)
    elif case == "hex without the sha256= prefix":
        headers["X-Leadrouter-Signature"] = headers["X-Leadrouter-Signature"].removeprefix(
            "sha256="
        )
    elif case == "timestamp not a number":
        headers["X-Leadrouter-Timestamp"] = "1.7e9"
    elif case == "signed six minutes ago":
        headers = signed(body, at=clock.timestamp() - 360)
    elif case == "signed six minutes ahead":
        headers = signed(body, at=clock.timestamp() + 360)
    response = await client.post("/leads", data=body, headers=headers)
    text = await response.text()
    assert response.status == 401
    assert expected in json.loads(text)["error"]
    assert SECRET not in text
    assert stored(database_path) == NOTHING


async def test_a_signature_in_upper_case_hex_is_accepted(client: Client, clock: Clock) -> None:
    # What .NET's Convert.ToHexString and many a "toUpperCase()" give.
    body = as_body(lead("L-1"))
    headers = signed(body, at=clock.timestamp())
    headers["X-Leadrouter-Signature"] = headers["X-Leadrouter-Signature"].upper()
    response = await client.post("/leads", data=body, headers=headers)
    assert response.status == 201


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-600, "600 s behind"), (+420, "420 s ahead")],
)
async def test_a_timestamp_too_far_off_says_by_how_much_and_the_servers_time(
    client: Client, clock: Clock, database_path: Path, offset: int, expected: str
) -> None:
    body = as_body(lead("L-1"))
    response = await client.post(
        "/leads", data=body, headers=signed(body, at=clock.timestamp() + offset)
    )
    assert response.status == 401
    message = (await response.json())["error"]
    assert expected in message and str(int(clock.timestamp())) in message
    assert stored(database_path) == NOTHING


async def test_a_timestamp_in_milliseconds_is_refused_401_saying_seconds_not_milliseconds(
    client: Client, clock: Clock
) -> None:
    body = as_body(lead("L-1"))
    headers = signed(body, at=clock.timestamp())
    headers["X-Leadrouter-Timestamp"] = str(int(clock.timestamp() * 1000))
    response = await client.post("/leads", data=body, headers=headers)
    assert response.status == 401
    assert "not milliseconds" in (await response.json())["error"]


async def test_a_signature_without_its_sha256_prefix_is_refused_401_saying_so(
    client: Client, clock: Clock
) -> None:
    body = as_body(lead("L-1"))
    headers = signed(body, at=clock.timestamp())
    headers["X-Leadrouter-Signature"] = headers["X-Leadrouter-Signature"].removeprefix("sha256=")
    response = await client.post("/leads", data=body, headers=headers)
    assert response.status == 401
    assert "no sha256= prefix" in (await response.json())["error"]


async def test_an_empty_body_is_refused_400_saying_it_is_empty(
    client: Client, clock: Clock
) -> None:
    status, answer = await post(client, b"", clock)
    assert status == 400
    assert answer["error"].startswith("the body is empty")


async def test_the_signature_is_checked_before_the_body_is_read_as_json(
    client: Client, clock: Clock
) -> None:
    response = await client.post(
        "/leads", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 401


async def test_a_signature_made_within_five_minutes_is_accepted(
    client: Client, clock: Clock
) -> None:
    body = as_body(lead("L-1"))
    response = await client.post(
        "/leads", data=body, headers=signed(body, at=clock.timestamp() - 299)
    )
    assert response.status == 201


async def test_without_a_webhook_secret_post_leads_answers_503_naming_the_variable(
    make_client: MakeClient, clock: Clock
) -> None:
    client = await make_client(secret=None)
    status, body = await post(client, lead("L-1"), clock)
    assert status == 503
    assert "LEADROUTER_WEBHOOK_SECRET is not set" in body["error"]


# --- the envelope ----------------------------------------------------------------------------


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_body_over_one_mebibyte_is_refused_413_with_json(
    client: Client, clock: Clock, database_path: Path, declared: bool
) -> None:
    body = as_body(lead("L-1", notes="x" * (1 << 20)))
    headers = signed(body, at=clock.timestamp())
    data: Any = body if declared else _chunks(body)
    response = await client.post("/leads", data=data, headers=headers)
    assert response.status == 413
    message = (await response.json())["error"]
    assert "larger than 1 MiB" in message
    # One lead this large is not helped by sending fewer leads: its fields are what to shorten.
    assert "shorter fields" in message
    assert stored(database_path) == NOTHING


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_not_sent_as_application_json_is_refused_415(
    client: Client, clock: Clock, content_type: str | None
) -> None:
    status, body = await post(client, lead("L-1"), clock, content_type=content_type)
    assert status == 415
    assert "application/json" in body["error"]
    # It says what the request was sent as, which is what the developer has to change (without
    # one, aiohttp's client sends application/octet-stream).
    assert f"it came as {content_type or 'application/octet-stream'}" in body["error"]


async def test_application_json_with_a_charset_is_accepted(client: Client, clock: Clock) -> None:
    status, _ = await post(
        client, lead("L-1"), clock, content_type="application/json; charset=utf-8"
    )
    assert status == 201


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252"])
async def test_a_body_in_a_charset_other_than_utf8_is_refused_415_naming_it(
    client: Client, clock: Clock, database_path: Path, charset: str
) -> None:
    body = json.dumps(lead("L-1", company="Müller GmbH"), ensure_ascii=False).encode(charset)
    status, answer = await post(
        client, body, clock, content_type=f"application/json; charset={charset}"
    )
    assert status == 415
    assert f"charset={charset}" in answer["error"] and "UTF-8" in answer["error"]
    assert stored(database_path) == NOTHING


async def test_a_body_that_is_not_utf8_is_refused_400_saying_to_encode_it_as_utf8(
    client: Client, clock: Clock, database_path: Path
) -> None:
    body = json.dumps(lead("L-1", company="Müller GmbH"), ensure_ascii=False).encode("latin-1")
    status, answer = await post(client, body, clock)
    assert status == 400
    assert "not UTF-8" in answer["error"] and "encode" in answer["error"]
    assert "codec" not in answer["error"]
    assert stored(database_path) == NOTHING


async def test_a_utf8_body_with_unicode_written_raw_or_escaped_is_accepted_as_signed(
    client: Client, clock: Clock
) -> None:
    raw = json.dumps(lead("L-1", company="Müller GmbH"), ensure_ascii=False).encode()
    escaped = json.dumps(lead("L-2", company="Müller GmbH")).encode()
    assert (await post(client, raw, clock))[0] == 201
    assert (await post(client, escaped, clock))[0] == 201


async def test_a_body_serialised_again_after_signing_is_refused_401_saying_to_sign_the_bytes_sent(
    client: Client, clock: Clock, database_path: Path
) -> None:
    signed_body = json.dumps(lead("L-1", company="Müller GmbH")).encode()
    sent = json.dumps(lead("L-1", company="Müller GmbH"), separators=(",", ":")).encode()
    response = await client.post(
        "/leads", data=sent, headers=signed(signed_body, at=clock.timestamp())
    )
    assert response.status == 401
    message = (await response.json())["error"]
    assert "exact bytes" in message and "after signing" in message
    assert stored(database_path) == NOTHING


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{", "not valid JSON"),
        (b"\xff\xfe\xfa", "not UTF-8"),
        (b"[]", "one lead as a JSON object"),
        (b'[{"id": "L-1"}]', "one lead as a JSON object"),
        (b'"L-1"', "one lead as a JSON object"),
        (b"42", "one lead as a JSON object"),
        (b'{"leads": []}', '"leads" must be a list of 1 to 1000 leads'),
        (b'{"leads": {"id": "L-1"}}', '"leads" must be a list of 1 to 1000 leads'),
        (as_body({"leads": [{"id": f"L-{i}"} for i in range(1001)]}), "1 to 1000"),
        (b'{"id": "L-1", "score": NaN}', "NaN is not a JSON number"),
        (b'{"id": "L-1", "score": 1e999}', "too large"),
        (b'{"id": "L-1", "score": ' + b"9" * 5000 + b"}", "too large"),
        (b'{"id": "L-1", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper"),
        (b'{"id": "L-1", "x": ' + b"[" * 40 + b"]" * 40 + b"}", "nested deeper"),
        (b'{"id": "L-1", "company": "\\ud800"}', "lone surrogate"),
        (b'{"id": "L-1\\u0000"}', "NUL"),
    ],
)
async def test_broken_json_or_a_body_of_the_wrong_shape_is_refused_400(
    client: Client, clock: Clock, database_path: Path, body: bytes, expected: str
) -> None:
    status, answer = await post(client, body, clock)
    assert status == 400
    assert expected in answer["error"]
    assert stored(database_path) == NOTHING


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"id": "L-1", "email": "a@x.com", "country": "US", "email": "b@y.com"}', "email"),
        (b'{"leads": [{"id": "L-1", "email": "a@x.com"}, {"id": "L-2", "id": "L-3"}]}', "id"),
        (b'{"id": "L-1", "fields": {"plan": "pro", "plan": "free"}}', "plan"),
        (b'{"leads": [], "leads": [{"id": "L-1"}]}', "leads"),
    ],
    ids=["a lead's field", "in a batch", "a custom field", "the batch's own key"],
)
async def test_json_with_a_key_written_twice_in_one_object_is_refused_400_naming_the_key(
    client: Client, clock: Clock, database_path: Path, body: bytes, key: str
) -> None:
    # json.loads would keep the last value silently: which e-mail was meant is anyone's guess.
    status, answer = await post(client, body, clock)
    assert status == 400
    assert f'the key "{key}" twice' in answer["error"]
    assert stored(database_path) == NOTHING


async def test_the_same_key_in_two_different_objects_is_no_duplicate(
    client: Client, clock: Clock, database_path: Path
) -> None:
    body = b'{"leads": [{"id": "L-1", "email": "a@x.com"}, {"id": "L-2", "email": "b@y.com"}]}'
    status, answer = await post(client, body, clock)
    assert status == 200
    assert [r["id"] for r in answer["results"]] == ["L-1", "L-2"]
    assert stored(database_path)["leads"] == 2


# --- batches ---------------------------------------------------------------------------------


async def test_a_batch_is_answered_in_input_order_with_a_created_flag_for_each_lead(
    client: Client, clock: Clock, database_path: Path
) -> None:
    await post(client, lead("OLD"), clock)
    b1, b2 = lead("B-1", email="b1@bigco.com"), lead("B-2", email="b2@bigco.com")
    batch = {"leads": [b1, lead("OLD"), b2, {**b1, "company": "Again"}]}
    status, body = await post(client, batch, clock)
    assert status == 200
    results = body["results"]
    assert [(r["id"], r["created"]) for r in results] == [
        ("B-1", True),
        ("OLD", False),
        ("B-2", True),
        ("B-1", False),
    ]
    assert all(list(r) == [*VIEW_KEYS, "created"] for r in results)
    assert results[3] == {**results[0], "created": False}
    # Routed in the order sent: OLD went to Alice, then weighted 2:1 gives Bob, then Alice.
    assert [r["rep"] for r in results] == ["bob", "alice", "alice", "bob"]
    assert stored(database_path)["leads"] == 3


async def test_one_invalid_lead_in_a_batch_refuses_the_whole_batch_and_stores_nothing(
    client: Client, clock: Clock, database_path: Path
) -> None:
    batch = {"leads": [lead("B-1"), lead("B-2", email="nope"), "not a lead", lead("")]}
    status, body = await post(client, batch, clock)
    assert status == 422
    assert body["errors"] == [
        {"field": "leads[1].email", "message": "'nope' is not an e-mail address"},
        {"field": "leads[2]", "message": "a lead is a JSON object of fields"},
        {
            "field": "leads[3].id",
            "message": "is required: the lead's id in the system it came from",
        },
    ]
    assert stored(database_path) == NOTHING


async def test_two_hundred_concurrent_posts_of_one_id_make_one_lead_one_offer_one_outbox_row(
    client: Client, clock: Clock, database_path: Path
) -> None:
    answers = await asyncio.gather(*(post(client, lead("SAME"), clock) for _ in range(200)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 199 + [201]
    assert len({json.dumps(body, sort_keys=True) for _, body in answers}) == 1
    counts = row_counts(database_path)
    assert (counts["leads"], counts["offers"], counts["outbox"], counts["decisions"]) == (
        1,
        1,
        1,
        1,
    )


async def test_on_postgresql_two_hundred_concurrent_posts_of_one_id_still_make_one_of_each(
    postgres_server: PostgresServer,
    make_client: MakeClient,
    policy: Policy,
    clock: Clock,
    database_path: Path,
) -> None:
    # PostgreSQL runs the intakes truly at once: the losers of the race on the external id
    # must still be answered 200 with the winner's decision, never a 5xx.
    name = await postgres_server.create_database()
    db = open_database(postgres_server.url(name))
    try:
        await db.create_tables()
        app = bootstrap(settings_for(database_path), db=db, policy=policy, clock=clock)
        client = await make_client(app=app)
        answers = await asyncio.gather(*(post(client, lead("SAME"), clock) for _ in range(200)))
        assert sorted(status for status, _ in answers) == [200] * 199 + [201]
        assert len({json.dumps(body, sort_keys=True) for _, body in answers}) == 1
        async with db.reading() as session:
            counts = [
                (await session.execute(select(func.count()).select_from(table))).scalar_one()
                for table in (LeadRow, OfferRow, OutboxRow, DecisionRow)
            ]
        assert counts == [1, 1, 1, 1]
    finally:
        await db.dispose()
        await postgres_server.drop_database(name)


# --- errors nobody caused --------------------------------------------------------------------


class ExplodingUnitOfWork(UnitOfWork):
    async def routing(
        self, work: Callable[[Transaction], T], what: str, *, quick: bool = False
    ) -> T:
        raise RuntimeError("the disk is on fire")


async def test_an_unexpected_error_answers_500_with_an_id_that_finds_it_in_the_log(
    make_client: MakeClient,
    clock: Clock,
    database_path: Path,
    sqlite_db: Database,
    policy: Policy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = bootstrap(settings_for(database_path), db=sqlite_db, policy=policy, clock=clock)
    app.uow = ExplodingUnitOfWork(db=sqlite_db, policy=lambda: policy, clock=clock)
    client = await make_client(app=app)
    with caplog.at_level(logging.ERROR, logger="bot.http"):
        status, body = await post(client, lead("L-1"), clock)
    assert status == 500
    assert body == {"error": "internal error", "id": body["id"]}
    (record,) = caplog.records
    assert body["id"] in record.getMessage()
    assert "the disk is on fire" in (record.exc_text or "")


async def test_unknown_paths_and_methods_answer_json_404_and_405(client: Client) -> None:
    missing = await client.get("/nowhere")
    assert (missing.status, await missing.json()) == (404, {"error": "Not Found"})
    wrong = await client.get("/leads")
    assert wrong.status == 405
    assert wrong.headers["Allow"] == "POST"
    assert (await wrong.json())["error"] == "Method Not Allowed"


# --- health and metrics ----------------------------------------------------------------------


async def test_healthz_is_ok_while_the_database_answers_and_says_slack_is_off(
    client: Client,
) -> None:
    response = await client.get("/healthz")
    assert (response.status, await response.json()) == (200, {"status": "ok", "slack": "off"})


async def test_healthz_answers_503_when_the_database_does_not(
    make_client: MakeClient, tmp_path: Path, policy: Policy, clock: Clock
) -> None:
    unreachable = tmp_path / "no-such-folder" / "leads.db"
    db = open_database(f"sqlite+aiosqlite:///{unreachable}")
    app = bootstrap(settings_for(unreachable), db=db, policy=policy, clock=clock)
    client = await make_client(app=app)
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["status"] == "unavailable"
    await db.dispose()


async def test_metrics_count_outcomes_errors_and_decisions_and_read_the_database(
    client: Client, clock: Clock
) -> None:
    await post(client, lead("L-1"), clock)
    await post(client, lead("L-1"), clock)
    await post(client, lead("L-2", email="nope"), clock)
    await client.post("/leads", data=b"{}", headers={"Content-Type": "application/json"})
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await response.text()
    for line in (
        'leadrouter_leads_total{outcome="offered"} 1.0',
        'leadrouter_leads_total{outcome="repeat"} 1.0',
        'leadrouter_leads_total{outcome="invalid"} 1.0',
        'leadrouter_leads_total{outcome="queued"} 0.0',
        'leadrouter_http_errors_total{status="401"} 1.0',
        'leadrouter_http_errors_total{status="422"} 1.0',
        "leadrouter_decision_seconds_count 1.0",
        "leadrouter_open_offers 1.0",
        "leadrouter_outbox_depth 1.0",
        "leadrouter_decisions_total 1.0",
        "leadrouter_decisions_redone_total 0.0",
    ):
        assert line in text.splitlines(), line
    await post(client, lead("L-3"), clock)
    again = (await (await client.get("/metrics")).text()).splitlines()
    assert "leadrouter_decisions_total 2.0" in again  # added since the last scrape, not twice


def test_every_app_has_metrics_of_its_own() -> None:
    first, second = Metrics(), Metrics()
    first.lead("offered")
    assert b'leadrouter_leads_total{outcome="offered"} 1.0' in first.render()
    assert b'leadrouter_leads_total{outcome="offered"} 0.0' in second.render()


@asynccontextmanager
async def own_database(
    server: PostgresServer, *, ping_after_idle_s: float
) -> AsyncIterator[Database]:
    """A new database on `server`, its tables made, one kept connection pinged after
    `ping_after_idle_s` idle; disposed of at the end."""
    db = open_database(
        server.url(await server.create_database()), pool_size=1, ping_after_idle_s=ping_after_idle_s
    )
    try:
        await db.create_tables()
        yield db
    finally:
        await db.dispose()


async def stored_ids(db: Database) -> list[str]:
    async with db.reading() as session:
        return sorted((await session.execute(select(LeadRow.external_id))).scalars().all())


UNREACHABLE = {"error": "the database cannot be reached just now; send it again shortly"}


async def test_a_lost_database_connection_is_routed_again_or_answered_503_never_500(
    restartable_postgres: PostgresServer,
    tmp_path: Path,
    make_client: MakeClient,
    policy: Policy,
    clock: Clock,
) -> None:
    """PostgreSQL down and back within the pool's ping window (`storage.db`), so the next
    transaction on the kept connection fails. A lead's group is routed again lead by lead, on
    a fresh connection, and answered 201 once; another request is answered 503 with what to do
    (not a 500 with a traceback id), and works when sent again."""
    async with own_database(restartable_postgres, ping_after_idle_s=3600) as db:
        app = bootstrap(settings_for(tmp_path / "unused.db"), db=db, policy=policy, clock=clock)
        client = await make_client(app=app)
        assert (await post(client, lead("L-1"), clock))[0] == 201
        restartable_postgres.restart()
        assert (await post(client, lead("L-2"), clock))[0] == 201
        restartable_postgres.restart()
        touch = {"lead": "L-1", "kind": "first_touch", "at": clock.now.isoformat()}
        body = as_body(touch)
        answer = await client.post("/events", data=body, headers=signed(body, at=clock.timestamp()))
        assert (answer.status, await answer.json()) == (503, UNREACHABLE)
        assert answer.headers["Retry-After"] == "5"
        answer = await client.post("/events", data=body, headers=signed(body, at=clock.timestamp()))
        assert (answer.status, await answer.json()) == (200, {"accepted": 1})
        assert await stored_ids(db) == ["L-1", "L-2"]


async def test_while_the_database_is_down_a_lead_is_answered_503_and_routed_once_it_is_back(
    restartable_postgres: PostgresServer,
    tmp_path: Path,
    make_client: MakeClient,
    policy: Policy,
    clock: Clock,
) -> None:
    """Down past the pool's ping window: the ping fails and connecting again is refused. The
    sender is told to try again shortly (not a 500 with a traceback id), and nothing is kept
    half-written."""
    async with own_database(restartable_postgres, ping_after_idle_s=0.1) as db:
        app = bootstrap(settings_for(tmp_path / "unused.db"), db=db, policy=policy, clock=clock)
        client = await make_client(app=app)
        assert (await post(client, lead("L-1"), clock))[0] == 201
        restartable_postgres.halt()
        try:
            body = as_body(lead("L-2"))
            answer = await client.post(
                "/leads", data=body, headers=signed(body, at=clock.timestamp())
            )
            assert (answer.status, await answer.json()) == (503, UNREACHABLE)
            assert answer.headers["Retry-After"] == "5"
            assert (await client.get("/healthz")).status == 503
        finally:
            restartable_postgres.resume()
        assert (await post(client, lead("L-2"), clock))[0] == 201
        assert await stored_ids(db) == ["L-1", "L-2"]
