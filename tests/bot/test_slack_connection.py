"""The link to Slack kept up in the background (`bot.slack.connection`), against the fake Slack:
the websocket opened, watched and opened again after a drop, auth.test over HTTP, failures
backed off, and one log line per change of state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.connection import SlackConnection, SlackState
from tests.fakes.slack import FakeSlack

APP_TOKEN = "xapp-1-A0001-connection-test"
BOT_TOKEN = "xoxb-connection-test"


def link_to(slack: FakeSlack, *, socket_mode: bool) -> SlackConnection:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    app = AsyncApp(client=client, request_verification_enabled=False) if socket_mode else None
    return SlackConnection(
        client=client,
        app=app,
        app_token=APP_TOKEN if socket_mode else None,
        first_backoff_s=0.05,
        max_backoff_s=0.2,
    )


@contextlib.asynccontextmanager
async def running(link: SlackConnection) -> AsyncIterator[None]:
    task = asyncio.create_task(link.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:g}s")
        await asyncio.sleep(0.01)


def lines(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


async def test_socket_mode_connects_and_opens_the_socket_again_after_slack_drops_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with FakeSlack() as slack:
        link = link_to(slack, socket_mode=True)
        assert link.state is SlackState.CONNECTING
        async with running(link):
            first = await slack.wait_for_connection()
            await until(lambda: link.state is SlackState.CONNECTED, "connected")
            await slack.drop(first)
            await slack.wait_for_connection(count=2)
            await until(lambda: link.state is SlackState.CONNECTED, "connected again")
        assert not any(connection.open for connection in slack.connections)
    assert lines(caplog, "connected to Slack in Socket Mode") == 2
    assert lines(caplog, "the connection to Slack was lost") == 1
    assert not any(record.exc_info for record in caplog.records)


async def test_a_refused_app_token_is_said_once_and_tried_again_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FakeSlack() as slack:
        slack.fail("apps.connections.open", status=200, times=4, error="invalid_auth")
        link = link_to(slack, socket_mode=True)
        async with running(link):
            await until(lambda: link.state is SlackState.UNREACHABLE, "unreachable")
            assert link.problem is not None and "Slack refused SLACK_APP_TOKEN" in link.problem
            await slack.wait_for_connection()
            await until(lambda: link.state is SlackState.CONNECTED, "connected")
        tries = [call.at for call in slack.refused if call.method == "apps.connections.open"]
    assert len(tries) == 4
    assert tries[3] - tries[2] > tries[1] - tries[0]  # waiting longer after each failure
    assert lines(caplog, "Slack is unreachable") == 1
    assert APP_TOKEN not in caplog.text


async def test_over_http_auth_test_tells_whether_slack_answers_the_bot_token() -> None:
    async with FakeSlack() as slack:
        slack.fail("auth.test", status=503, times=2)
        link = link_to(slack, socket_mode=False)
        async with running(link):
            await until(lambda: link.state is SlackState.UNREACHABLE, "unreachable")
            await until(lambda: link.state is SlackState.CONNECTED, "connected")
        assert slack.connections == []


@pytest.mark.parametrize(
    ("error", "says"),
    [
        ("missing_scope", "lacks the connections:write scope"),
        ("not_allowed_token_type", "not one of the app's app-level tokens"),
        ("token_revoked", "was revoked"),
    ],
)
async def test_an_app_token_slack_refuses_says_how_to_get_one_that_works(
    error: str, says: str
) -> None:
    async with FakeSlack() as slack:
        slack.fail("apps.connections.open", status=200, times=100, error=error)
        link = link_to(slack, socket_mode=True)
        async with running(link):
            await until(lambda: link.state is SlackState.UNREACHABLE, "unreachable")
        assert link.problem is not None
        assert f"Slack refused SLACK_APP_TOKEN ({error})" in link.problem
        assert says in link.problem
        assert "App-Level Tokens" in link.problem
        assert APP_TOKEN not in link.problem


async def test_a_revoked_bot_token_over_http_says_to_install_the_app_again() -> None:
    async with FakeSlack() as slack:
        slack.fail("auth.test", status=200, times=100, error="token_revoked")
        link = link_to(slack, socket_mode=False)
        async with running(link):
            await until(lambda: link.state is SlackState.UNREACHABLE, "unreachable")
        assert link.problem is not None
        assert "Slack refused SLACK_BOT_TOKEN (token_revoked)" in link.problem
        assert "Install App" in link.problem
