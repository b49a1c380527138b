"""The SLA watchdog, the unmatched queue and the digests as Slack shows them: the real Bolt app and
delivery, signed requests in, the real AsyncWebClient out to the fake Slack on loopback."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.bootstrap import App
from bot.service.digests import queue_digest
from bot.service.intake import intake
from bot.service.watchdog import sweep
from bot.slack.blocks import slack_date
from routing.leads import parse_lead
from storage.db import Database
from storage.models import LeadRow, OfferRow
from tests.bot.conftest import Clock
from tests.bot.test_slack_app import send
from tests.bot.test_slack_blocks import rich_texts
from tests.fakes.slack import (
    FakeSlack,
    action_body,
    action_payload,
    command_body,
    event_body,
    view_submission_body,
)

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: ben, name: Ben Baker, slack: UBEN}
  - {id: dot, name: Dot Drake, slack: UDOT}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA, timezone: Europe/Berlin, digest: "0 9 * * 1-5"}
teams:
  duo: {members: [ann, ben], distribution: round_robin, manager: mia}
rules:
  - name: Everyone
    assign: {team: duo}
fallback: {queue: unmatched, channel: CQUEUE}
sla: {default: 10m, remind_at_half: true, max_reassignments: 1}
"""
SLA = timedelta(minutes=10)


@pytest.fixture
def slack_policy() -> str:
    return POLICY


def assign_body(lead_id: str, chosen: str, by: str, *, response_url: str) -> str:
    """A manager picking the rep `chosen` (their id in the policy) in a queued lead's Assign
    picker."""
    payload = action_payload("assign_lead", "", by, channel="CQUEUE", response_url=response_url)
    payload["actions"] = [
        {
            "type": "static_select",
            "action_id": "assign_lead",
            "block_id": f"assign:{lead_id}",
            "selected_option": {"text": {"type": "plain_text", "text": chosen}, "value": chosen},
            "action_ts": f"{datetime.now(UTC).timestamp():.6f}",
        }
    ]
    payload["message"]["blocks"] = [
        {"type": "section", "block_id": "s1", "text": {"type": "mrkdwn", "text": "the lead"}},
        {"type": "actions", "block_id": f"assign:{lead_id}", "elements": []},
    ]
    return urlencode({"payload": json.dumps(payload)})


def texts(blocks: Any) -> str:
    """The blocks' JSON, then each rich text block as the mrkdwn it stands for."""
    return "\n".join([json.dumps(blocks), *rich_texts(blocks)])


async def offers(db: Database) -> list[OfferRow]:
    async with db.reading() as session:
        return list((await session.execute(select(OfferRow).order_by(OfferRow.id))).scalars())


async def posted_offers(db: Database, count: int = 1) -> list[OfferRow]:
    """The offers, once the first `count` have their card's post recorded (its ts and the SLA
    deadline it starts: stored just after Slack answers, so a sweep before could miss it)."""
    for _ in range(500):
        made = await offers(db)
        if len(made) >= count and all(o.message_ts and o.sla_due_at for o in made[:count]):
            return made
        await asyncio.sleep(0.01)
    raise AssertionError(f"the post of {count} card(s) was never recorded")


async def posted_offer(db: Database) -> OfferRow:
    return (await posted_offers(db))[0]


async def lead_status(db: Database, external_id: str) -> str:
    async with db.reading() as session:
        row = (
            await session.execute(select(LeadRow).where(LeadRow.external_id == external_id))
        ).scalar_one()
        return row.status


async def carded(app: App, slack: FakeSlack) -> None:
    lead = parse_lead({"id": "L-1", "company": "Acme Corp", "first_name": "Jo"})
    await intake(app.uow, lead)
    await slack.wait_for("chat.postMessage")
    await posted_offers(app.uow.db)


