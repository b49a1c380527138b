"""`POST /webhooks/hubspot` through the real aiohttp app, signed the way HubSpot signs (v3), and
the CRM worker that fetches each announced contact from a fake HubSpot and routes it.

The signature is computed here from HubSpot's documented scheme, not by the code under test:
base64(HMAC-SHA256(client secret, "POST" + full request URI + body + timestamp in ms))."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.bootstrap import App, bootstrap
from bot.crm.writeback import CrmWorker
from bot.http import build_http_app
from bot.metrics import Metrics
from bot.settings import Settings
from routing.policy import parse_policy
from storage.db import Database
from tests.bot.conftest import TUESDAY, Clock
from tests.fakes.hubspot import TOKEN, FakeHubSpot

CLIENT_SECRET = "hubspot-app-client-secret-0123456789"
PATH = "/webhooks/hubspot"
PUBLIC_URL = "https://leads.acme.example/webhooks/hubspot"
KIND = "crm.take_contact.hubspot"
POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN, email: ann@acme.example}
  - {id: ben, name: Ben Baker, slack: UBEN, email: ben@acme.example}
rules:
  - name: Enterprise
    when: {employees: {gte: 1000}}
    assign: {rep: ann}
  - name: Everyone else
    assign: {rep: ben}
"""


def hubspot_signed(
    body: bytes, uri: str, *, secret: str = CLIENT_SECRET, at_ms: int | None = None
) -> dict[str, str]:
    timestamp = str(at_ms if at_ms is not None else int(time.time() * 1000))
    source = b"POST" + uri.encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": timestamp,
    }


def event(number: int, subscription: str, contact_id: int, **extra: Any) -> dict[str, Any]:
    """One event as HubSpot sends it."""
    return {
        "eventId": 1_000 + number,
        "subscriptionId": 2_500,
        "portalId": 62_515,
        "appId": 54_321,
        "occurredAt": 1_795_000_000_000 + number,
        "subscriptionType": subscription,
        "attemptNumber": 0,
        "objectId": contact_id,
        "changeFlag": "CREATED",
        "changeSource": "CRM",
        **extra,
    }


def announce(*contact_ids: str) -> bytes:
    return json.dumps(
        [event(n, "contact.creation", int(c)) for n, c in enumerate(contact_ids)]
    ).encode()


