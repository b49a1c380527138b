"""The Slack surfaces as a rep and a manager read them: what the answers, modals and App Home
say about a lead, through the real Bolt app against the fake Slack on loopback. Past 400 lines:
each test walks from one surface to another (a card to its reject, `/routing why`, App Home) on
the one policy and helpers here; a file per surface would split those walks in two."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.bootstrap import App
from bot.card import CardContent, Contact
from bot.service.intake import intake
from bot.service.outcomes import Reported, record_posted_events
from bot.slack.blocks import mentioned
from bot.slack.cards import CardView, offer_card, reminder, team_copy
from bot.slack.contact_sla import ContactMiss, contact_missed_alert, contact_reminder
from routing.leads import parse_lead
from routing.report import EventKind, OutcomeEvent
from tests.bot.conftest import TUESDAY, Clock
from tests.bot.test_slack_app import send
from tests.bot.test_slack_blocks import literal_texts, rich_length, rich_texts
from tests.bot.test_slack_blocks import texts as texts_of
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
  - {id: sol, name: Sol Stone, slack: USOL}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
teams:
  duo: {members: [ann, ben], distribution: round_robin, manager: mia}
  one: {members: [sol], manager: mia}
rules:
  - name: Partners
    when: {source: partner}
    assign: {queue: partners}
  - name: Solo
    when: {source: solo}
    assign: {team: one}
  - name: Everyone
    assign: {team: duo}
fallback: {queue: triage, channel: CTRIAGE}
"""

