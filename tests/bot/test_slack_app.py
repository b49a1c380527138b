"""The Slack app end to end: the real Bolt app behind the real aiohttp server, signed requests
in, the real AsyncWebClient out to a fake Slack Web API on loopback. Past 400 lines: other Slack
test files take their policy, `send` and `carded_lead` from here, and each test is one path
through the app from a signed request to what Slack was sent."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.bootstrap import App
from bot.reading import viewer_of
from bot.service.intake import intake
from bot.slack.availability import pto
from bot.slack.blocks import Message
from bot.slack.commands import Pto
from bot.slack.parts import SlackParts
from routing.leads import parse_lead
from storage.db import Database
from storage.models import AuditEventRow, OfferRow, OutboxRow, RepStateRow
from tests.bot.conftest import SLACK_SIGNING_SECRET as SIGNING_SECRET
from tests.bot.conftest import Clock
from tests.bot.test_slack_blocks import literal_texts, rich_texts
from tests.fakes.slack import (
    FakeSlack,
    action_body,
    command_body,
    event_body,
    json_signed_headers,
    slack_signed_headers,
    view_submission_body,
)

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: ben, name: Ben Baker, slack: UBEN}
  - {id: cat, name: Cat Cole, slack: UCAT}
  - {id: dot, name: Dot Drake}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
teams:
  trio: {members: [ann, ben, cat], distribution: round_robin, manager: mia, channel: CTRIO}
rules:
  - name: Everyone
    assign: {team: trio}
"""


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def send(http: TestClient, body: str, *, json_body: bool = False, **sign: Any) -> int:
    headers = (
        json_signed_headers(body, SIGNING_SECRET, **sign)
        if json_body
        else slack_signed_headers(body, SIGNING_SECRET, **sign)
    )
    response = await http.post("/slack/events", data=body, headers=headers)
    return response.status


async def new_lead(app: App, lead_id: str = "L-1", **fields: Any) -> str:
    lead = parse_lead({"id": lead_id, "company": "Acme Corp", "first_name": "Jo", **fields})
    result = await intake(app.uow, lead)
    assert result.lead.rep is not None
    return result.lead.rep


async def carded_lead(app: App, slack: FakeSlack, db: Database) -> str:
    """Route lead L-1 and wait until both its cards are posted; the rep's Slack id."""
    rep = await new_lead(app)
    await slack.wait_for("chat.postMessage", count=2)
    await _until(lambda: _all_posted(db))
    return f"U{rep.upper()}"


async def offers(db: Database) -> list[OfferRow]:
    async with db.reading() as session:
        return list((await session.execute(select(OfferRow).order_by(OfferRow.id))).scalars())


def texts(blocks: Any) -> str:
    """The blocks' JSON, then each rich text block as the mrkdwn it stands for."""
    return "\n".join([json.dumps(blocks), *rich_texts(blocks)])


def _mrkdwn(node: Any) -> list[str]:
    """Every mrkdwn text in `node`: what Slack parses for mentions and links."""
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [t for value in node.values() for t in _mrkdwn(value)]
    if isinstance(node, list):
        return [t for item in node for t in _mrkdwn(item)]
    return []


