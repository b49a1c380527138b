"""`leadrouter serve` as a real process runs the SLA watchdog: a lead nobody claims is offered to
the next rep within seconds, with the fake Slack seeing both cards."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.bot.test_serve import Servers, post, terminate, wait_until_ready
from tests.fakes.slack import FakeSlack

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: ben, name: Ben Baker, slack: UBEN}
teams:
  duo: {members: [ann, ben], distribution: round_robin}
rules:
  - {name: Everyone, assign: {team: duo}}
sla: {default: 2s, check_every: 1s}
"""


async def test_serve_reoffers_an_unclaimed_lead_to_another_rep_within_seconds(
    servers: Servers, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    with FakeSlack.in_thread() as slack:
        server = servers.start(
            tmp_path / "leads.db",
            extra_env={
                "LEADROUTER_RULES": str(rules),
                "SLACK_BOT_TOKEN": "xoxb-watchdog-test",
                "SLACK_SIGNING_SECRET": "watchdog-test-secret",
                "SLACK_API_URL": slack.api_url,
            },
        )
        await wait_until_ready(server)
        async with aiohttp.ClientSession() as session:
            status, decision = await post(session, server, {"id": "L-1", "company": "Acme"})
        assert (status, decision["rep"]) == (201, "ann")

        first, second = slack.wait_for_blocking("chat.postMessage", count=2, timeout=15)
        assert (first.params["channel"], second.params["channel"]) == ("UANN", "UBEN")
        assert "Reassigned to you" in str(second.params["blocks"])
        (update,) = slack.wait_for_blocking("chat.update", timeout=15)
        assert "not claimed within 2s" in str(update.params["blocks"])
        assert second.at - first.at < 6
        assert terminate(server) == 0, server.output()  # the log says why, if not
    assert "Traceback" not in server.output()