async def test_an_unclaimed_lead_moves_on_and_both_cards_say_so(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    await carded(app, slack)
    clock.advance(minutes=11)

    await sweep(app.uow)

    (update,) = await slack.wait_for("chat.update")
    assert update.params["channel"] == "DANN"
    assert "Reassigned to <@UBEN>: not claimed within 10m" in texts(update.params["blocks"])
    assert "Why you" not in texts(update.params["blocks"])  # no longer true: it is Ben's now
    posts = await slack.wait_for("chat.postMessage", count=2)
    assert posts[1].params["channel"] == "UBEN"
    new_card = texts(posts[1].params["blocks"])
    assert "Reassigned to you: not claimed in time by Ann Archer" in new_card
    assert "waiting 11m" in new_card and "claim_lead" in new_card


async def test_at_half_the_sla_the_rep_is_reminded_in_the_cards_thread(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    await carded(app, slack)
    offer = await posted_offer(sqlite_db)
    clock.advance(minutes=5)

    await sweep(app.uow)

    reminder = (await slack.wait_for("chat.postMessage", count=2))[1]
    assert reminder.params["channel"] == "DANN"
    assert reminder.params["thread_ts"] == offer.message_ts
    assert "Still yours to claim" in reminder.params["text"]
    assert "claim_lead" in texts(reminder.params["blocks"])


async def test_a_reminder_names_the_deadline_the_sla_runs_to_from_the_cards_post(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    slack.fail("chat.postMessage", status=500, times=1)  # the card goes out 2 minutes late
    await intake(app.uow, parse_lead({"id": "L-1", "company": "Acme Corp"}))
    for _ in range(500):
        if slack.refused:
            break
        await asyncio.sleep(0.01)
    clock.advance(minutes=2)
    assert app.delivery is not None
    app.delivery.wake()
    offer = await posted_offer(sqlite_db)
    assert offer.sla_due_at is not None and offer.sla_due_at > offer.offered_at + SLA
    clock.advance(minutes=5)

    await sweep(app.uow)

    reminder = (await slack.wait_for("chat.postMessage", count=2))[1]
    assert f"claim it by {slack_date(offer.sla_due_at)}" in reminder.params["text"]


async def test_the_app_home_names_an_offer_as_its_card_does(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await carded(app, slack)  # Jo of Acme Corp, offered to Ann

    opened = event_body({"type": "app_home_opened", "user": "UANN", "tab": "home"})
    assert await send(http, opened, json_body=True) == 200
    (home,) = await slack.wait_for("views.publish")

    card = (await slack.wait_for("chat.postMessage"))[0]
    assert card.params["blocks"][0]["text"]["text"] == "Jo · Acme Corp"
    assert rich_texts(home.params["view"]["blocks"][1])[0].startswith("*Jo · Acme Corp*\n")


async def test_a_reject_reason_that_looks_like_a_placeholder_is_shown_as_written(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await carded(app, slack)
    note = {"type": "plain_text_input", "value": "see {rep:ben} & <!here>"}
    values = {"reject_note": {"reject_reason_note": note}}

    assert await send(http, view_submission_body("reject_lead_modal", "L-1", values, "UANN")) == 200

    update = (await slack.wait_for("chat.update"))[0]
    assert rich_texts(update.params["blocks"][1]) == [
        "Rejected by <@UANN>: see {rep:ben} &amp; &lt;!here&gt; · now with <@UBEN>"
    ]
    said = update.params["blocks"][1]["elements"][0]["elements"]
    assert {"type": "text", "text": ": see {rep:ben} & <!here>"} in said  # as written
    assert update.params["text"] == "Rejected by <@UANN> · now with <@UBEN>"


async def queued_lead(app: App, slack: FakeSlack, clock: Clock) -> None:
    """L-1 missed by ann and then ben: in the unmatched queue (max_reassignments is 1)."""
    await carded(app, slack)
    clock.advance(minutes=11)
    await sweep(app.uow)
    await slack.wait_for("chat.postMessage", count=2)
    await posted_offers(app.uow.db, count=2)
    clock.advance(minutes=11)
    await sweep(app.uow)


async def test_after_the_last_miss_the_queue_and_the_manager_get_the_lead_with_assign(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    await queued_lead(app, slack, clock)

    posts = await slack.wait_for("chat.postMessage", count=4)
    by_channel = {call.params["channel"]: texts(call.params["blocks"]) for call in posts[2:]}
    assert set(by_channel) == {"CQUEUE", "UMIA"}
    assert all('"block_id": "assign:L-1"' in blocks for blocks in by_channel.values())
    for blocks in by_channel.values():  # only the policy's reps, not any workspace user
        assert "users_select" not in blocks and '"type": "static_select"' in blocks
        assert '"value": "ann"' in blocks and '"value": "dot"' in blocks
    assert "Nobody claimed this lead in time" in by_channel["UMIA"]
    # The manager's alert says whom the lead was offered to, so they know whom to ask.
    for blocks in by_channel.values():
        assert "Not claimed after 2 offers (Ann Archer, Ben Baker)" in blocks
    assert await lead_status(sqlite_db, "L-1") == "queued"


async def test_a_claim_on_an_old_card_of_a_queued_lead_says_where_it_waits_in_words(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    await queued_lead(app, slack, clock)
    await slack.wait_for("chat.postMessage", count=4)

    # Ben's card, clicked before its update took the buttons off.
    assert await send(http, action_body("claim_lead", "L-1", "UBEN", channel="DBEN")) == 200

    (told,) = await slack.wait_for("chat.postEphemeral")
    assert (told.params["channel"], told.params["user"]) == ("DBEN", "UBEN")
    assert told.params["text"] == (
        "Lead L-1 is no longer offered to anyone: it waits in the unmatched queue, "
        "for a manager to assign."
    )
    assert await lead_status(sqlite_db, "L-1") == "queued"


async def test_a_manager_assigns_a_queued_lead_and_the_post_says_to_whom(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    await queued_lead(app, slack, clock)
    await slack.wait_for("chat.postMessage", count=4)

    body = assign_body("L-1", "dot", "UMIA", response_url=slack.response_url("assign"))
    assert await send(http, body) == 200

    (answer,) = await slack.wait_for("response")
    assert answer.params["replace_original"] is True
    assert "Assigned to <@UDOT> by <@UMIA>" in answer.params["text"]
    assert "assign:L-1" not in texts(answer.params["blocks"])
    card = (await slack.wait_for("chat.postMessage", count=5))[4]
    assert card.params["channel"] == "UDOT" and "claim_lead" in texts(card.params["blocks"])
    assert await lead_status(sqlite_db, "L-1") == "offered"
    assert (await offers(sqlite_db))[-1].rep_id == "dot"


async def test_a_lead_assigned_back_to_the_rep_who_missed_it_does_not_say_it_came_from_them(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    await queued_lead(app, slack, clock)  # Ben's offer was the last to lapse
    await slack.wait_for("chat.postMessage", count=4)

    body = assign_body("L-1", "ben", "UMIA", response_url=slack.response_url("assign"))
    assert await send(http, body) == 200

    card = (await slack.wait_for("chat.postMessage", count=5))[4]
    assert card.params["channel"] == "UBEN"
    said = texts(card.params["blocks"])
    assert "Reassigned to you: offered again after it was not claimed in time · waiting 22m" in said
    assert "by Ben Baker" not in said
    assert "Assigned by Mia Moss" in said  # why: the manager's hand


async def test_a_rep_cannot_assign_from_the_queue(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    await queued_lead(app, slack, clock)

    body = assign_body("L-1", "ann", "UANN", response_url=slack.response_url("assign"))
    assert await send(http, body) == 200

    (answer,) = await slack.wait_for("response")
    assert answer.params.get("replace_original") is False
    assert "Only managers" in answer.params["text"]
    assert await lead_status(sqlite_db, "L-1") == "queued"


async def test_a_rep_picked_from_an_old_post_who_has_left_the_policy_is_not_assigned(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    await queued_lead(app, slack, clock)

    body = assign_body("L-1", "zoe", "UMIA", response_url=slack.response_url("assign"))
    assert await send(http, body) == 200

    (answer,) = await slack.wait_for("response")
    assert answer.params.get("replace_original") is False
    assert "zoe is no longer a rep in the routing policy" in answer.params["text"]
    assert await lead_status(sqlite_db, "L-1") == "queued"


async def test_routing_digest_answers_a_manager_with_the_digest_and_a_rep_with_a_sentence(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    await queued_lead(app, slack, clock)

    manager = command_body(
        "digest", "UMIA", response_url=slack.response_url("mia"), trigger_id="t.mia"
    )
    assert await send(http, manager) == 200
    rep = command_body("digest", "UANN", response_url=slack.response_url("ann"), trigger_id="t.ann")
    assert await send(http, rep) == 200

    answers = {call.params["text"]: call for call in await slack.wait_for("response", count=2)}
    digest = next(call for text, call in answers.items() if "Digests are for" not in text)
    blocks = texts(digest.params["blocks"])
    assert '"block_id": "assign:L-1"' in blocks
    assert "Ann Archer" in blocks and "Ben Baker" in blocks  # one SLA miss each
    assert any(text == "Digests are for managers named in the routing policy." for text in answers)


async def test_a_scheduled_digest_is_posted_to_the_manager_once_per_tick(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    tick = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    assert await queue_digest(app.uow, "mia", due_at=tick, runner="one")
    assert not await queue_digest(app.uow, "mia", due_at=tick, runner="two")

    (post,) = await slack.wait_for("chat.postMessage")
    assert post.params["channel"] == "UMIA"
    assert post.params["text"].startswith("All clear")