def outbox(database: Path) -> list[tuple[dict[str, Any], str]]:
    """(payload, state) of each contact item queued, read with the standard library; the state
    is "pending", "done" or "failed" (given up)."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT payload, done_at IS NOT NULL, failed_at IS NOT NULL FROM outbox "
            "WHERE kind = ? ORDER BY id",
            (KIND,),
        ).fetchall()
    states = {(0, 0): "pending", (1, 0): "done", (0, 1): "failed"}
    return [(json.loads(payload), states[(done, failed)]) for payload, done, failed in rows]


def leads(database: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute(
            "SELECT external_id, crm_system, crm_id, rep_id, rule, email, status FROM leads"
        ).fetchall()
    return {row["external_id"]: dict(row) for row in rows}


class Server:
    def __init__(
        self, app: App, client: TestClient[web.Request, web.Application], worker: CrmWorker | None
    ) -> None:
        self.app, self.client, self.worker = app, client, worker

    @property
    def url(self) -> str:
        return str(self.client.make_url(PATH))

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = await self.client.post(PATH, data=body, headers=headers)
        return response.status, await response.json()

    async def post_signed(self, body: bytes) -> tuple[int, dict[str, Any]]:
        return await self.post(body, hubspot_signed(body, self.url))


MakeServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def hubspot() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
async def make_server(
    database_path: Path, sqlite_db: Database, clock: Clock, hubspot: FakeHubSpot
) -> AsyncIterator[MakeServer]:
    """The real app built by bootstrap from HubSpot settings. Unless `run_workers`, the CRM
    worker is kept off the server so a test runs it when it chooses (`server.worker`)."""
    made: list[Server] = []

    async def make(
        *,
        client_secret: str | None = CLIENT_SECRET,
        access_token: str | None = TOKEN,
        webhook_url: str | None = None,
        run_workers: bool = False,
    ) -> Server:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{database_path}",
            hubspot_access_token=SecretStr(access_token) if access_token else None,
            hubspot_client_secret=SecretStr(client_secret) if client_secret else None,
            hubspot_api_url=hubspot.url,
            hubspot_webhook_url=webhook_url,
        )
        app = bootstrap(settings, db=sqlite_db, policy=parse_policy(POLICY), clock=clock)
        worker = app.crm_workers[0] if app.crm_workers else None
        if not run_workers:
            app.crm_workers = []
        client = TestClient(TestServer(build_http_app(app, metrics=Metrics())))
        await client.start_server()
        server = Server(app, client, worker)
        made.append(server)
        return server

    yield make
    for server in made:
        await server.client.close()
        await server.app.uow.aclose()
        for link in server.app.crm.values():
            link.calls.close()


@pytest.fixture
async def server(make_server: MakeServer) -> Server:
    return await make_server()


# --- announcing contacts -------------------------------------------------------------------


async def test_a_signed_batch_queues_each_new_contact_and_ignores_other_events(
    server: Server, database_path: Path
) -> None:
    body = json.dumps(
        [
            event(1, "contact.creation", 501),
            event(2, "contact.propertyChange", 501, propertyName="email", propertyValue="x@y.z"),
            event(3, "contact.creation", 502),
        ]
    ).encode()

    status, answer = await server.post_signed(body)

    assert status == 200
    assert answer == {"queued": 2, "repeated": 0, "ignored": 1}
    assert outbox(database_path) == [
        ({"contact_id": "501"}, "pending"),
        ({"contact_id": "502"}, "pending"),
    ]


async def test_the_same_batch_again_queues_nothing_more(
    server: Server, database_path: Path
) -> None:
    body = announce("501", "502")
    assert (await server.post_signed(body))[1]["queued"] == 2

    status, answer = await server.post_signed(body)  # HubSpot retries: newly signed, same body

    assert status == 200
    assert answer == {"queued": 0, "repeated": 2, "ignored": 0}
    assert len(outbox(database_path)) == 2


async def test_an_event_whose_object_id_is_not_a_hubspot_id_is_ignored(
    server: Server, database_path: Path
) -> None:
    body = json.dumps(
        [
            {**event(1, "contact.creation", 1), "objectId": "../owners/1"},
            {**event(2, "contact.creation", 1), "objectId": None},
            event(3, "contact.creation", 503),
        ]
    ).encode()
    status, answer = await server.post_signed(body)
    assert (status, answer) == (200, {"queued": 1, "repeated": 0, "ignored": 2})
    assert outbox(database_path) == [({"contact_id": "503"}, "pending")]


# --- who may announce ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "signed with another secret",
        "body changed after signing",
        "timestamp changed after signing",
        "signed for another address",
        "signed ten minutes ago",
        "signed ten minutes from now",
        "timestamp beyond any date",
        "timestamp not a number",
        "timestamp in digits int() does not read",
        "timestamp of more digits than int() reads",
        "no headers",
        "no signature",
        "no timestamp",
    ],
)
async def test_a_request_not_signed_by_hubspot_just_now_is_refused_401_and_queues_nothing(
    server: Server, database_path: Path, case: str
) -> None:
    body = announce("501")
    headers = hubspot_signed(body, server.url)
    if case == "signed with another secret":
        headers = hubspot_signed(body, server.url, secret="another-client-secret-of-some-length")
    elif case == "body changed after signing":
        body = announce("666")
    elif case == "timestamp changed after signing":
        headers["X-HubSpot-Request-Timestamp"] = str(int(time.time() * 1000) - 1000)
    elif case == "signed for another address":
        headers = hubspot_signed(body, server.url.replace("/webhooks/", "/hooks/"))
    elif case == "signed ten minutes ago":
        headers = hubspot_signed(body, server.url, at_ms=int((time.time() - 600) * 1000))
    elif case == "signed ten minutes from now":
        headers = hubspot_signed(body, server.url, at_ms=int((time.time() + 600) * 1000))
    elif case == "timestamp beyond any date":
        headers = hubspot_signed(body, server.url, at_ms=10**20)
    elif case == "timestamp not a number":
        headers["X-HubSpot-Request-Timestamp"] = "yesterday"
    elif case == "timestamp of more digits than int() reads":
        headers["X-HubSpot-Request-Timestamp"] = "9" * 5000  # Python's limit is 4,300
    elif case == "timestamp in digits int() does not read":
        headers["X-HubSpot-Request-Timestamp"] = "\u00b2\u00b3"  # superscripts: isdigit()
    elif case == "no headers":
        headers = {"Content-Type": "application/json"}
    elif case == "no signature":
        del headers["X-HubSpot-Signature-v3"]
    elif case == "no timestamp":
        del headers["X-HubSpot-Request-Timestamp"]

    status, answer = await server.post(body, headers)

    assert status == 401
    assert CLIENT_SECRET not in json.dumps(answer)
    assert outbox(database_path) == []


@pytest.mark.parametrize(
    "body",
    [
        b"contact.creation 501",
        b'{"subscriptionType": "contact.creation", "objectId": 501}',
        b"[501, 502]",
        b'[{"subscriptionType": "contact.creation", "objectId": 501}, "502"]',
    ],
)
async def test_a_signed_body_that_is_not_an_array_of_events_is_refused_400(
    server: Server, database_path: Path, body: bytes
) -> None:
    status, answer = await server.post_signed(body)
    assert status == 400
    assert "error" in answer
    assert outbox(database_path) == []


async def test_a_signed_event_with_a_key_written_twice_is_refused_400_and_queues_nothing(
    server: Server, database_path: Path
) -> None:
    body = b'[{"subscriptionType": "contact.creation", "objectId": 501, "objectId": 502}]'
    status, answer = await server.post_signed(body)
    assert status == 400
    assert 'the key "objectId" twice' in answer["error"]
    assert outbox(database_path) == []


@pytest.mark.parametrize(
    ("client_secret", "access_token"),
    [(None, TOKEN), (CLIENT_SECRET, None)],
    ids=["no client secret", "no access token"],
)
async def test_without_both_hubspot_settings_the_webhook_answers_503(
    make_server: MakeServer,
    database_path: Path,
    client_secret: str | None,
    access_token: str | None,
) -> None:
    server = await make_server(client_secret=client_secret, access_token=access_token)
    status, answer = await server.post_signed(announce("501"))
    assert status == 503
    assert "HUBSPOT_CLIENT_SECRET" in answer["error"]
    assert outbox(database_path) == []


async def test_behind_a_proxy_the_signature_is_checked_against_hubspot_webhook_url(
    make_server: MakeServer, database_path: Path
) -> None:
    server = await make_server(webhook_url=PUBLIC_URL)
    body = announce("501")

    local = await server.post(body, hubspot_signed(body, server.url))
    public = await server.post(body, hubspot_signed(body, PUBLIC_URL))

    assert local[0] == 401
    assert public == (200, {"queued": 1, "repeated": 0, "ignored": 0})
    assert len(outbox(database_path)) == 1


async def test_behind_a_proxy_without_hubspot_webhook_url_the_401_names_the_address_checked(
    server: Server, database_path: Path
) -> None:
    body = announce("501")
    status, answer = await server.post(body, hubspot_signed(body, PUBLIC_URL))
    assert status == 401
    assert server.url in answer["error"] and "HUBSPOT_WEBHOOK_URL" in answer["error"]
    assert CLIENT_SECRET not in json.dumps(answer)
    assert outbox(database_path) == []


# --- the worker: fetch each contact, route it ----------------------------------------------


async def test_the_worker_fetches_each_announced_contact_and_routes_it_as_a_hubspot_lead(
    server: Server, hubspot: FakeHubSpot, database_path: Path
) -> None:
    big = hubspot.add_contact(email="cto@bigco.example", company="BigCo", numemployees="5000")
    small = hubspot.add_contact(email="owner@tiny.example", company="Tiny", numemployees="12")
    assert (await server.post_signed(announce(big, small)))[1]["queued"] == 2
    assert hubspot.requests == []  # the webhook answered without calling HubSpot
    assert server.worker is not None

    assert await server.worker.deliver_due() == 2

    fetched = sorted(r.path for r in hubspot.calls("GET", "/crm/v3/objects/contacts/"))
    assert fetched == sorted(f"/crm/v3/objects/contacts/{c}" for c in (big, small))
    routed = leads(database_path)
    assert routed[f"hubspot:{big}"] == {
        "external_id": f"hubspot:{big}",
        "crm_system": "hubspot",
        "crm_id": big,
        "rep_id": "ann",
        "rule": "Enterprise",
        "email": "cto@bigco.example",
        "status": "offered",
    }
    assert routed[f"hubspot:{small}"]["rep_id"] == "ben"
    assert routed[f"hubspot:{small}"]["rule"] == "Everyone else"
    assert [state for _, state in outbox(database_path)] == ["done", "done"]
    # Announced again later: queued once only, so never fetched or routed twice.
    assert (await server.post_signed(announce(big)))[1] == {
        "queued": 0,
        "repeated": 1,
        "ignored": 0,
    }
    assert await server.worker.deliver_due() == 0
    assert len(leads(database_path)) == 2


async def test_a_contact_deleted_before_the_worker_came_is_given_up_and_routes_nothing(
    server: Server, database_path: Path
) -> None:
    await server.post_signed(announce("424242"))
    assert server.worker is not None
    await server.worker.deliver_due()
    assert leads(database_path) == {}
    assert outbox(database_path) == [({"contact_id": "424242"}, "failed")]


async def test_a_rate_limited_fetch_is_tried_again_no_sooner_than_hubspot_asked(
    server: Server, hubspot: FakeHubSpot, database_path: Path
) -> None:
    contact = hubspot.add_contact(email="cto@bigco.example", numemployees="5000")
    await server.post_signed(announce(contact))
    hubspot.fail_next(429, headers={"Retry-After": "30"})
    assert server.worker is not None

    await server.worker.deliver_due()

    assert leads(database_path) == {}
    assert outbox(database_path) == [({"contact_id": contact}, "pending")]
    with sqlite3.connect(database_path) as connection:
        next_attempt, error = connection.execute(
            "SELECT next_attempt_at, last_error FROM outbox WHERE kind = ?", (KIND,)
        ).fetchone()
    when = datetime.fromisoformat(str(next_attempt))
    assert when.replace(tzinfo=when.tzinfo or UTC) == TUESDAY + timedelta(seconds=30)
    assert "429" in error
    assert await server.worker.deliver_due() == 0  # not due yet on the test's clock
    assert len(hubspot.requests) == 1


async def test_with_the_server_running_its_worker_routes_an_announced_contact_unasked(
    make_server: MakeServer, hubspot: FakeHubSpot, database_path: Path
) -> None:
    server = await make_server(run_workers=True)
    contact = hubspot.add_contact(email="cto@bigco.example", numemployees="5000")

    assert (await server.post_signed(announce(contact)))[0] == 200

    for _ in range(100):
        if f"hubspot:{contact}" in leads(database_path):
            break
        await asyncio.sleep(0.05)
    assert leads(database_path)[f"hubspot:{contact}"]["rep_id"] == "ann"


# --- the whole way: announced, routed, claimed, the owner written back ---------------------


async def test_an_announced_contact_claimed_gets_its_owner_written_back_to_hubspot_once(
    server: Server, hubspot: FakeHubSpot, database_path: Path, clock: Clock
) -> None:
    from bot.reading import Viewer
    from bot.service.offers import claim

    ann = hubspot.add_owner("ann@acme.example")
    contact = hubspot.add_contact(email="cto@bigco.example", numemployees="5000")
    await server.post_signed(announce(contact))
    assert server.worker is not None
    await server.worker.deliver_due()  # fetched and routed: ann's
    assert leads(database_path)[f"hubspot:{contact}"]["rep_id"] == "ann"

    await claim(server.app.uow, f"hubspot:{contact}", by="ann")
    await server.worker.deliver_due()
    clock.advance(minutes=10)
    await server.post_signed(announce(contact))  # HubSpot's retry of the announcement
    await server.worker.deliver_due()

    assert hubspot.patches == [(contact, {"hubspot_owner_id": ann})]
    assert hubspot.contacts[contact].properties["hubspot_owner_id"] == ann
    story = await server.app.reader.story(f"hubspot:{contact}", Viewer(rep="ann", manager=None))
    assert story is not None
    assert [e.what for e in story.events if e.what.startswith("Owner")] == [
        "Owner set in HubSpot (Ann Archer)"
    ]


async def test_a_claim_by_a_rep_with_no_hubspot_owner_is_given_up_saying_what_to_set(
    server: Server, hubspot: FakeHubSpot, database_path: Path
) -> None:
    from bot.reading import Viewer
    from bot.service.offers import claim

    contact = hubspot.add_contact(email="owner@tiny.example", numemployees="12")  # ben's
    await server.post_signed(announce(contact))
    assert server.worker is not None
    await server.worker.deliver_due()
    await claim(server.app.uow, f"hubspot:{contact}", by="ben")
    await server.worker.deliver_due()

    assert hubspot.patches == []
    story = await server.app.reader.story(f"hubspot:{contact}", Viewer(rep="ben", manager=None))
    assert story is not None
    (failed,) = [e.what for e in story.events if e.what.startswith("Owner NOT set")]
    assert "ben@acme.example" in failed and "hubspot_owner_id" in failed
