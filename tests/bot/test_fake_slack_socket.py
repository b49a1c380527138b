"""The fake Slack's Socket Mode side, driven by slack_sdk's own aiohttp `SocketModeClient`:
apps.connections.open hands out a one-time websocket URL, the connection is greeted with hello,
envelopes go down it and acks come back, and a disconnect makes the client reconnect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import APP_ID, FakeSlack, action_payload, command_payload

APP_TOKEN = "xapp-1-A0001-test"
BOT_TOKEN = "xoxb-test"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


class Recorder:
    """A Socket Mode client's view: every message it read, every request it was handed."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.requests: list[SocketModeRequest] = []

    async def on_message(
        self, client: SocketModeClient, message: dict[str, Any], raw: str | None
    ) -> None:
        self.messages.append(message)

    async def on_request(self, client: SocketModeClient, request: SocketModeRequest) -> None:
        self.requests.append(request)
        answer = {"text": f"got {request.type}"} if request.accepts_response_payload else None
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id, answer))


@pytest.fixture
async def client(slack: FakeSlack) -> AsyncIterator[tuple[SocketModeClient, Recorder]]:
    socket = SocketModeClient(
        app_token=APP_TOKEN,
        web_client=AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url),
        ping_interval=1,
    )
    recorder = Recorder()
    socket.message_listeners.append(recorder.on_message)  # type: ignore[arg-type]
    socket.socket_mode_request_listeners.append(recorder.on_request)  # type: ignore[arg-type]
    await socket.connect()
    yield socket, recorder
    await socket.close()


