"""The fake Slack Web API answers the real `AsyncWebClient` as Slack would, records what it was
sent, fails and rate-limits on request; the request helpers sign bodies Slack's way."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import (
    FakeSlack,
    action_body,
    command_body,
    event_body,
    json_signed_headers,
    slack_signed_headers,
    view_submission_body,
)

SECRET = "signing-secret-for-tests"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "New lead: *Acme*"}}]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def web(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.api_url)


def form_fields(body: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(body, strict_parsing=True).items()}


def payload_of(body: str) -> Any:
    return json.loads(form_fields(body)["payload"])


async def test_a_post_to_a_user_opens_a_dm_channel(slack: FakeSlack, web: AsyncWebClient) -> None:
    response = await web.chat_postMessage(channel="U0ALICE", text="New lead", blocks=BLOCKS)

    assert response["channel"] == "D0ALICE"
    assert abs(float(response["ts"]) - time.time()) < 60  # Slack's ts is its wall clock
    assert response["message"]["blocks"] == BLOCKS
    [call] = slack.calls_to("chat.postMessage")
    assert call.params["channel"] == "U0ALICE"
    assert call.params["text"] == "New lead"
    assert slack.messages[("D0ALICE", response["ts"])]["text"] == "New lead"


async def test_every_post_gets_a_later_ts(web: AsyncWebClient) -> None:
    stamps = [(await web.chat_postMessage(channel="C1", text=str(n)))["ts"] for n in range(3)]

    assert stamps == sorted(set(stamps))
    assert len(stamps) == 3


async def test_calls_are_recorded_in_the_order_they_arrive(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    await web.auth_test()
    posted = await web.chat_postMessage(channel="C1", text="one")
    await web.chat_update(channel="C1", ts=posted["ts"], text="two")

    assert [call.method for call in slack.calls] == [
        "auth.test",
        "chat.postMessage",
        "chat.update",
    ]
    assert slack.calls[0].at <= slack.calls[1].at <= slack.calls[2].at
    assert slack.messages[("C1", posted["ts"])]["text"] == "two"


async def test_auth_test_names_the_bot_and_the_team(web: AsyncWebClient) -> None:
    response = await web.auth_test()

    assert (response["user_id"], response["team_id"], response["bot_id"]) == (
        "UBOT",
        "T0001",
        "B0001",
    )


async def test_a_call_without_a_token_is_not_authed(slack: FakeSlack) -> None:
    anonymous = AsyncWebClient(base_url=slack.api_url)

    with pytest.raises(SlackApiError) as raised:
        await anonymous.chat_postMessage(channel="C1", text="hello")

    assert raised.value.response["error"] == "not_authed"
    assert slack.calls == []
    assert [call.error for call in slack.refused] == ["not_authed"]


async def test_an_injected_server_error_is_answered_once_and_recorded_as_refused(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    slack.fail("chat.postMessage", status=500)

    with pytest.raises(SlackApiError) as raised:
        await web.chat_postMessage(channel="C1", text="hello")
    await web.chat_postMessage(channel="C1", text="hello again")

    assert raised.value.response.status_code == 500
    assert [(call.status, call.params["text"]) for call in slack.refused] == [(500, "hello")]
    assert [call.params["text"] for call in slack.calls_to("chat.postMessage")] == ["hello again"]


async def test_an_injected_429_carries_its_retry_after(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    slack.fail("chat.postMessage", status=429, times=2, retry_after=7)

    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            await web.chat_postMessage(channel="C1", text="hello")
        assert raised.value.response.status_code == 429
        assert raised.value.response.headers["Retry-After"] == "7"
        assert raised.value.response["error"] == "ratelimited"

    assert [call.status for call in slack.refused] == [429, 429]
    assert slack.calls_to("chat.postMessage") == []


async def test_an_injected_error_with_status_200_answers_ok_false(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    slack.fail("views.open", status=200, error="expired_trigger_id")

    with pytest.raises(SlackApiError) as raised:
        await web.views_open(trigger_id="trig.1", view={"type": "modal", "title": "Reject"})

    assert raised.value.response.status_code == 200
    assert raised.value.response["error"] == "expired_trigger_id"
    assert [call.error for call in slack.refused] == ["expired_trigger_id"]


async def test_the_rate_limit_refuses_the_fourth_immediate_post_to_one_channel_only() -> None:
    async with FakeSlack(post_rate_per_channel=1.0, post_burst=3) as slack:
        web = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        for n in range(3):
            await web.chat_postMessage(channel="C1", text=f"post {n}")

        with pytest.raises(SlackApiError) as raised:
            await web.chat_postMessage(channel="C1", text="post 3")
        await web.chat_postMessage(channel="C2", text="elsewhere")

    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "1"
    assert raised.value.response["error"] == "ratelimited"
    assert [call.params["text"] for call in slack.refused] == ["post 3"]
    assert len(slack.calls_to("chat.postMessage")) == 4


async def test_the_rate_limit_lets_a_post_through_once_the_bucket_refills() -> None:
    async with FakeSlack(post_rate_per_channel=10.0, post_burst=1) as slack:
        web = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        await web.chat_postMessage(channel="U0ALICE", text="first")
        with pytest.raises(SlackApiError):
            await web.chat_postMessage(channel="D0ALICE", text="same DM, too soon")
        await asyncio.sleep(0.15)
        await web.chat_postMessage(channel="U0ALICE", text="later")

    assert [call.params["text"] for call in slack.calls] == ["first", "later"]


async def test_a_form_body_has_its_blocks_decoded(slack: FakeSlack, web: AsyncWebClient) -> None:
    await web.api_call(
        "chat.postMessage", data={"channel": "C1", "text": "form", "blocks": json.dumps(BLOCKS)}
    )

    [call] = slack.calls_to("chat.postMessage")
    assert call.params["blocks"] == BLOCKS


async def test_conversations_open_answers_the_dm_with_the_user(web: AsyncWebClient) -> None:
    response = await web.conversations_open(users="U0BOB")

    assert response["channel"]["id"] == "D0BOB"


async def test_users_info_answers_the_time_zone_it_was_given(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    slack.user_tz["U0ALICE"] = "America/Los_Angeles"

    alice = (await web.users_info(user="U0ALICE"))["user"]
    bob = (await web.users_info(user="U0BOB"))["user"]

    assert (alice["id"], alice["tz"]) == ("U0ALICE", "America/Los_Angeles")
    assert bob["tz"] == "America/New_York"
    assert bob["profile"]["email"] == "u0bob@example.com"


async def test_views_are_opened_published_and_updated(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    modal = {"type": "modal", "callback_id": "reject_lead_modal", "title": "Reject"}
    opened = await web.views_open(trigger_id="trig.1", view=modal)
    await web.views_update(view_id=opened["view"]["id"], view=modal)
    home = await web.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": BLOCKS})

    assert opened["view"]["id"].startswith("V")
    assert opened["view"]["callback_id"] == "reject_lead_modal"
    assert home["view"]["blocks"] == BLOCKS
    assert slack.calls_to("views.update")[0].params["view"] == modal


async def test_an_ephemeral_message_answers_its_ts(web: AsyncWebClient) -> None:
    response = await web.chat_postEphemeral(channel="C0GENERAL", user="U0ALICE", text="Only you")

    assert response["message_ts"]


async def test_an_unknown_method_is_refused(slack: FakeSlack, web: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        await web.api_call("reactions.add", json={"channel": "C1", "name": "eyes"})

    assert raised.value.response["error"] == "unknown_method"
    assert [call.method for call in slack.refused] == ["reactions.add"]


async def test_a_delayed_method_answers_late(slack: FakeSlack, web: AsyncWebClient) -> None:
    slack.delay("chat.postMessage", 0.3)

    started = time.monotonic()
    await web.chat_postMessage(channel="C1", text="slow")

    assert time.monotonic() - started >= 0.3


async def test_wait_for_returns_once_enough_posts_arrived(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    async def post_later() -> None:
        await asyncio.sleep(0.05)
        await web.chat_postMessage(channel="C1", text="one")
        await web.chat_postMessage(channel="C1", text="two")

    task = asyncio.create_task(post_later())
    calls = await slack.wait_for("chat.postMessage", count=2, timeout=2)
    await task

    assert [call.params["text"] for call in calls] == ["one", "two"]


async def test_wait_for_does_not_count_refused_calls_and_says_what_it_saw(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    slack.fail("chat.postMessage", status=503)
    with pytest.raises(SlackApiError):
        await web.chat_postMessage(channel="C1", text="lost")
    await web.auth_test()

    with pytest.raises(AssertionError, match=r"got 0.*auth\.test.*chat\.postMessage \(503"):
        await slack.wait_for("chat.postMessage", timeout=0.1)


async def test_after_answer_acts_once_on_the_next_call_answered_ok(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    acted_on: list[str] = []
    slack.after_answer("chat.postMessage", lambda call: acted_on.append(call.params["text"]))
    slack.fail("chat.postMessage", status=500)

    with pytest.raises(SlackApiError):
        await web.chat_postMessage(channel="C1", text="refused")
    await web.chat_postMessage(channel="C1", text="taken")
    await web.chat_postMessage(channel="C1", text="later")

    assert acted_on == ["taken"]


def test_after_answer_acts_once_the_client_can_read_the_answer() -> None:
    read = threading.Event()
    acted: list[bool] = []  # whether the client had its answer while the action ran
    with FakeSlack.in_thread() as slack:
        # The action holds the fake's loop until the client has read the answer (or 5 s).
        slack.after_answer("chat.postMessage", lambda _: acted.append(read.wait(5)))
        response = WebClient(token="xoxb-test", base_url=slack.api_url).chat_postMessage(
            channel="C1", text="answered"
        )
        read.set()
        slack.wait_for_blocking("chat.postMessage")

    assert response["ok"]
    assert acted == [True]


async def test_a_held_call_is_neither_taken_nor_answered_until_released(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    held = slack.hold("chat.postMessage")
    posting = asyncio.create_task(web.chat_postMessage(channel="C1", text="on its way"))
    assert await asyncio.to_thread(held.arrived.wait, 5)
    await web.chat_postMessage(channel="C1", text="overtakes it")  # only the next call is held
    await asyncio.sleep(0.1)

    assert not posting.done()
    assert [m["text"] for m in slack.standing_messages().values()] == ["overtakes it"]
    held.release()
    await posting
    assert [m["text"] for m in slack.standing_messages().values()] == ["overtakes it", "on its way"]


async def test_standing_messages_leave_out_the_deleted(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    kept = await web.chat_postMessage(channel="U0ALICE", text="kept")
    gone = await web.chat_postMessage(channel="U0ALICE", text="gone")
    await web.chat_delete(channel="D0ALICE", ts=gone["ts"])

    standing = slack.standing_messages()

    assert [(key, message["text"]) for key, message in standing.items()] == [
        (("D0ALICE", kept["ts"]), "kept")
    ]
    assert slack.deleted == [("D0ALICE", gone["ts"])]


def test_the_fake_runs_in_a_thread_for_synchronous_callers() -> None:
    with FakeSlack.in_thread() as slack:
        response = WebClient(token="xoxb-test", base_url=slack.api_url).chat_postMessage(
            channel="U0ALICE", text="from a thread"
        )
        [call] = slack.wait_for_blocking("chat.postMessage")

    assert response["channel"] == "D0ALICE"
    assert call.params["text"] == "from a thread"


async def test_a_fake_in_a_thread_can_be_awaited_from_the_test_loop() -> None:
    with FakeSlack.in_thread() as slack:
        web = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        await web.chat_postMessage(channel="C1", text="across loops")
        [call] = await slack.wait_for("chat.postMessage")

    assert call.params["channel"] == "C1"


def test_signed_headers_verify_with_slacks_verifier() -> None:
    body = action_body("claim_lead", "lead-42", "U0ALICE")
    headers = slack_signed_headers(body, SECRET)

    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_signature_from_the_past_is_rejected_as_slack_would() -> None:
    body = command_body("why lead-42", "U0ALICE")
    headers = slack_signed_headers(body, SECRET, timestamp=int(time.time()) - 600)

    assert not SignatureVerifier(SECRET).is_valid_request(body, headers)


def test_an_event_is_signed_as_json() -> None:
    body = event_body({"type": "app_home_opened", "user": "U0ALICE", "tab": "home"})
    headers = json_signed_headers(body, SECRET)

    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/json"
    envelope = json.loads(body)
    assert envelope["type"] == "event_callback"
    assert envelope["event"]["type"] == "app_home_opened"


def test_an_action_body_is_a_block_actions_payload() -> None:
    payload = payload_of(action_body("claim_lead", "lead-42", "U0ALICE", channel="D0BOB"))

    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0ALICE"
    assert payload["container"] == {
        "type": "message",
        "channel_id": "D0BOB",
        "message_ts": "1700000000.000100",
        "is_ephemeral": False,
    }
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "claim_lead",
        "lead_actions",
        "lead-42",
    )


def test_a_command_body_is_a_slash_command_form() -> None:
    fields = form_fields(command_body("why lead-42", "U0ALICE"))

    assert fields["command"] == "/routing"
    assert fields["text"] == "why lead-42"
    assert (fields["user_id"], fields["channel_id"]) == ("U0ALICE", "C0GENERAL")


def test_a_view_submission_body_carries_the_state_values() -> None:
    values = {"reject_reason": {"reject_reason_choice": {"type": "static_select"}}}
    payload = payload_of(view_submission_body("reject_lead_modal", '{"lead": 42}', values, "U0BOB"))

    assert payload["type"] == "view_submission"
    assert payload["view"]["callback_id"] == "reject_lead_modal"
    assert payload["view"]["private_metadata"] == '{"lead": 42}'
    assert payload["view"]["state"]["values"] == values


async def test_the_bots_scopes_channels_and_users_are_answered_as_slack_does(
    slack: FakeSlack, web: AsyncWebClient
) -> None:
    auth = await web.auth_test()
    assert "users:read.email" in auth.headers["X-OAuth-Scopes"].split(",")
    slack.user_email["U0BOB"] = "bob@acme.example"
    found = await web.users_lookupByEmail(email="Bob@Acme.example")
    assert found["user"]["id"] == "U0BOB"
    with pytest.raises(SlackApiError) as nobody:
        await web.users_lookupByEmail(email="nobody@acme.example")
    assert nobody.value.response["error"] == "users_not_found"
    slack.unknown_users.add("U0GONE")
    with pytest.raises(SlackApiError) as gone:
        await web.users_info(user="U0GONE")
    assert gone.value.response["error"] == "user_not_found"
    slack.channel_errors["C0SALES"] = "not_in_channel"
    with pytest.raises(SlackApiError) as outside:
        await web.chat_postMessage(channel="C0SALES", text="hi")
    assert outside.value.response["error"] == "not_in_channel"
    slack.scopes.remove("users:read.email")
    with pytest.raises(SlackApiError) as scope:
        await web.users_lookupByEmail(email="bob@acme.example")
    assert (scope.value.response["error"], scope.value.response["needed"]) == (
        "missing_scope",
        "users:read.email",
    )