NOT_MY_TERRITORY = {
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


async def new_lead(app: App, lead_id: str = "L-1", **fields: Any) -> str:
    """Route a lead (Jo of Acme Corp unless told otherwise); the Slack id of its rep."""
    lead = parse_lead({"id": lead_id, "company": "Acme Corp", "first_name": "Jo", **fields})
    result = await intake(app.uow, lead)
    assert result.lead.rep is not None
    return f"U{result.lead.rep.upper()}"


async def routing(http: TestClient, slack: FakeSlack, user: str, text: str) -> dict[str, Any]:
    """Type `/routing text` as `user`; the parameters of the answer."""
    before = len(slack.calls_to("response"))
    tag = f"{user}-{before}"
    body = command_body(text, user, response_url=slack.response_url(tag), trigger_id=tag)
    assert await send(http, body) == 200
    return (await slack.wait_for("response", count=before + 1))[before].params


def home_action_body(action_id: str, value: str, user: str) -> str:
    """A button clicked in the App Home: the payload names the view, not a message."""
    payload = action_payload(action_id, value, user, trigger_id=f"home-{action_id}")
    payload["container"] = {"type": "view", "view_id": "VHOME"}
    payload["view"] = {"id": "VHOME", "type": "home", "blocks": []}
    del payload["channel"], payload["message"]
    return _form(payload)


def _form(payload: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode({"payload": json.dumps(payload)})


def texts(node: Any) -> str:
    """The blocks' JSON, then each rich text block as the mrkdwn it stands for."""
    return "\n".join([json.dumps(node, ensure_ascii=False), *rich_texts(node)])


async def test_a_lead_moved_to_a_queue_by_time_off_is_said_to_wait_in_that_queue(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app, source="solo")  # Sol's alone: nobody else can take it
    assert user == "USOL"

    answer = await routing(http, slack, user, "pto")

    assert "(L-1) → the triage queue" in answer["text"]
    assert "queued queue" not in answer["text"]


async def test_the_reject_modal_names_the_lead_as_its_card_does(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app)
    card = (await slack.wait_for("chat.postMessage"))[0]

    assert await send(http, action_body("reject_lead", "L-1", user, channel=f"D{user[1:]}")) == 200

    (modal,) = await slack.wait_for("views.open")
    view = modal.params["view"]
    assert card.params["blocks"][0]["text"]["text"] == "Jo · Acme Corp"
    assert rich_texts(view["blocks"][0]) == ["*Jo · Acme Corp*"]
    assert view["private_metadata"] == "L-1"


def click_body(action_id: str, lead_id: str, user: str, n: int) -> str:
    """`user` clicking `action_id` on the card of `lead_id` in their DM, for the `n`th time
    (each click its own, so none is dropped as Slack's repeat of another)."""
    payload = action_payload(action_id, lead_id, user, channel=f"D{user[1:]}", trigger_id=f"t{n}")
    payload["actions"][0]["action_ts"] = f"1700000001.00010{n}"
    return _form(payload)


async def test_reject_on_a_card_claimed_meanwhile_asks_no_reason_and_says_it_stays_yours(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app)
    await slack.wait_for("chat.postMessage")
    assert await send(http, click_body("claim_lead", "L-1", user, 1)) == 200
    await slack.wait_for("chat.update")

    assert await send(http, click_body("reject_lead", "L-1", user, 2)) == 200

    (told,) = await slack.wait_for("chat.postEphemeral")
    assert told.params["user"] == user
    assert told.params["text"] == "You claimed Jo · Acme Corp (L-1): it stays yours."
    assert rich_texts(told.params["blocks"]) == [
        "You claimed *Jo · Acme Corp* (L-1): it stays yours."
    ]
    await asyncio.sleep(0.2)
    assert slack.calls_to("views.open") == []  # no reason asked for a reject that cannot be


async def test_reject_on_a_card_that_moved_on_asks_no_reason_and_says_it_is_not_yours(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app)
    await slack.wait_for("chat.postMessage")
    body = view_submission_body("reject_lead_modal", "L-1", NOT_MY_TERRITORY, user)
    assert await send(http, body) == 200  # the lead goes to the other rep of the team

    assert await send(http, click_body("reject_lead", "L-1", user, 1)) == 200

    (told,) = await slack.wait_for("chat.postEphemeral")
    assert told.params["text"] == (
        "Jo · Acme Corp (L-1) is no longer offered to you, so there is nothing to reject."
    )
    await asyncio.sleep(0.2)
    assert slack.calls_to("views.open") == []


async def test_reject_on_a_card_another_rep_claimed_names_who_holds_it(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app)
    await slack.wait_for("chat.postMessage")
    body = view_submission_body("reject_lead_modal", "L-1", NOT_MY_TERRITORY, user)
    assert await send(http, body) == 200
    other = "UBEN" if user == "UANN" else "UANN"
    await slack.wait_for("chat.postMessage", count=3)  # "You rejected", the other rep's card
    assert await send(http, click_body("claim_lead", "L-1", other, 1)) == 200
    await slack.wait_for("chat.update", count=2)

    assert await send(http, click_body("reject_lead", "L-1", user, 2)) == 200

    (told,) = await slack.wait_for("chat.postEphemeral")
    holder = "Ben Baker" if other == "UBEN" else "Ann Archer"
    assert told.params["text"] == (
        f"Jo · Acme Corp (L-1) is no longer offered to you: {holder} holds it."
    )
    assert slack.calls_to("views.open") == []


async def test_a_manager_clicking_reject_is_told_only_its_rep_can_not_that_they_are_unknown(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await new_lead(app)
    await slack.wait_for("chat.postMessage")

    assert await send(http, click_body("reject_lead", "L-1", "UMIA", 1)) == 200

    (told,) = await slack.wait_for("chat.postEphemeral")
    assert told.params["text"] == "Only the rep a lead is offered to can reject it."
    assert slack.calls_to("views.open") == []


async def test_a_rep_who_rejects_is_told_which_lead_went_to_whom(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app)
    await slack.wait_for("chat.postMessage")

    body = view_submission_body("reject_lead_modal", "L-1", NOT_MY_TERRITORY, user)
    assert await send(http, body) == 200

    told = next(
        call.params
        for call in await slack.wait_for("chat.postMessage", count=3)
        if call.params["channel"] == user and "You rejected" in call.params["text"]
    )
    other = "Ben Baker" if user == "UANN" else "Ann Archer"
    assert rich_texts(told["blocks"]) == [
        f"You rejected *Jo · Acme Corp* (L-1). It is now with {other}."
    ]
    assert told["text"] == f"You rejected Jo · Acme Corp (L-1). It is now with {other}."
    assert told["mrkdwn"] is False


async def test_why_shows_a_rep_a_lead_that_left_them_only_until_it_left(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    user = await new_lead(app)
    await slack.wait_for("chat.postMessage")
    body = view_submission_body("reject_lead_modal", "L-1", NOT_MY_TERRITORY, user)
    assert await send(http, body) == 200
    await slack.wait_for("chat.postMessage", count=3)  # "You rejected", the other rep's card
    other = "UBEN" if user == "UANN" else "UANN"
    other_name = "Ben Baker" if other == "UBEN" else "Ann Archer"
    clock.advance(minutes=3)
    assert await send(http, click_body("claim_lead", "L-1", other, 1)) == 200
    await slack.wait_for("chat.update", count=2)

    theirs = "\n".join(rich_texts((await routing(http, slack, user, "why L-1"))["blocks"]))
    holders = "\n".join(rich_texts((await routing(http, slack, other, "why L-1"))["blocks"]))
    managers = "\n".join(rich_texts((await routing(http, slack, "UMIA", "why L-1"))["blocks"]))

    assert f"Routed again to {other_name}" in theirs  # where it went, as they were told
    assert f"Claimed ({other_name})" not in theirs
    assert "_What happened after this lead left you is for its new rep" in theirs
    for full in (holders, managers):
        assert f"Claimed ({other_name})" in full
        assert "left you" not in full


async def test_why_hides_a_deal_the_next_rep_won_from_a_rep_though_the_crm_dates_it_earlier(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    user = await new_lead(app)
    await slack.wait_for("chat.postMessage")
    body = view_submission_body("reject_lead_modal", "L-1", NOT_MY_TERRITORY, user)
    assert await send(http, body) == 200
    await slack.wait_for("chat.postMessage", count=3)
    other = "UBEN" if user == "UANN" else "UANN"
    clock.advance(minutes=3)
    assert await send(http, click_body("claim_lead", "L-1", other, 1)) == 200
    await slack.wait_for("chat.update", count=2)
    # The next rep wins it later that day; the CRM dates the deal by its close date, a day
    # (midnight), before the moment the lead left the first rep.
    clock.advance(hours=2)
    midnight = clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
    won = OutcomeEvent(EventKind.WON, midnight, Decimal("48000"), currency="USD")
    await record_posted_events(app.uow, [Reported("L-1", won, "crm", "deal-L-1")])

    theirs = "\n".join(rich_texts((await routing(http, slack, user, "why L-1"))["blocks"]))
    holders = "\n".join(rich_texts((await routing(http, slack, other, "why L-1"))["blocks"]))

    assert "48,000" in holders  # the won deal is in the story of the rep who won it
    assert "48,000" not in theirs and "Won" not in theirs
    assert "_What happened after this lead left you is for its new rep" in theirs


async def test_the_next_reps_card_says_what_the_rep_who_rejected_it_wrote_for_them(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app)
    await slack.wait_for("chat.postMessage")
    values = {
        **NOT_MY_TERRITORY,
        "reject_note": {
            "reject_reason_note": {"type": "plain_text_input", "value": "Wants a *Spanish* speaker"}
        },
    }
    body = view_submission_body("reject_lead_modal", "L-1", values, user)
    assert await send(http, body) == 200

    other = "UBEN" if user == "UANN" else "UANN"
    name = "Ann Archer" if user == "UANN" else "Ben Baker"
    posts = await slack.wait_for("chat.postMessage", count=3)
    (card,) = [c.params for c in posts if c.params["channel"] == other]
    said = "\n".join(literal_texts(card["blocks"]))
    assert (
        f"rejected by {name}: Not my territory: Wants a *Spanish* speaker · waiting 0s" in said
    )  # as written: the rep's words are not formatting


async def test_routing_queue_lists_a_reps_leads_as_their_cards_title_them(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await new_lead(app, "L-1", source="solo")
    await new_lead(app, "L-2", source="solo", company="", first_name="")
    await new_lead(app, "L-3", source="solo", company="Initech", first_name="")

    answer = await routing(http, slack, "USOL", "queue")

    lines = rich_texts(answer["blocks"])[0].splitlines()
    assert lines[0] == "*Your leads to claim: 3*"
    assert lines[1].startswith("• *Jo · Acme Corp* (L-1)")
    assert lines[2].startswith("• *Lead L-2*")  # the card's title when it names nobody
    assert "(L-2)" not in lines[2]
    assert lines[3].startswith("• *Initech* (L-3)")


async def test_routing_queue_stays_one_readable_answer_however_long_the_names(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    company = "Consolidated Amalgamated Holdings & Subsidiaries " * 19  # 950 characters
    for n in range(1, 21):
        await new_lead(app, f"L-{n}", source="solo", company=company)
        queued = parse_lead({"id": f"Q-{n}", "company": company, "source": "partner"})
        assert (await intake(app.uow, queued)).lead.status == "queued"

    answer = await routing(http, slack, "USOL", "queue")
    manager = await routing(http, slack, "UMIA", "queue")

    for said in (answer, manager):
        (block,) = said["blocks"]
        assert rich_length(block) <= 3000
        (text,) = rich_texts(block)
        assert all(len(line) <= 400 for line in text.splitlines())
        assert company[:100] in "".join(literal_texts(block))  # as written: "&" and all
    (mine,) = rich_texts(answer["blocks"])
    assert "… and " in mine and mine.startswith("*Your leads to claim: 20*")
    assert rich_texts(manager["blocks"])[0].startswith(
        "*Unmatched queue: 20 leads (the oldest 10)*"
    )


async def test_a_reject_from_the_app_home_takes_the_lead_off_the_home(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app)
    opened = event_body({"type": "app_home_opened", "user": user, "tab": "home"})
    assert await send(http, opened, json_body=True) == 200
    (home,) = await slack.wait_for("views.publish")
    assert '"value": "L-1"' in texts(home.params["view"])

    assert await send(http, home_action_body("reject_lead", "L-1", user)) == 200
    await slack.wait_for("views.open")
    body = view_submission_body("reject_lead_modal", "L-1", NOT_MY_TERRITORY, user)
    assert await send(http, body) == 200

    republished = (await slack.wait_for("views.publish", count=2))[1]
    assert republished.params["user_id"] == user
    assert '"value": "L-1"' not in texts(republished.params["view"])
    assert "No leads to claim." in texts(republished.params["view"])


async def test_a_claim_from_the_app_home_that_comes_too_late_refreshes_the_home(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app)
    opened = event_body({"type": "app_home_opened", "user": user, "tab": "home"})
    assert await send(http, opened, json_body=True) == 200
    await slack.wait_for("views.publish")
    # The lead leaves the rep while their Home still shows it.
    body = view_submission_body("reject_lead_modal", "L-1", NOT_MY_TERRITORY, user)
    assert await send(http, body) == 200
    await slack.wait_for("views.publish", count=2)

    assert await send(http, home_action_body("claim_lead", "L-1", user)) == 200

    republished = (await slack.wait_for("views.publish", count=3))[2]
    assert '"value": "L-1"' not in texts(republished.params["view"])


def _confirm_of(node: Any, action_id: str) -> str:
    """The confirmation text of the button `action_id` anywhere in `node`."""
    if isinstance(node, dict):
        if node.get("action_id") == action_id:
            return str(node["confirm"]["text"]["text"])
        found = [_confirm_of(value, action_id) for value in node.values()]
    elif isinstance(node, list):
        found = [_confirm_of(item, action_id) for item in node]
    else:
        return ""
    return next((text for text in found if text), "")


async def test_im_out_promises_a_rep_without_working_hours_no_next_working_day(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app)  # the reps of the policy keep no hours: out until back
    card = (await slack.wait_for("chat.postMessage"))[0]
    opened = event_body({"type": "app_home_opened", "user": user, "tab": "home"})
    assert await send(http, opened, json_body=True) == 200
    (home,) = await slack.wait_for("views.publish")

    for asked in (
        _confirm_of(card.params["blocks"], "mark_ooo"),
        _confirm_of(home.params["view"], "home_go_away"),
    ):
        assert "next working day" not in asked
        assert "until you say you're back" in asked

    assert await send(http, action_body("mark_ooo", "L-1", user, channel=f"D{user[1:]}")) == 200
    (told,) = await slack.wait_for("chat.postEphemeral")
    assert told.params["text"].startswith("You're out of office until further notice.")


def test_im_out_promises_a_rep_with_working_hours_their_next_working_day() -> None:
    content = CardContent("Jo · Acme Corp", Contact(), (), "Everyone", None, None)

    card = offer_card(CardView(lead_id="L-1", content=content, keeps_hours=True))

    assert "until your next working day" in _confirm_of(card.blocks, "mark_ooo")


def test_a_long_title_is_cut_in_notifications_as_in_the_cards_header() -> None:
    title = "Jo · " + "International Consolidated Holdings " * 25  # 905 characters
    content = CardContent(title, Contact(), (), "Everyone", TUESDAY, 600)
    view = CardView(lead_id="L-1", content=content, assignee=mentioned("UANN"))

    for message in (offer_card(view), team_copy(view), reminder(view)):
        header_or_line = "".join(literal_texts(message.blocks[0]))
        assert len(message.text) <= 300, message.text
        assert "Jo · International" in header_or_line and len(header_or_line) <= 300
        assert "…" in message.text


async def test_an_assign_in_a_digest_says_so_where_the_leads_picker_was(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    for lead_id in ("Q-1", "Q-2"):
        queued = parse_lead({"id": lead_id, "company": "Acme Corp", "source": "partner"})
        assert (await intake(app.uow, queued)).lead.status == "queued"
    digest = await routing(http, slack, "UMIA", "digest")
    pickers = [b.get("block_id") for b in digest["blocks"] if b["type"] == "actions"]
    assert pickers == ["assign:Q-1", "assign:Q-2"]

    payload = action_payload("assign_lead", "", "UMIA", response_url=slack.response_url("pick"))
    payload["actions"] = [
        {
            "type": "static_select",
            "action_id": "assign_lead",
            "block_id": "assign:Q-1",
            "selected_option": {"text": {"type": "plain_text", "text": "Ben"}, "value": "ben"},
            "action_ts": "1700000002.000100",
        }
    ]
    payload["message"]["blocks"] = digest["blocks"]
    assert await send(http, _form(payload)) == 200

    answer = (await slack.wait_for("response", count=2))[1].params
    kept = answer["blocks"]
    assert len(kept) == len(digest["blocks"])
    where = next(i for i, b in enumerate(digest["blocks"]) if b.get("block_id") == "assign:Q-1")
    assert kept[where]["type"] == "context"
    assert "Assigned to <@UBEN> by <@UMIA>" in kept[where]["elements"][0]["text"]
    assert kept[where - 1] == digest["blocks"][where - 1]  # under the lead's own line
    assert kept[-1] == digest["blocks"][-1]
    assert [b.get("block_id") for b in kept if b["type"] == "actions"] == ["assign:Q-2"]


def test_the_contact_sla_messages_cut_a_long_title_as_the_card_does() -> None:
    title = "Jo · " + "International Consolidated Holdings " * 25
    view = CardView(lead_id="L-1", content=CardContent(title, Contact(), (), "x", None, None))
    miss = ContactMiss(rep="<@UANN>", due_at=TUESDAY, touched_at=None, holder=None, queue=None)

    for message in (contact_reminder(view, TUESDAY), contact_missed_alert(view, miss, ())):
        assert len(message.text) <= 350, message.text
        assert all(len(json.dumps(block)) <= 800 for block in message.blocks)


async def test_help_says_what_queue_answers_a_rep_and_a_manager(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    answer = await routing(http, slack, "UANN", "help")

    (line,) = [line for line in answer["text"].splitlines() if "`/routing queue`" in line]
    assert "your leads to claim" in line and "managers: the unmatched queue" in line


async def test_help_says_digest_is_for_managers_as_a_rep_who_types_it_is_told(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    help_text = (await routing(http, slack, "UANN", "help"))["text"]
    refused = (await routing(http, slack, "UANN", "digest"))["text"]

    (line,) = [line for line in help_text.splitlines() if "`/routing digest`" in line]
    assert "managers:" in line and "your summary" not in line
    assert refused == "Digests are for managers named in the routing policy."


async def test_im_out_from_the_app_home_tells_the_rep_where_their_leads_went(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    user = await new_lead(app)
    await slack.wait_for("chat.postMessage")

    assert await send(http, home_action_body("home_go_away", "", user)) == 200

    await slack.wait_for("views.publish")
    told = [
        rich_texts(call.params["blocks"])[0]
        for call in slack.calls_to("chat.postMessage")
        if call.params["channel"] == user and "out of office" in call.params["text"]
    ]
    other = "Ben Baker" if user == "UANN" else "Ann Archer"
    assert told == [
        "You're out of office until further notice. "
        f"Moved 1 unclaimed lead: *Jo · Acme Corp* (L-1) → {other}."
    ]


async def test_a_managers_queue_names_each_leads_queue_when_they_wait_in_several(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await routing(http, slack, "USOL", "pto")  # Sol's leads now wait in the fallback's queue
    await intake(app.uow, parse_lead({"id": "T-1", "company": "Acme Corp", "source": "solo"}))
    await intake(app.uow, parse_lead({"id": "P-1", "company": "Initech", "source": "partner"}))

    answer = await routing(http, slack, "UMIA", "queue")

    lines = rich_texts(answer["blocks"])[0].splitlines()
    assert lines[1].startswith("• T-1 · Acme Corp · solo · in triage · waiting")
    assert lines[2].startswith("• P-1 · Initech · partner · in partners · waiting")


async def test_a_settled_card_says_why_its_own_offer_closed_when_the_clock_did_not_move(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    # The test's clock stands still: the reject and the time off are at the same instant, as
    # two transactions can be on a coarse clock.
    first = await new_lead(app)
    await slack.wait_for("chat.postMessage")
    body = view_submission_body("reject_lead_modal", "L-1", NOT_MY_TERRITORY, first)
    assert await send(http, body) == 200
    second = "UBEN" if first == "UANN" else "UANN"
    await slack.wait_for("chat.update")
    for _ in range(500):  # the second card's post is recorded just after Slack answers
        if len([c for c in slack.calls_to("chat.postMessage") if "blocks" in c.params]) >= 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)

    await routing(http, slack, second, "pto")

    updates = await slack.wait_for("chat.update", count=2)
    status = rich_texts(updates[1].params["blocks"][1])[0]
    assert updates[1].params["channel"] == f"D{second[1:]}"
    assert status == "Moved to the triage queue while you are out of office"


def home_select_body(lead_id: str, chosen: str, user: str) -> str:
    """A manager picking `chosen` in a queued lead's Assign picker in their App Home."""
    payload = action_payload("assign_lead", "", user, trigger_id="home-assign")
    payload["container"] = {"type": "view", "view_id": "VHOME"}
    payload["view"] = {"id": "VHOME", "type": "home", "blocks": []}
    del payload["channel"], payload["message"], payload["response_url"]
    payload["actions"] = [
        {
            "type": "static_select",
            "action_id": "assign_lead",
            "block_id": f"assign:{lead_id}",
            "selected_option": {"text": {"type": "plain_text", "text": chosen}, "value": chosen},
            "action_ts": "1700000003.000100",
        }
    ]
    return _form(payload)


async def test_a_managers_app_home_lists_the_queued_leads_each_with_assign(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    for lead_id, company in (("P-1", "Initech"), ("P-2", "Globex <!here>")):
        queued = parse_lead({"id": lead_id, "company": company, "source": "partner"})
        assert (await intake(app.uow, queued)).lead.status == "queued"

    opened = event_body({"type": "app_home_opened", "user": "UMIA", "tab": "home"})
    assert await send(http, opened, json_body=True) == 200
    (home,) = await slack.wait_for("views.publish")

    blocks = home.params["view"]["blocks"]
    said = list(texts_of(blocks, ("mrkdwn", "rich_text")))
    first = said.index("*Unmatched queue:* 2 leads, oldest waiting 0s")
    assert said[first + 1].startswith("*P-1* · Initech · partner · waiting")
    assert said[first + 2].startswith("*P-2* · Globex &lt;!here&gt; · partner · waiting")
    assert "Globex <!here>" in literal_texts(blocks)  # as written, in rich text
    pickers = [b["block_id"] for b in blocks if b["type"] == "actions"]
    assert pickers == ["assign:P-1", "assign:P-2"]


async def test_a_manager_assigns_from_the_app_home_and_the_home_shows_it_gone(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    queued = parse_lead({"id": "P-1", "company": "Initech", "source": "partner"})
    assert (await intake(app.uow, queued)).lead.status == "queued"

    assert await send(http, home_select_body("P-1", "ben", "UMIA")) == 200

    (home,) = await slack.wait_for("views.publish")
    assert home.params["user_id"] == "UMIA"
    assert "assign:P-1" not in texts(home.params["view"])
    assert "*Unmatched queue:* empty" in texts(home.params["view"])
    card = next(
        c for c in await slack.wait_for("chat.postMessage") if c.params["channel"] == "UBEN"
    )
    assert '"value": "P-1"' in texts(card.params["blocks"])


async def test_a_rep_cannot_assign_from_an_app_home_and_is_told_so(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    queued = parse_lead({"id": "P-1", "company": "Initech", "source": "partner"})
    assert (await intake(app.uow, queued)).lead.status == "queued"

    assert await send(http, home_select_body("P-1", "ben", "UANN")) == 200

    (told,) = await slack.wait_for("chat.postMessage")
    assert told.params["channel"] == "UANN"
    assert "Only managers" in told.params["text"]


async def test_time_off_names_each_moved_lead_as_its_card_does(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await new_lead(app, "L-1", source="solo")
    await new_lead(app, "L-2", source="solo", company="", first_name="")

    answer = await routing(http, slack, "USOL", "pto")

    assert rich_texts(answer["blocks"])[0] == (
        "You're out of office until further notice. Moved 2 unclaimed leads: "
        "*Jo · Acme Corp* (L-1) → the triage queue; *Lead L-2* → the triage queue."
    )
