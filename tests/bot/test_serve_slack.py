"""`leadrouter serve` as a real process with Slack configured, against the fake Slack Web API:
a lead POSTed to /leads reaches Slack as a message, and a signed slash command is answered."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from tests.bot.test_serve import Servers, post, terminate, wait_until_ready
from tests.fakes.slack import FakeSlack, command_body, slack_signed_headers

BOT_TOKEN = "xoxb-serve-test-token-0000"
SIGNING_SECRET = "serve-test-signing-secret"


async def test_serve_posts_cards_to_slack_and_answers_slack_commands(
    servers: Servers, tmp_path: Path
) -> None:
    with FakeSlack.in_thread() as slack:
        server = servers.start(
            tmp_path / "leads.db",
            extra_env={
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
            },
        )
        await wait_until_ready(server)
        async with aiohttp.ClientSession() as session:
            status, _ = await post(
                session, server, {"id": "L-1", "company": "Acme", "country": "US"}
            )
            assert status == 201
            # No rule of the example takes a lead with nothing but a company and a country, at
            # any hour: it waits in the unmatched queue, posted to the triage channel.
            (posted,) = slack.wait_for_blocking("chat.postMessage", timeout=15)
            assert posted.params["channel"] == "C01TRIAGE"
            assert "Acme" in posted.params["text"] + str(posted.params.get("blocks"))

            body = command_body("help", "U01ALICE", response_url=slack.response_url("h"))
            async with session.post(
                f"{server.url}/slack/events",
                data=body,
                headers=slack_signed_headers(body, SIGNING_SECRET),
            ) as response:
                assert response.status == 200
            (answer,) = slack.wait_for_blocking("response", timeout=15)
            assert "/routing" in answer.params["text"]

            forged = slack_signed_headers(body, "wrong-secret", timestamp=int(time.time()))
            async with session.post(
                f"{server.url}/slack/events", data=body, headers=forged
            ) as response:
                assert response.status == 401
        assert terminate(server) == 0, server.output()  # the log says why, if not
    log = server.output()
    assert BOT_TOKEN not in log and SIGNING_SECRET not in log
    assert "Traceback" not in log