async def test_a_new_lead_is_carded_in_the_reps_dm_and_the_teams_channel(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    rep = await new_lead(app)
    posts = await slack.wait_for("chat.postMessage", count=2)
    channels = {call.params["channel"] for call in posts}
    assert channels == {f"U{rep.upper()}", "CTRIO"}
    (dm,) = [call for call in posts if call.params["channel"] == f"U{rep.upper()}"]
    blocks = dm.params["blocks"]
    assert "claim_lead" in texts(blocks) and '"value": "L-1"' in texts(blocks)
    assert "<!date^" in texts(blocks)
    await _until(lambda: _all_posted(sqlite_db))
    (offer,) = await offers(sqlite_db)
    assert offer.channel == f"D{rep.upper()}" and offer.message_ts
    assert offer.team_channel == "CTRIO" and offer.team_message_ts


async def test_the_team_channels_copy_names_the_rep_and_carries_no_buttons(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    rep = await new_lead(app)
    posts = {c.params["channel"]: c.params for c in await slack.wait_for("chat.postMessage", 2)}
    user = f"U{rep.upper()}"
    channel = posts["CTRIO"]
    assert channel["text"].startswith(f"New lead for <@{user}>")
    assert f"New lead for <@{user}>" in texts(channel["blocks"])
    assert not any(b["type"] == "actions" for b in channel["blocks"])
    assert "Why you" not in texts(channel["blocks"])
    dm = posts[user]
    assert dm["text"].startswith("New lead for you")
    assert "claim_lead" in texts(dm["blocks"]) and "mark_ooo" in texts(dm["blocks"])


async def test_a_web_form_lead_without_crm_gives_its_rep_the_contact_details_and_only_them(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    contact = {"email": "jo@acme.example", "phone": "+1 212 555 0102", "website": "acme.example"}
    rep = await new_lead(app, **contact)
    await _until(lambda: _all_posted(sqlite_db))
    posts = {c.params["channel"]: c.params for c in slack.calls_to("chat.postMessage")}
    user = f"U{rep.upper()}"
    dm, channel = texts(posts[user]["blocks"]), texts(posts["CTRIO"]["blocks"])
    assert "<mailto:jo@acme.example|jo@acme.example>" in dm
    assert "<tel:+12125550102|+1 212 555 0102>" in dm
    assert "<https://acme.example|acme.example>" in dm
    assert "Lead L-1" in dm and "Open in CRM" not in dm  # no CRM: the id, not a link
    assert "jo@acme.example" not in channel and "tel:" not in channel
    assert "<https://acme.example|acme.example>" in channel and "Lead L-1" in channel

    assert await send(http, action_body("claim_lead", "L-1", user)) == 200
    updates = {c.params["channel"]: c.params for c in await slack.wait_for("chat.update", 2)}
    assert "<mailto:jo@acme.example|jo@acme.example>" in texts(updates[f"D{rep.upper()}"])
    assert "jo@acme.example" not in texts(updates["CTRIO"])


async def test_im_out_clicked_on_someone_elses_card_in_a_channel_marks_nobody_out(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    # A channel copy posted before its buttons were taken off still carries them.
    rep = await new_lead(app)
    await slack.wait_for("chat.postMessage", count=2)
    bystander = next(u for u in ("UANN", "UBEN", "UCAT") if u != f"U{rep.upper()}")
    assert await send(http, action_body("mark_ooo", "L-1", bystander, channel="CTRIO")) == 200
    (told,) = await slack.wait_for("chat.postEphemeral")
    assert told.params["user"] == bystander
    assert "App Home" in told.params["text"] and "/routing pto" in told.params["text"]
    assert "out of office" not in told.params["text"]
    state = (await app.reader.rep_states()).get(bystander[1:].lower())
    assert state is None or not state.away
    (offer,) = await offers(sqlite_db)
    assert offer.status == "offered"


async def test_a_claim_updates_the_card_in_place_and_a_second_click_is_told_who_holds_it(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    user = await carded_lead(app, slack, sqlite_db)
    assert await send(http, action_body("claim_lead", "L-1", user)) == 200
    updates = await slack.wait_for("chat.update", count=2)
    assert all(f"Claimed by <@{user}>" in texts(u.params["blocks"]) for u in updates)
    assert all("claim_lead" not in texts(u.params["blocks"]) for u in updates)
    (offer,) = await offers(sqlite_db)
    assert offer.status == "claimed"

    other = "UBEN" if user != "UBEN" else "UCAT"
    assert await send(http, action_body("claim_lead", "L-1", other, trigger_id="t2")) == 200
    (ephemeral,) = await slack.wait_for("chat.postEphemeral")
    assert ephemeral.params["user"] == other
    assert "is offered to" in ephemeral.params["text"] or "holds" in ephemeral.params["text"]


async def test_a_forged_or_stale_signature_is_refused_401_and_nothing_happens(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    rep = await new_lead(app)
    await slack.wait_for("chat.postMessage", count=2)
    body = action_body("claim_lead", "L-1", f"U{rep.upper()}")
    forged = slack_signed_headers(body, "not-the-secret-at-all")
    assert (await http.post("/slack/events", data=body, headers=forged)).status == 401
    assert await send(http, body, timestamp=int(time.time()) - 600) == 401
    await asyncio.sleep(0.2)
    (offer,) = await offers(sqlite_db)
    assert offer.status == "offered"
    assert slack.calls_to("chat.update") == []


@pytest.mark.parametrize("timestamp", ["abc", "", "12.5", "-1", "\u00b2\u00b3", "9" * 5000])
async def test_a_malformed_slack_timestamp_is_refused_401_before_bolt(
    app: App, http: TestClient, timestamp: str
) -> None:
    body = action_body("claim_lead", "L-1", "UANN")
    headers = slack_signed_headers(body, SIGNING_SECRET)
    headers["X-Slack-Request-Timestamp"] = timestamp
    response = await http.post("/slack/events", data=body, headers=headers)
    assert response.status == 401
    assert "X-Slack-Request-Timestamp" in (await response.json())["error"]


async def test_a_refused_claim_escapes_the_lead_id_it_repeats(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await new_lead(app)
    await slack.wait_for("chat.postMessage", count=2)
    forged_id = "<mailto:ceo@victim.example|click me>"
    assert await send(http, action_body("claim_lead", forged_id, "UANN", trigger_id="x1")) == 200
    (told,) = await slack.wait_for("chat.postEphemeral")
    assert "<mailto:" not in told.params["text"]
    assert "&lt;mailto:ceo@victim.example|click me&gt;" in told.params["text"]
    assert f"no lead with id {forged_id}" in literal_texts(told.params["blocks"])  # as written


async def test_twenty_concurrent_claims_make_one_claim_and_one_update(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    user = await carded_lead(app, slack, sqlite_db)
    statuses = await asyncio.gather(
        *(send(http, action_body("claim_lead", "L-1", user, trigger_id=f"t{n}")) for n in range(20))
    )
    assert statuses == [200] * 20
    await slack.wait_for("chat.update", count=2)
    await asyncio.sleep(0.3)
    assert len(slack.calls_to("chat.update")) == 2  # the DM and the team channel, once each
    async with sqlite_db.reading() as session:
        claims = (
            (await session.execute(select(AuditEventRow).where(AuditEventRow.kind == "claimed")))
            .scalars()
            .all()
        )
    assert len(claims) == 1


async def test_reject_asks_for_a_reason_then_routes_the_lead_to_someone_else(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    user = await carded_lead(app, slack, sqlite_db)
    assert await send(http, action_body("reject_lead", "L-1", user)) == 200
    (modal,) = await slack.wait_for("views.open")
    assert modal.params["view"]["private_metadata"] == "L-1"

    empty = view_submission_body("reject_lead_modal", "L-1", {}, user)
    response = await http.post(
        "/slack/events", data=empty, headers=slack_signed_headers(empty, SIGNING_SECRET)
    )
    assert (await response.json())["response_action"] == "errors"

    values = {
        "reject_reason": {
            "reject_reason_choice": {
                "type": "radio_buttons",
                "selected_option": {"value": "Not my territory"},
            }
        },
        "reject_note": {"reject_reason_note": {"type": "plain_text_input", "value": "EMEA"}},
    }
    body = view_submission_body("reject_lead_modal", "L-1", values, user, view_id="V2")
    assert await send(http, body) == 200
    await slack.wait_for("chat.update", count=2)
    await slack.wait_for("chat.postMessage", count=5)  # new card x2 and the note to the rep
    first, second = await offers(sqlite_db)
    assert first.status == "rejected" and second.rep_id != first.rep_id
    for update in slack.calls_to("chat.update"):  # the rep's card and the channel's copy
        assert "Rejected by" in texts(update.params["blocks"])
        assert "Why" not in texts(update.params["blocks"])
    async with sqlite_db.reading() as session:
        audit = (
            await session.execute(select(AuditEventRow).where(AuditEventRow.kind == "rejected"))
        ).scalar_one()
    assert audit.reason == "Not my territory: EMEA"


async def test_im_out_moves_the_reps_open_leads_and_says_where(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    rep = await new_lead(app, "L-1")
    for n in range(2, 5):
        await new_lead(app, f"L-{n}")
    await slack.wait_for("chat.postMessage", count=8)
    user = f"U{rep.upper()}"
    assert await send(http, action_body("mark_ooo", "L-1", user)) == 200
    (ephemeral,) = await slack.wait_for("chat.postEphemeral")
    assert "out of office" in ephemeral.params["text"]
    assert "Moved 2 unclaimed leads" in ephemeral.params["text"]
    mine = [o for o in await offers(sqlite_db) if o.rep_id == rep]
    assert {o.status for o in mine} == {"reassigned"}


async def test_routing_why_explains_the_decision_and_its_story_to_the_rep(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    rep = await new_lead(app)
    body = command_body(
        "why L-1", f"U{rep.upper()}", response_url=slack.response_url("why"), trigger_id="c1"
    )
    assert await send(http, body) == 200
    (answer,) = await slack.wait_for("response")
    story = texts(answer.params["blocks"])
    assert "Everyone" in story and "Routed to" in story
    assert answer.params["response_type"] == "ephemeral"


async def test_routing_why_about_a_lead_never_offered_to_you_is_refused(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    rep = await new_lead(app)
    someone_else = next(u for u in ("UANN", "UBEN", "UCAT") if u != f"U{rep.upper()}")
    body = command_body(
        "why L-1", someone_else, response_url=slack.response_url("w2"), trigger_id="w2"
    )
    await send(http, body)
    (answer,) = await slack.wait_for("response")
    unknown = command_body(
        "why L-404", someone_else, response_url=slack.response_url("w3"), trigger_id="w3"
    )
    await send(http, unknown)
    (_, nothing) = await slack.wait_for("response", count=2)
    # Word for word what an unknown lead gets: the answer does not confirm the lead exists.
    assert answer.params["text"] == nothing.params["text"].replace("L-404", "L-1")
    assert "No lead of yours found" in answer.params["text"]


async def test_routing_pto_for_a_manager_marks_a_rep_and_help_for_nonsense(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    body = command_body("pto for 3d <@UBEN|ben>", "UMIA", response_url=slack.response_url("p"))
    await send(http, body)
    (answer,) = await slack.wait_for("response")
    assert "Ben Baker is out of office until <!date^" in answer.params["text"]
    body = command_body(
        "pto for 3d <@UANN|ann>", "UBEN", response_url=slack.response_url("q"), trigger_id="c2"
    )
    await send(http, body)
    answers = await slack.wait_for("response", count=2)
    assert "Only managers" in answers[1].params["text"]
    body = command_body("frobnicate", "UANN", response_url=slack.response_url("h"), trigger_id="c3")
    await send(http, body)
    answers = await slack.wait_for("response", count=3)
    assert "/routing" in answers[2].params["text"] and "Traceback" not in answers[2].params["text"]


async def test_a_rep_a_manager_marks_out_or_back_is_told_in_a_dm_by_whom(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    rep = await new_lead(app)  # the rep the lead went to, who has it unclaimed
    user = f"U{rep.upper()}"
    await slack.wait_for("chat.postMessage", count=2)
    body = command_body(f"pto for 3d <@{user}|{rep}>", "UMIA", response_url=slack.response_url("p"))
    assert await send(http, body) == 200
    (answer,) = await slack.wait_for("response")
    await _deliver(app, clock)

    told = [
        call.params
        for call in slack.calls_to("chat.postMessage")
        if call.params["channel"] == user and "marked you" in call.params["text"]
    ]
    assert len(told) == 1
    assert told[0]["text"].startswith("Mia Moss marked you out of office until <!date^")
    assert "Moved 1 unclaimed lead: Jo · Acme Corp (L-1) → " in told[0]["text"]
    assert told[0]["mrkdwn"] is False
    assert "is out of office until" in answer.params["text"]  # the manager's answer, as before
    # Word for word where the manager's answer says the lead went.
    assert told[0]["text"].endswith(answer.params["text"].split(". ", 1)[1])

    opened = event_body({"type": "app_home_opened", "user": user, "tab": "home"})
    assert await send(http, opened, json_body=True) == 200
    (home,) = await slack.wait_for("views.publish")
    assert "set by Mia Moss with /routing pto" in json.dumps(home.params["view"])

    body = command_body(
        f"pto off <@{user}|{rep}>", "UMIA", response_url=slack.response_url("b"), trigger_id="c2"
    )
    assert await send(http, body) == 200
    await slack.wait_for("response", count=2)
    await _deliver(app, clock)
    back = [c.params for c in slack.calls_to("chat.postMessage") if c.params["channel"] == user]
    assert back[-1]["text"] == "Mia Moss marked you available again."


async def test_a_rep_a_manager_marks_out_is_marked_and_the_manager_answered_if_slack_is_down(
    app: App, sqlite_db: Database
) -> None:
    # No Slack call is made to answer: the DM to the rep waits in the outbox for Slack.
    parts = SlackParts(
        uow=app.uow, reader=app.reader, policy=lambda: app.policy, clock=app.uow.clock
    )
    manager = viewer_of(app.policy, "UMIA")

    answer = await pto(parts, manager, Pto(until=None, user="UBEN"))

    assert isinstance(answer, Message)
    assert answer.text.startswith("Ben Baker is out of office until further notice.")
    async with sqlite_db.sessions() as session:
        state = await session.get(RepStateRow, "ben")
        (dm,) = (
            await session.execute(select(OutboxRow).where(OutboxRow.kind == "slack.absence_told"))
        ).scalars()
    assert state is not None and state.away
    assert state.away_reason == "set by Mia Moss with /routing pto"
    assert dm.payload["rep"] == "ben" and dm.lane == "UBEN"


async def _deliver(app: App, clock: Clock) -> None:
    """A few rounds of the outbox, the clock moved past any retry's wait after each."""
    assert app.delivery is not None
    for _ in range(3):
        await app.delivery.deliver_due()
        clock.advance(minutes=1)


async def test_a_slack_retry_of_an_event_is_acted_on_once(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    body = event_body({"type": "app_home_opened", "user": "UANN", "tab": "home"}, event_id="Ev9")
    assert await send(http, body, json_body=True) == 200
    assert await send(http, body, json_body=True) == 200
    await slack.wait_for("views.publish")
    await asyncio.sleep(0.3)
    assert len(slack.calls_to("views.publish")) == 1


async def test_a_hostile_company_name_pings_and_links_nobody(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await new_lead(app, company="<!channel> <http://evil.example|click> & co")
    post = (await slack.wait_for("chat.postMessage"))[0]
    # Slack parses mrkdwn (and the notification text); a header is plain text, shown as typed.
    parsed = [post.params["text"], *_mrkdwn(post.params["blocks"])]
    assert not any("<!channel>" in t or "<http://evil" in t for t in parsed)
    assert "&lt;!channel&gt;" in post.params["text"]
    header = post.params["blocks"][0]["text"]
    assert header == {
        "type": "plain_text",
        "text": "Jo · <!channel> <http://evil.example|click> & co",
        "emoji": True,
    }


async def test_a_card_slack_refuses_with_429_or_500_is_retried_and_posted_once(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    slack.fail("chat.postMessage", status=429, retry_after=1, times=1)
    slack.fail("chat.postMessage", status=500, times=1)
    await new_lead(app)
    await _until(lambda: _refused(slack, 2), within=10)
    limited, failed = slack.refused
    assert limited.status == 429 and failed.status == 500
    # The lane Slack held (the DM's or the team channel's, whichever posted first) waited out
    # the Retry-After; the other lane never waited for it.
    held = limited.params["channel"]
    after_hold = [c for c in [*slack.calls, failed] if c.params.get("channel") == held]
    assert all(call.at - limited.at >= 0.95 for call in after_hold)
    await asyncio.sleep(0.2)
    posted = len(slack.calls_to("chat.postMessage"))
    clock.advance(minutes=10)  # the outbox waits out its backoff ...
    assert app.delivery is not None
    app.delivery.wake()  # ... and tries again once it is over
    await slack.wait_for("chat.postMessage", count=posted + 1, timeout=10)
    await _until(lambda: _all_posted(sqlite_db), within=10)
    await slack.wait_for("chat.postMessage", count=2, timeout=10)  # the held lane's too
    await asyncio.sleep(0.3)
    assert len(slack.calls_to("chat.postMessage")) == 2
    # A 500 may come after Slack posted: its channel was looked through before posting again.
    (looked,) = slack.calls_to("conversations.history")
    assert looked.params["channel"] in ("DANN", "CTRIO")
    assert len(slack.refused) == 2


async def test_a_card_slack_refuses_for_good_is_recorded_and_not_retried(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    slack.fail("chat.postMessage", status=200, error="channel_not_found", times=1)
    await new_lead(app)
    await _until(lambda: _outbox_failed(sqlite_db))
    async with sqlite_db.reading() as session:
        failed = (
            await session.execute(select(OutboxRow).where(OutboxRow.failed_at.is_not(None)))  # type: ignore[union-attr]
        ).scalar_one()
    assert "channel_not_found" in (failed.last_error or "")
    assert "xoxb" not in (failed.last_error or "")


async def _all_posted(db: Database) -> bool:
    async with db.reading() as session:
        pending = (
            await session.execute(
                select(OutboxRow).where(
                    OutboxRow.done_at.is_(None),  # type: ignore[union-attr]
                    OutboxRow.kind == "slack.offer_card",
                )
            )
        ).first()
    return pending is None


async def _outbox_failed(db: Database) -> bool:
    async with db.reading() as session:
        row = (
            await session.execute(
                select(OutboxRow).where(OutboxRow.failed_at.is_not(None))  # type: ignore[union-attr]
            )
        ).first()
    return row is not None


async def _until(check: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.02)


async def _refused(slack: FakeSlack, count: int) -> bool:
    return len(slack.refused) >= count
