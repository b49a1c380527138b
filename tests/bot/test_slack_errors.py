"""The Slack app's one error handler, through the real app against the fake Slack: a request the
service refuses is answered 200 and its sentence is said to whoever asked, where they asked; any
other failure is answered 200, logged with an id, and nobody is told a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from bot.bootstrap import App
from storage.db import Database
from tests.bot.test_slack_app import POLICY, carded_lead, send
from tests.bot.test_watchdog_slack import assign_body
from tests.fakes.slack import FakeSlack, action_body, action_payload, view_submission_body

REASON = {
    "reject_reason": {
        "reject_reason_choice": {
            "type": "radio_buttons",
            "selected_option": {"value": "Not my territory"},
        }
    }
}


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def test_a_manager_assigning_a_lead_no_longer_queued_is_told_why_where_they_clicked(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    await carded_lead(app, slack, sqlite_db)  # offered, not in a queue
    body = assign_body("L-1", "ben", "UMIA", response_url=slack.response_url("assign"))
    assert await send(http, body) == 200
    (told,) = await slack.wait_for("chat.postEphemeral")
    assert (told.params["channel"], told.params["user"]) == ("CQUEUE", "UMIA")
    assert told.params["text"].startswith("lead L-1 is not in a queue: it is offered")


async def test_a_rejection_of_a_lead_not_yours_is_answered_in_a_direct_message(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    user = await carded_lead(app, slack, sqlite_db)
    someone_else = next(u for u in ("UANN", "UBEN", "UCAT") if u != user)
    body = view_submission_body("reject_lead_modal", "L-1", REASON, someone_else)
    assert await send(http, body) == 200
    (told,) = (await slack.wait_for("chat.postMessage", count=3))[2:]
    assert (told.params["channel"], told.params["text"]) == (
        someone_else,
        "lead L-1 is not offered to you",
    )


async def test_a_refusal_straight_after_the_ack_keeps_the_ack(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    # No lead at all: the claim is refused before anything is read from Slack or written.
    for n in range(5):
        payload = action_payload("claim_lead", "L-404", "UANN", trigger_id=f"t{n}")
        payload["actions"][0]["action_ts"] = f"1700000000.00000{n}"  # five clicks, no repeat
        assert await send(http, urlencode({"payload": json.dumps(payload)})) == 200
    told = await slack.wait_for("chat.postEphemeral", count=5)
    assert {call.params["text"] for call in told} == {"no lead with id L-404"}


async def test_any_other_failure_is_logged_with_an_id_and_answered_200(
    app: App,
    http: TestClient,
    slack: FakeSlack,
    sqlite_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = await carded_lead(app, slack, sqlite_db)
    posted = len(slack.calls_to("chat.postMessage"))
    slack.fail("views.open", status=500, times=3)  # the client's own two retries as well
    with caplog.at_level(logging.ERROR, logger="bot.slack.app"):
        assert await send(http, action_body("reject_lead", "L-1", user)) == 200
        for _ in range(250):
            if caplog.records:
                break
            await asyncio.sleep(0.02)
    (record,) = caplog.records
    assert record.getMessage().startswith("slack: listener failed (error id ")
    assert slack.calls_to("chat.postEphemeral") == []
    assert len(slack.calls_to("chat.postMessage")) == posted
