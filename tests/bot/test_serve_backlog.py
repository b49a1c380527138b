"""Import, then serve: the leads imported while no Slack app ran reach their reps as cards, each
SLA starting at its card's post (nobody is charged for the hours before), and the manager gets
one summary instead of an alert per lead; a restart does not summarise them again."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from tests.bot.test_serve import LEADROUTER, Servers, terminate, wait_until_ready
from tests.fakes.slack import FakeSlack

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: ben, name: Ben Baker, slack: UBEN}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
teams:
  duo: {members: [ann, ben], distribution: round_robin, manager: mia}
rules:
  - {name: Everyone, assign: {team: duo}}
sla: {default: 1h, check_every: 1s}
"""
LEADS = "id,company\nB-1,Acme\nB-2,Bolt\nB-3,Core\nB-4,Dyna\n"
SLOW = 15.0


def slack_env(slack: FakeSlack, rules: Path) -> dict[str, str]:
    return {
        "LEADROUTER_RULES": str(rules),
        "SLACK_BOT_TOKEN": "xoxb-backlog-test",
        "SLACK_SIGNING_SECRET": "backlog-test-secret",
        "SLACK_API_URL": slack.api_url,
    }


def import_leads(leads: Path, rules: Path, database: Path) -> None:
    """`leadrouter import` as a user runs it: a process of its own, with no Slack app."""
    imported = subprocess.run(
        [str(LEADROUTER), "import", str(leads), "--rules", str(rules)],
        env={**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
        cwd=leads.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr


async def test_a_backlog_found_at_start_is_carded_and_summarised_to_the_manager_once(
    servers: Servers, tmp_path: Path
) -> None:
    rules, leads, database = tmp_path / "routing.yml", tmp_path / "leads.csv", tmp_path / "db"
    rules.write_text(POLICY)
    leads.write_text(LEADS)
    import_leads(leads, rules, database)
    with FakeSlack.in_thread() as slack:
        server = servers.start(database, extra_env=slack_env(slack, rules))
        await wait_until_ready(server)
        posts = slack.wait_for_blocking("chat.postMessage", count=5, timeout=SLOW)
        await asyncio.sleep(1.5)  # a sweep or two: nothing else is posted
        assert terminate(server) == 0, server.output()
        to = [post.params["channel"] for post in slack.calls_to("chat.postMessage")]
        assert sorted(to) == ["UANN", "UANN", "UBEN", "UBEN", "UMIA"]
        (summary,) = [post for post in posts if post.params["channel"] == "UMIA"]
        assert (
            "4 leads arrived while leadrouter was not connected to Slack"
            in (summary.params["text"])
        )

        again = servers.start(database, extra_env=slack_env(slack, rules))
        await wait_until_ready(again)
        await asyncio.sleep(1.5)
        assert terminate(again) == 0, again.output()
        assert len(slack.calls_to("chat.postMessage")) == 5  # no second summary, no card again
    with sqlite3.connect(database) as db:
        offers = db.execute("SELECT card_posted_at, sla_due_at FROM offers").fetchall()
        missed = db.execute("SELECT count(*) FROM audit_events WHERE kind = 'sla_missed'")
        assert missed.fetchone()[0] == 0
    for posted, due in offers:
        assert datetime.fromisoformat(due) - datetime.fromisoformat(posted) == timedelta(hours=1)
