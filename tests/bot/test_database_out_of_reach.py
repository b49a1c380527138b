"""PostgreSQL out of reach while people use Slack: a rep's Claim and a manager's command are
answered with what to do (try again shortly), nothing is half done, and the same click works
once the database is back. The real Bolt app against the fake Slack, on a PostgreSQL server of
the test's own that is stopped and started again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from bot.bootstrap import App
from bot.service.intake import intake
from bot.slack.app import DATABASE_UNAVAILABLE
from routing.leads import parse_lead
from storage.db import Database, open_database
from storage.models import OfferStatus
from tests.bot.test_contact_sla_slack import POLICY
from tests.bot.test_slack_app import send
from tests.bot.test_watchdog_slack import posted_offers
from tests.fakes.slack import FakeSlack, action_payload, command_body
from tests.pg import PostgresServer

IDLE_S = 0.1


@pytest.fixture
def slack_policy() -> str:
    return POLICY


@pytest.fixture
async def sqlite_db(restartable_postgres: PostgresServer) -> AsyncIterator[Database]:
    """The app's database, here PostgreSQL (the `app` fixture takes it by this name)."""
    name = await restartable_postgres.create_database()
    db = open_database(restartable_postgres.url(name), ping_after_idle_s=IDLE_S)
    await db.create_tables()
    try:
        yield db
    finally:
        await db.dispose()


def claim_click(n: int) -> str:
    click = action_payload("claim_lead", "L-1", "UANN", channel="DANN", trigger_id=f"trig.{n}")
    click["actions"][0]["action_ts"] = f"170000000{n}.000100"  # each its own click
    return urlencode({"payload": json.dumps(click)})


async def test_a_claim_while_the_database_is_down_says_to_try_again_and_works_after(
    app: App, http: TestClient, slack: FakeSlack, restartable_postgres: PostgresServer
) -> None:
    await intake(app.uow, parse_lead({"id": "L-1", "company": "Acme Corp", "first_name": "Jo"}))
    await slack.wait_for("chat.postMessage")
    await posted_offers(app.uow.db)
    restartable_postgres.halt()
    try:
        await asyncio.sleep(IDLE_S + 0.1)
        assert await send(http, claim_click(1)) == 200
        (told,) = await slack.wait_for("chat.postEphemeral")
        assert (told.params["channel"], told.params["user"]) == ("DANN", "UANN")
        assert told.params["text"] == DATABASE_UNAVAILABLE

        body = command_body("queue", "UMIA", response_url=slack.response_url("q"), trigger_id="q")
        assert await send(http, body) == 200
        (answered,) = await slack.wait_for("response")
        assert answered.params["text"] == DATABASE_UNAVAILABLE
    finally:
        restartable_postgres.resume()

    assert await send(http, claim_click(2)) == 200
    await slack.wait_for("chat.update")
    (offer,) = await posted_offers(app.uow.db)
    assert offer.status == OfferStatus.CLAIMED.value
