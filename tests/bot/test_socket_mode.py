"""`leadrouter serve` in Socket Mode as a real process against the fake Slack: it opens the
websocket with its app token, a lead's card goes out over the Web API, and a Claim click and a
`/routing why` come in as envelopes, are acked, and act; `/slack/events` is not served.

With Slack unreachable it serves all the same: `/healthz` and `POST /leads` answer at once, the
connection is tried again in the background with one log line per change of state, `/healthz`
says how Slack stands, and SIGTERM still ends it cleanly."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest

from tests.bot.test_serve import Server, Servers, post, terminate, wait_until_ready
from tests.bot.test_slack_blocks import rich_texts
from tests.bot.webhook import free_port
from tests.fakes.slack import FakeSlack, action_payload, command_payload

BOT_TOKEN = "xoxb-socket-test-token-0000"
APP_TOKEN = "xapp-1-A0001-socket-test-token"
SLOW = 15.0  # a subprocess on a busy machine: generous, and only ever waited out on failure
POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
teams:
  solo: {members: [ann]}
rules:
  - name: Everyone
    assign: {team: solo}
"""


async def test_serve_in_socket_mode_takes_clicks_and_commands_over_the_websocket(
    servers: Servers, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY)
    with FakeSlack.in_thread() as slack:
        server = servers.start(
            tmp_path / "leads.db",
            extra_env={
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_APP_TOKEN": APP_TOKEN,
                # Left over from HTTP mode, or set ahead of it: Socket Mode all the same.
                "SLACK_SIGNING_SECRET": "socket-test-signing-secret",
                "SLACK_API_URL": slack.api_url,
                "LEADROUTER_RULES": str(rules),
            },
        )
        await wait_until_ready(server)
        connection = await slack.wait_for_connection(timeout=SLOW)

        async with aiohttp.ClientSession() as session:
            status, lead = await post(session, server, {"id": "L-1", "company": "Acme"})
            assert (status, lead["rep"]) == (201, "ann")
            (card,) = await slack.wait_for("chat.postMessage", timeout=SLOW)
            assert card.params["channel"] == "UANN"
            assert "claim_lead" in json.dumps(card.params["blocks"])
            ((channel, ts),) = slack.messages

            click = action_payload(
                "claim_lead",
                "L-1",
                "UANN",
                channel=channel,
                message_ts=ts,
                response_url=slack.response_url("claim"),
            )
            claim = await slack.send_envelope("interactive", click)
            assert (await slack.wait_for_ack(claim, timeout=SLOW)).payload is None
            (update,) = await slack.wait_for("chat.update", timeout=SLOW)
            assert (update.params["channel"], update.params["ts"]) == (channel, ts)
            claimed = rich_texts(update.params["blocks"])
            assert "Claimed by <@UANN>" in claimed
            assert "claim_lead" not in claimed  # the buttons are gone

            why = command_payload(
                "why L-1", "UANN", response_url=slack.response_url("why"), trigger_id="trig.why"
            )
            command = await slack.send_envelope("slash_commands", why)
            await slack.wait_for_ack(command, timeout=SLOW)
            (answer,) = await slack.wait_for("response", timeout=SLOW)
            story = "\n".join(rich_texts(answer.params["blocks"]))
            assert "Everyone" in story  # the rule that matched
            assert "Claimed (Ann Archer)" in story
            assert answer.params["response_type"] == "ephemeral"

            # Slack's requests come only over the websocket: there is no HTTP door for them.
            async with session.post(f"{server.url}/slack/events", data="{}") as response:
                assert response.status == 404

        assert len(slack.acks_of(claim)) == len(slack.acks_of(command)) == 1
        assert terminate(server) == 0, server.output()  # the log says why, if not
        # serve closed its websocket on the way out: 1000, where a vanished client leaves 1006.
        assert await slack.wait_for_close(connection, timeout=SLOW) == 1000
    log = server.output()
    assert "connected to Slack in Socket Mode" in log
    # An admin moving to HTTP mode learns why Slack's requests to /slack/events find nothing.
    assert "SLACK_APP_TOKEN is set: Slack's requests come over Socket Mode" in log
    assert "POST /slack/events is not served" in log
    assert BOT_TOKEN not in log and APP_TOKEN not in log
    assert "Traceback" not in log


async def health(server: Server) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/healthz") as got:
        return got.status, await got.json()


async def slack_gauge(server: Server) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/metrics") as got:
        text = await got.text()
    return next(line for line in text.splitlines() if line.startswith("leadrouter_slack_connected"))


async def slack_state_becomes(server: Server, state: str) -> dict[str, object]:
    deadline = time.monotonic() + SLOW
    while True:
        status, body = await health(server)
        if body.get("slack") == state:
            assert status == 200
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"/healthz never said slack {state}: {body}\n{server.output()}")
        await asyncio.sleep(0.1)


async def test_with_slack_unreachable_serve_takes_leads_at_once_and_says_so_once(
    servers: Servers, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY)
    nobody_listens = f"http://127.0.0.1:{free_port()}/api/"
    server = servers.start(
        tmp_path / "leads.db",
        extra_env={
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": nobody_listens,
            "LEADROUTER_RULES": str(rules),
        },
    )
    await wait_until_ready(server)
    async with aiohttp.ClientSession() as session:
        status, lead = await post(session, server, {"id": "L-1", "company": "Acme"})
    assert (status, lead["rep"]) == (201, "ann")
    await slack_state_becomes(server, "unreachable")
    await asyncio.sleep(4)  # several attempts, backing off
    assert (await health(server)) == (200, {"status": "ok", "slack": "unreachable"})
    assert await slack_gauge(server) == "leadrouter_slack_connected 0.0"
    assert terminate(server) == 0, server.output()
    log = server.output()
    assert "Traceback" not in log
    assert log.count("Slack is unreachable") == 1, log
    assert APP_TOKEN not in log and BOT_TOKEN not in log


async def test_serve_connects_once_slack_stops_refusing_and_reports_each_state_once(
    servers: Servers, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY)
    with FakeSlack.in_thread() as slack:
        slack.fail("apps.connections.open", status=503, times=2)  # two tries refused
        server = servers.start(
            tmp_path / "leads.db",
            extra_env={
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_APP_TOKEN": APP_TOKEN,
                "SLACK_API_URL": slack.api_url,
                "LEADROUTER_RULES": str(rules),
            },
        )
        await wait_until_ready(server)
        await slack_state_becomes(server, "connected")
        await slack.wait_for_connection(timeout=SLOW)
        assert await slack_gauge(server) == "leadrouter_slack_connected 1.0"
        assert terminate(server) == 0, server.output()
    log = server.output()
    assert "Traceback" not in log
    assert log.count("Slack is unreachable") == 1, log
    assert log.count("connected to Slack in Socket Mode") == 1, log
