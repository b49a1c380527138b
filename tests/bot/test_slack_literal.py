"""What a lead says reaches Slack as it is, never formatted: a company called `*URGENT* Corp`
is shown with its stars, not in bold. mrkdwn has no escape for `*`, `_`, `~` or a backtick, so
every lead-supplied string must sit where Slack shows text literally (a `rich_text` block's `text`
or `link` element, or a `plain_text` object), never inside a mrkdwn string. Checked on the blocks
the real app posts to the fake Slack on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.bootstrap import App
from bot.service.intake import intake
from routing.leads import parse_lead
from tests.bot.test_slack_app import send
from tests.bot.test_slack_blocks import links, literal_texts, mrkdwn
from tests.bot.test_slack_surfaces import NOT_MY_TERRITORY, POLICY, routing
from tests.fakes.slack import FakeSlack, action_body, event_body, view_submission_body

# Each carries a word found nowhere else, so where the word goes the lead's string went.
FIRST = "*Zorba*"
LAST = "_Quill_"
COMPANY = "~Vexmoor~ `Brick` *Corp*"
TITLE = "`Head` of _Yonder_"
EMAIL = "zorba_quill*x@vexmoor.example"
WORDS = ("Zorba", "Quill", "Vexmoor", "Brick", "Yonder")
HEADING = f"{FIRST} {LAST} · {COMPANY}"


@pytest.fixture
def slack_policy() -> str:
    return POLICY.replace(
        "  duo: {members: [ann, ben]", "  duo: {channel: CDUO, members: [ann, ben]"
    ).replace("assign: {queue: partners}", "assign: {queue: partners, channel: CTRIAGE}")


def lead_fields(**more: Any) -> dict[str, Any]:
    return {
        "first_name": FIRST,
        "last_name": LAST,
        "company": COMPANY,
        "title": TITLE,
        "email": EMAIL,
        **more,
    }


async def new_lead(app: App, lead_id: str, **fields: Any) -> str:
    result = await intake(app.uow, parse_lead({"id": lead_id, **lead_fields(**fields)}))
    return result.lead.status


def assert_literal(blocks: Any, *shown: str) -> None:
    """No word of the lead in any mrkdwn text; each of `shown` whole in a literal place."""
    for text in mrkdwn(blocks):
        for word in WORDS:
            assert word not in text, f"{word!r} reaches Slack as mrkdwn: {text!r}"
    literal = [*literal_texts(blocks), *(link for link, _ in links(blocks))]
    for string in shown:
        assert any(string in text for text in literal), f"{string!r} not shown literally"


def assert_text_unformatted(params: dict[str, Any]) -> None:
    """The notification's text names the lead only where Slack is told not to format it."""
    if any(word in str(params.get("text", "")) for word in WORDS):
        assert params.get("mrkdwn") is False, params


async def test_the_card_its_team_copy_and_their_claimed_update_show_the_lead_as_written(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await new_lead(app, "L-1")
    posts = await slack.wait_for("chat.postMessage", count=2)
    by_channel = {call.params["channel"]: call.params for call in posts}
    rep = next(channel for channel in by_channel if channel.startswith("U"))
    for params in by_channel.values():
        assert_literal(params["blocks"], HEADING, COMPANY)
        assert_text_unformatted(params)
    assert_literal(by_channel[rep]["blocks"], TITLE, EMAIL, f"mailto:{EMAIL.replace('*', '%2A')}")

    assert await send(http, action_body("claim_lead", "L-1", rep)) == 200
    updates = await slack.wait_for("chat.update", count=2)
    for update in updates:
        assert_literal(update.params["blocks"], HEADING, TITLE)
        assert_text_unformatted(update.params)
        assert {"type": "user", "user_id": rep} in list(_elements(update.params["blocks"]))


async def test_a_lead_waiting_in_triage_is_posted_there_as_written(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    assert await new_lead(app, "Q-*1*", source="partner") == "queued"
    (post,) = await slack.wait_for("chat.postMessage")
    assert post.params["channel"] == "CTRIAGE"
    assert_literal(post.params["blocks"], HEADING, TITLE, "Q-*1*")
    assert_text_unformatted(post.params)


async def test_routing_why_shows_the_lead_as_written(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await new_lead(app, "L-1")
    await slack.wait_for("chat.postMessage", count=2)
    answer = await routing(http, slack, "UMIA", "why L-1")
    assert_literal(answer.get("blocks"), COMPANY)
    assert not any(word in answer["text"] for word in WORDS), answer["text"]


async def test_the_app_home_and_the_digest_show_the_lead_as_written(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await new_lead(app, "L-1")
    # Another person of the same company: the same e-mail would be the same lead again.
    assert await new_lead(app, "Q-*1*", source="partner", email="ana@vexmoor.example") == "queued"
    posts = await slack.wait_for("chat.postMessage", count=3)
    rep = next(c.params["channel"] for c in posts if c.params["channel"].startswith("U"))

    opened = event_body({"type": "app_home_opened", "user": rep, "tab": "home"})
    assert await send(http, opened, json_body=True) == 200
    (home,) = await slack.wait_for("views.publish")
    assert_literal(home.params["view"]["blocks"], HEADING)

    opened = event_body({"type": "app_home_opened", "user": "UMIA", "tab": "home"}, event_id="E2")
    assert await send(http, opened, json_body=True) == 200
    manager_home = (await slack.wait_for("views.publish", count=2))[1]
    assert_literal(manager_home.params["view"]["blocks"], COMPANY, "Q-*1*")

    digest = await routing(http, slack, "UMIA", "digest")
    assert_literal(digest["blocks"], COMPANY, "Q-*1*")


def _elements(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _elements(value)
    elif isinstance(node, list):
        for item in node:
            yield from _elements(item)


async def test_the_reject_modal_the_reject_reply_and_routing_queue_name_the_lead_as_written(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await new_lead(app, "L-1")
    posts = await slack.wait_for("chat.postMessage", count=2)
    rep = next(c.params["channel"] for c in posts if c.params["channel"].startswith("U"))

    queue = await routing(http, slack, rep, "queue")
    assert_literal(queue["blocks"], HEADING)

    assert await send(http, action_body("reject_lead", "L-1", rep, channel=f"D{rep[1:]}")) == 200
    (modal,) = await slack.wait_for("views.open")
    assert_literal(modal.params["view"]["blocks"], HEADING)

    body = view_submission_body("reject_lead_modal", "L-1", NOT_MY_TERRITORY, rep)
    assert await send(http, body) == 200
    await slack.wait_for("chat.postMessage", count=4)
    (told,) = [
        c.params for c in slack.calls_to("chat.postMessage") if "You rejected" in c.params["text"]
    ]
    assert_literal(told["blocks"], HEADING)
    assert_text_unformatted(told)
