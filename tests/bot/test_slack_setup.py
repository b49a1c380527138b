"""Setting leadrouter up in a Slack workspace: a channel the bot was not invited to says so in
the words that fix it, and a rep named by e-mail alone is found in Slack (`users.lookupByEmail`)
and reached there."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlmodel import col

from bot.bootstrap import App
from bot.service.intake import intake
from routing.leads import parse_lead
from storage.db import Database
from storage.models import OutboxRow
from tests.bot.conftest import SLACK_SIGNING_SECRET
from tests.bot.test_outbox_handover import until
from tests.bot.test_slack_blocks import rich_texts
from tests.fakes.slack import (
    FakeSlack,
    command_body,
    event_body,
    json_signed_headers,
    slack_signed_headers,
)

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: bob, name: Bob Brown, email: Bob@Acme.example}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
teams:
  solo: {members: [ann], manager: mia, channel: CSALES}
  bobs: {members: [bob], manager: mia}
rules:
  - {name: Bob's, when: {source: bob}, assign: {team: bobs}}
  - {name: Partners, when: {source: partner}, assign: queue}
  - {name: Ann's, assign: {team: solo}}
fallback: {queue: unmatched, channel: CTRIAGE}
"""


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def lead_for(app: App, lead_id: str, source: str) -> None:
    await intake(app.uow, parse_lead({"id": lead_id, "company": "Acme", "source": source}))


async def item(db: Database, dedupe_prefix: str) -> OutboxRow:
    async with db.reading() as session:
        rows = await session.execute(
            select(OutboxRow).where(col(OutboxRow.dedupe_key).startswith(dedupe_prefix))
        )
        return rows.scalars().one()


async def test_a_channel_the_bot_was_not_invited_to_says_to_invite_it(
    app: App,
    http: TestClient,
    slack: FakeSlack,
    sqlite_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    slack.channel_errors["CSALES"] = "not_in_channel"
    slack.channel_errors["CTRIAGE"] = "channel_not_found"
    await lead_for(app, "L-1", "web")
    await lead_for(app, "L-2", "partner")

    async def given_up() -> bool:
        cards = [await item(sqlite_db, "team-card:"), await item(sqlite_db, "queue-post:")]
        return all(card.failed_at is not None for card in cards)

    await until(given_up)
    team_card = await item(sqlite_db, "team-card:")
    assert team_card.last_error is not None
    assert "not_in_channel" in team_card.last_error
    assert "invite the bot to the channel CSALES" in team_card.last_error
    queue_post = await item(sqlite_db, "queue-post:")
    assert queue_post.last_error is not None
    assert "if it is a private channel, invite the bot to it" in queue_post.last_error
    assert "invite the bot to the channel CSALES" in caplog.text
    # The rep's own card went out all the same; the lead the queue's channel refused went to
    # the manager's DM instead.

    async def manager_told() -> bool:
        return any(c.params["channel"] == "UMIA" for c in slack.calls_to("chat.postMessage"))

    await until(manager_told)
    posts = [call.params["channel"] for call in slack.calls_to("chat.postMessage")]
    assert sorted(posts) == ["UANN", "UMIA"]


# --- reps named by e-mail alone -------------------------------------------------------------


async def test_a_rep_named_by_email_alone_is_looked_up_once_and_gets_their_cards(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    slack.user_email["UBOB"] = "bob@acme.example"
    await lead_for(app, "L-1", "bob")
    (card,) = await slack.wait_for("chat.postMessage")
    assert card.params["channel"] == "UBOB"
    await lead_for(app, "L-2", "bob")
    await slack.wait_for("chat.postMessage", count=2)
    (lookup,) = slack.calls_to("users.lookupByEmail")  # the answer is remembered
    assert lookup.params["email"] == "bob@acme.example"


async def test_a_rep_known_by_email_alone_is_recognised_when_they_use_the_app(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    slack.user_email["UBOB"] = "BOB@acme.example"
    held = slack.hold("users.lookupByEmail")  # their card is not out yet
    await lead_for(app, "L-1", "bob")
    body = command_body("why L-1", "UBOB", response_url=slack.response_url("why"))
    headers = slack_signed_headers(body, SLACK_SIGNING_SECRET)
    assert (await http.post("/slack/events", data=body, headers=headers)).status == 200
    (answer,) = await slack.wait_for("response")
    assert "Bob's" in "\n".join(rich_texts(answer.params["blocks"]))  # the rule that gave it
    assert "No lead of yours" not in answer.params["text"]
    held.release()


async def test_a_rep_slack_has_no_user_for_is_given_up_with_what_to_fix(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    await lead_for(app, "L-1", "bob")

    async def given_up() -> bool:
        return (await item(sqlite_db, "offer-card:")).failed_at is not None

    await until(given_up)
    reason = (await item(sqlite_db, "offer-card:")).last_error or ""
    assert "no Slack user has the e-mail Bob@Acme.example" in reason
    assert "`slack:`" in reason


async def test_without_the_email_scope_the_card_is_given_up_naming_the_scope(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    slack.scopes.remove("users:read.email")
    slack.user_email["UBOB"] = "bob@acme.example"
    await lead_for(app, "L-1", "bob")

    async def given_up() -> bool:
        return (await item(sqlite_db, "offer-card:")).failed_at is not None

    await until(given_up)
    reason = (await item(sqlite_db, "offer-card:")).last_error or ""
    assert "missing_scope" in reason and "users:read.email" in reason
    assert "reinstall" in reason and "manifest.yml" not in reason  # see test_slack_check


async def test_a_rep_known_by_email_alone_sees_their_leads_in_app_home(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    slack.user_email["UBOB"] = "bob@acme.example"
    held = slack.hold("users.lookupByEmail")  # their card is not out yet
    await lead_for(app, "L-7", "bob")
    body = event_body({"type": "app_home_opened", "user": "UBOB", "tab": "home"})
    headers = json_signed_headers(body, SLACK_SIGNING_SECRET)
    assert (await http.post("/slack/events", data=body, headers=headers)).status == 200
    (home,) = await slack.wait_for("views.publish")
    assert "L-7" in json.dumps(home.params["view"])
    held.release()


async def test_slack_verifying_the_request_url_in_http_mode_gets_its_challenge_back(
    http: TestClient, slack: FakeSlack
) -> None:
    body = json.dumps({"token": "legacy", "challenge": "c-8s7d6f", "type": "url_verification"})
    signed = json_signed_headers(body, SLACK_SIGNING_SECRET)
    response = await http.post("/slack/events", data=body, headers=signed)
    assert response.status == 200
    assert (await response.json())["challenge"] == "c-8s7d6f"
    wrong = json_signed_headers(body, "not-the-signing-secret")
    refused = await http.post("/slack/events", data=body, headers=wrong)
    assert refused.status == 401
    assert "c-8s7d6f" not in await refused.text()
