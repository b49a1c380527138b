"""The contact SLA as Slack shows it (the real Bolt app and delivery, signed requests in, the real
AsyncWebClient out to the fake Slack on loopback), and its policy errors in `leadrouter check`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from typer.testing import CliRunner

from bot.bootstrap import App
from bot.cli import app as cli
from bot.metrics import Metrics
from bot.service.intake import intake
from bot.service.outcomes import Reported, record_posted_events
from bot.service.watchdog import sweep
from bot.slack.blocks import slack_date
from routing.leads import parse_lead
from routing.report import EventKind, OutcomeEvent
from tests.bot.conftest import Clock
from tests.bot.test_metrics import samples
from tests.bot.test_slack_app import send
from tests.bot.test_slack_blocks import rich_texts
from tests.bot.test_slack_surfaces import routing
from tests.bot.test_watchdog_slack import posted_offers
from tests.fakes.slack import FakeSlack, action_body, command_body, event_body

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: ben, name: Ben Baker, slack: UBEN}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
teams:
  duo: {members: [ann, ben], distribution: round_robin, manager: mia}
rules:
  - name: Everyone
    assign: {team: duo}
fallback: {queue: unmatched, channel: CQUEUE}
sla: {default: 10m, contact: 2h, reassign_on_contact_miss: true, max_reassignments: 1}
"""


@pytest.fixture
def slack_policy() -> str:
    return POLICY


def texts(blocks: Any) -> str:
    """The blocks' JSON, then each rich text block as the mrkdwn it stands for."""
    return "\n".join([json.dumps(blocks), *rich_texts(blocks)])


async def claimed_by_ann(app: App, http: TestClient, slack: FakeSlack) -> None:
    """L-1 (Jo of Acme Corp) carded to Ann, who clicks Claim: the card says so."""
    await intake(app.uow, parse_lead({"id": "L-1", "company": "Acme Corp", "first_name": "Jo"}))
    await slack.wait_for("chat.postMessage")
    await posted_offers(app.uow.db)
    assert await send(http, action_body("claim_lead", "L-1", "UANN", channel="DANN")) == 200
    await slack.wait_for("chat.update")