async def until(check: Any, within: float = 5.0) -> None:
    """Poll `check` (state another task or thread changes) until it holds."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110  # nothing to wait on but the state itself
            await asyncio.sleep(0.01)


async def test_connections_open_with_the_app_token_answers_a_websocket_url_on_loopback(
    slack: FakeSlack,
) -> None:
    web = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)

    first = await web.apps_connections_open(app_token=APP_TOKEN)
    second = await web.apps_connections_open(app_token=APP_TOKEN)

    prefix = f"ws://127.0.0.1:{slack.port}/link/?ticket="
    assert str(first["url"]).startswith(prefix) and str(first["url"]).endswith(f"&app_id={APP_ID}")
    assert first["url"] != second["url"]
    assert len(slack.calls_to("apps.connections.open")) == 2


async def test_each_token_works_only_for_its_own_methods(slack: FakeSlack) -> None:
    web = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    app_level = AsyncWebClient(token=APP_TOKEN, base_url=slack.api_url)

    with pytest.raises(SlackApiError) as bot_token_for_sockets:
        await web.apps_connections_open(app_token=BOT_TOKEN)
    with pytest.raises(SlackApiError) as app_token_for_messages:
        await app_level.chat_postMessage(channel="C1", text="hello")

    assert bot_token_for_sockets.value.response["error"] == "not_allowed_token_type"
    assert app_token_for_messages.value.response["error"] == "not_allowed_token_type"
    assert slack.calls == []


async def test_a_connecting_client_is_recorded_and_greeted_with_hello(
    slack: FakeSlack, client: tuple[SocketModeClient, Recorder]
) -> None:
    socket, recorder = client

    connection = await slack.wait_for_connection()
    await until(lambda: recorder.messages)

    assert connection.open and len(slack.connections) == 1
    hello = recorder.messages[0]
    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": APP_ID}
    assert await socket.is_connected()


async def test_an_interactive_envelope_reaches_the_client_and_its_ack_is_recorded(
    slack: FakeSlack, client: tuple[SocketModeClient, Recorder]
) -> None:
    _, recorder = client
    await slack.wait_for_connection()
    payload = action_payload("claim_lead", "L-1", "UANN")

    envelope_id = await slack.send_envelope("interactive", payload)
    ack = await slack.wait_for_ack(envelope_id)

    (request,) = recorder.requests
    assert (request.type, request.envelope_id) == ("interactive", envelope_id)
    assert request.payload == payload
    assert request.accepts_response_payload is True
    assert ack.payload == {"text": "got interactive"}


async def test_an_event_envelope_takes_no_response_payload_and_is_acked_bare(
    slack: FakeSlack, client: tuple[SocketModeClient, Recorder]
) -> None:
    _, recorder = client
    await slack.wait_for_connection()
    event = {"type": "event_callback", "event": {"type": "app_home_opened", "user": "UANN"}}

    envelope_id = await slack.send_envelope("events_api", event)
    ack = await slack.wait_for_ack(envelope_id)

    (request,) = recorder.requests
    assert request.accepts_response_payload is False
    assert request.retry_attempt == 0
    assert ack.payload is None


async def test_envelopes_are_told_apart_by_their_ids(
    slack: FakeSlack, client: tuple[SocketModeClient, Recorder]
) -> None:
    await slack.wait_for_connection()

    ids = [
        await slack.send_envelope("slash_commands", command_payload(f"why L-{i}", "UANN"))
        for i in range(3)
    ]
    acks = [await slack.wait_for_ack(envelope_id) for envelope_id in ids]

    assert len(set(ids)) == 3
    assert [ack.envelope_id for ack in acks] == ids
    assert all(len(slack.acks_of(envelope_id)) == 1 for envelope_id in ids)


async def test_a_websocket_url_works_once(slack: FakeSlack) -> None:
    web = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    url = str((await web.apps_connections_open(app_token=APP_TOKEN))["url"])

    async with aiohttp.ClientSession() as session, session.ws_connect(url) as first:
        hello = json.loads(str((await first.receive()).data))
        with pytest.raises(aiohttp.WSServerHandshakeError) as second:
            await session.ws_connect(url)

    assert hello["type"] == "hello"
    assert second.value.status == 401
    assert [(call.method, call.error) for call in slack.refused] == [("socket", "invalid_ticket")]


async def test_a_message_that_is_not_an_ack_is_refused(slack: FakeSlack) -> None:
    web = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    url = str((await web.apps_connections_open(app_token=APP_TOKEN))["url"])

    async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
        await socket.receive()  # hello
        await socket.send_str('{"text": "no envelope id"}')
        await until(lambda: slack.refused)

    assert slack.acks == []
    assert [(call.method, call.error) for call in slack.refused] == [("socket", "not_an_ack")]


async def test_after_a_disconnect_the_client_reconnects_and_envelopes_reach_it_again(
    slack: FakeSlack, client: tuple[SocketModeClient, Recorder]
) -> None:
    first = await slack.wait_for_connection()

    await slack.disconnect()
    second = await slack.wait_for_connection(count=2)
    await until(lambda: not first.open)
    envelope_id = await slack.send_envelope("slash_commands", command_payload("help", "UANN"))

    assert second is not first
    assert len(slack.calls_to("apps.connections.open")) == 2
    assert (await slack.wait_for_ack(envelope_id)).payload == {"text": "got slash_commands"}


async def test_sending_with_nobody_connected_fails_loudly(slack: FakeSlack) -> None:
    with pytest.raises(AssertionError, match="no Socket Mode client"):
        await slack.send_envelope("events_api", {"type": "event_callback"})


async def test_a_fake_in_a_thread_takes_envelopes_from_the_test_loop() -> None:
    with FakeSlack.in_thread() as slack:
        recorder = Recorder()
        socket = SocketModeClient(
            app_token=APP_TOKEN,
            web_client=AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url),
        )
        socket.socket_mode_request_listeners.append(recorder.on_request)  # type: ignore[arg-type]
        await socket.connect()
        try:
            await slack.wait_for_connection()
            envelope_id = await slack.send_envelope("interactive", {"type": "block_actions"})
            ack = await slack.wait_for_ack(envelope_id)
        finally:
            await socket.close()

        (connection,) = slack.connections
        assert await slack.wait_for_close(connection) == 1000  # closed by the client

    assert ack.payload == {"text": "got interactive"}