async def test_at_half_the_contact_sla_the_rep_is_nudged_in_the_claimed_cards_thread(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    await claimed_by_ann(app, http, slack)
    (offer,) = await posted_offers(app.uow.db)
    due = clock.now + timedelta(hours=2)
    clock.advance(hours=1)

    await sweep(app.uow)

    nudge = (await slack.wait_for("chat.postMessage", count=2))[1]
    assert nudge.params["channel"] == "DANN"
    assert nudge.params["thread_ts"] == offer.message_ts
    assert "Half your time to reach *Jo · Acme Corp* has gone" in texts(nudge.params["blocks"])
    assert f"by {slack_date(due)}" in texts(nudge.params["blocks"])
    assert "Half your time to reach Jo · Acme Corp has gone" in nudge.params["text"]
    assert nudge.params["mrkdwn"] is False


async def test_an_untouched_lead_moves_on_and_the_card_the_manager_and_the_next_rep_say_why(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    await claimed_by_ann(app, http, slack)
    clock.advance(hours=2, minutes=1)

    await sweep(app.uow)

    posts = await slack.wait_for("chat.postMessage", count=3)
    by_channel = {call.params["channel"]: call for call in posts[1:]}
    assert set(by_channel) == {"UMIA", "UBEN"}
    alert = texts(by_channel["UMIA"].params["blocks"])
    assert "<@UANN> claimed this lead and did not contact them by" in alert
    assert "It is now offered to <@UBEN>." in alert
    assert "assign:L-1" not in alert  # offered to a rep, not waiting for one
    new_card = texts(by_channel["UBEN"].params["blocks"])
    assert "Reassigned to you: not contacted in time by Ann Archer" in new_card
    update = (await slack.wait_for("chat.update", count=2))[1]
    assert update.params["channel"] == "DANN"
    moved = texts(update.params["blocks"])
    assert "Reassigned to <@UBEN>: not contacted within 2h of the claim" in moved


async def test_the_last_miss_leaves_the_lead_in_the_queue_with_assign_in_the_managers_dm(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    await intake(app.uow, parse_lead({"id": "L-1", "company": "Acme Corp", "first_name": "Jo"}))
    await slack.wait_for("chat.postMessage")
    await posted_offers(app.uow.db)
    clock.advance(minutes=11)
    await sweep(app.uow)  # Ann let it lapse: Ben's now
    await slack.wait_for("chat.postMessage", count=2)
    await posted_offers(app.uow.db, count=2)
    assert await send(http, action_body("claim_lead", "L-1", "UBEN", channel="DBEN")) == 200
    await slack.wait_for("chat.update", count=2)
    clock.advance(hours=2, minutes=1)

    await sweep(app.uow)  # max_reassignments is 1: to the queue

    posts = await slack.wait_for("chat.postMessage", count=4)
    by_channel = {call.params["channel"]: texts(call.params["blocks"]) for call in posts[2:]}
    assert set(by_channel) == {"UMIA", "CQUEUE"}
    assert "<@UBEN> claimed this lead and did not contact them" in by_channel["UMIA"]
    assert "It waits in the *unmatched* queue." in by_channel["UMIA"]
    assert '"block_id": "assign:L-1"' in by_channel["UMIA"]
    assert "Not contacted in time after 2 offers" in by_channel["CQUEUE"]


async def test_a_late_first_touch_tells_the_manager_and_leaves_the_lead_with_its_rep(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    await claimed_by_ann(app, http, slack)
    late = clock.now + timedelta(hours=2, minutes=20)
    clock.advance(hours=1, minutes=59)
    await sweep(app.uow)  # the reminder
    await slack.wait_for("chat.postMessage", count=2)
    clock.advance(minutes=30)
    touch = Reported(
        lead="L-1",
        event=OutcomeEvent(EventKind.FIRST_TOUCH, late),
        source="dialer",
        source_key="call-1",
    )
    await record_posted_events(app.uow, [touch])

    await sweep(app.uow)

    alert = (await slack.wait_for("chat.postMessage", count=3))[2]
    assert alert.params["channel"] == "UMIA"
    blocks = texts(alert.params["blocks"])
    assert f"the first touch came {slack_date(late)}, late." in blocks
    assert "It is still <@UANN>'s." in blocks


async def test_routing_why_tells_of_a_missed_contact_sla(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    await claimed_by_ann(app, http, slack)
    clock.advance(hours=3)
    await sweep(app.uow)

    why = command_body("why L-1", "UMIA", response_url=slack.response_url("why"), trigger_id="w")
    assert await send(http, why) == 200

    (answer,) = await slack.wait_for("response")
    story = texts(answer.params["blocks"])
    assert "Contact SLA missed (Ann Archer) · not contacted within 2h of the claim" in story


async def test_each_lapsed_contact_sla_is_counted_for_metrics(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    metrics = Metrics()
    assert samples(await metrics.scrape(app))["leadrouter_contact_sla_misses_total"] == 0.0
    await claimed_by_ann(app, http, slack)
    clock.advance(hours=3)

    assert (await sweep(app.uow)).contact_missed == 1

    assert samples(await metrics.scrape(app))["leadrouter_contact_sla_misses_total"] == 1.0


def test_check_reports_a_bad_contact_sla_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        POLICY.replace(
            "sla: {default: 10m, contact: 2h, reassign_on_contact_miss: true, "
            "max_reassignments: 1}",
            "sla:\n  contact: a while\n  reassign_on_contact_miss: true",
        )
    )
    result = CliRunner().invoke(cli, ["check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:13:3: sla.contact: 'a while' is not a duration" in result.stderr


async def touched_now(app: App, clock: Clock) -> None:
    """L-1's first touch, now, reported to `POST /events` by a dialer."""
    touch = Reported(
        lead="L-1",
        event=OutcomeEvent(EventKind.FIRST_TOUCH, clock.now),
        source="dialer",
        source_key="call-1",
    )
    await record_posted_events(app.uow, [touch])


async def home_of(http: TestClient, slack: FakeSlack, user: str) -> str:
    """`user` opens the App Home: the view published, as text."""
    before = len(slack.calls_to("views.publish"))
    event = {"type": "app_home_opened", "user": user, "tab": "home"}
    body = event_body(event, event_id=f"Ev{user}{before}")  # each its own delivery
    assert await send(http, body, json_body=True) == 200
    published = (await slack.wait_for("views.publish", count=before + 1))[before]
    return texts(published.params["view"]["blocks"])


async def test_a_claimed_lead_is_listed_to_contact_with_its_deadline_until_it_is_touched(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    await claimed_by_ann(app, http, slack)
    due = clock.now + timedelta(hours=2)

    home = await home_of(http, slack, "UANN")
    assert "To contact: 1 claimed lead with no first touch yet" in home
    assert f"*Jo · Acme Corp* (L-1) · contact by {slack_date(due)}" in home
    assert "To contact" not in await home_of(http, slack, "UBEN")
    answer = await routing(http, slack, "UANN", "queue")
    assert answer["text"] == "To contact: 1 claimed lead with no first touch yet"
    assert f"*Jo · Acme Corp* (L-1) · contact by {slack_date(due)}" in texts(answer["blocks"])

    await touched_now(app, clock)

    assert "To contact" not in await home_of(http, slack, "UANN")
    answer = await routing(http, slack, "UANN", "queue")
    assert answer["text"] == "You have no leads to claim or to contact."


async def test_a_lead_past_its_contact_deadline_says_since_when_until_the_watchdog_looks(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    await claimed_by_ann(app, http, slack)
    due = clock.now + timedelta(hours=2)
    clock.advance(hours=2, minutes=1)

    assert f"(L-1) · was due {slack_date(due)}" in await home_of(http, slack, "UANN")
    await sweep(app.uow)  # missed: the lead moves on to Ben
    assert "To contact" not in await home_of(http, slack, "UANN")


async def test_going_out_says_the_claimed_leads_still_to_contact_stay_the_reps(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    """Nobody can move a claimed lead, so the rep who goes out (and the manager who marks
    them) are told that those still to contact stay theirs."""
    await claimed_by_ann(app, http, slack)
    due = slack_date(clock.now + timedelta(hours=2))
    answer = await routing(http, slack, "UANN", "pto for 2d")
    assert answer["text"].endswith(
        "No unclaimed leads had to move. The lead you claimed and have yet to contact stays "
        f"yours until its contact deadline, then moves on; it is due {due}."
    )
    answer = await routing(http, slack, "UANN", "pto off")
    assert "claimed" not in answer["text"]

    answer = await routing(http, slack, "UMIA", "pto for 2d <@UANN|ann>")
    assert answer["text"].endswith(
        "The lead Ann Archer claimed and has yet to contact stays theirs until its contact "
        f"deadline, then moves on; it is due {due}."
    )
    assert app.delivery is not None
    await app.delivery.deliver_due()
    (dm,) = [
        call.params["text"]
        for call in await slack.wait_for("chat.postMessage", count=2)
        if call.params["channel"] == "UANN" and "marked you" in call.params["text"]
    ]
    assert dm.startswith("Mia Moss marked you out of office until <!date^")
    assert dm.endswith(
        "The lead you claimed and have yet to contact stays yours until its contact deadline, "
        f"then moves on; it is due {due}."
    )


async def test_going_out_with_every_claimed_lead_touched_says_nothing_of_them(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    await claimed_by_ann(app, http, slack)
    await touched_now(app, clock)
    answer = await routing(http, slack, "UANN", "pto for 2d")
    assert answer["text"].endswith("No unclaimed leads had to move.")
