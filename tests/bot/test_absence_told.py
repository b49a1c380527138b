"""A rep a manager marks out of office or back with `/routing pto` is told in a DM that goes
through the outbox: the manager's answer never waits for Slack, a rate limit is waited out,
and the rep is told once. Signed commands through the real app, against the fake Slack."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.bootstrap import App
from bot.service.kinds import OutboxKind
from storage.db import Database
from storage.models import OutboxRow, RepStateRow
from tests.bot.conftest import Clock
from tests.bot.test_slack_app import POLICY, send
from tests.fakes.slack import FakeSlack, command_body


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def rounds(app: App, clock: Clock, count: int) -> None:
    """`count` rounds of delivery, the clock moved on after each (past any retry's wait)."""
    assert app.delivery is not None
    for _ in range(count):
        await app.delivery.deliver_due()
        clock.advance(minutes=1)


def told_to(slack: FakeSlack, user: str) -> list[str]:
    """The texts of the DMs `user` got saying someone marked them."""
    return [
        call.params["text"]
        for call in slack.calls_to("chat.postMessage")
        if call.params["channel"] == user and "marked you" in call.params["text"]
    ]


async def absence_items(db: Database) -> list[OutboxRow]:
    async with db.reading() as session:
        found = await session.execute(
            select(OutboxRow).where(OutboxRow.kind == OutboxKind.ABSENCE_TOLD)
        )
        return list(found.scalars())


async def away(db: Database, rep: str) -> bool:
    async with db.sessions() as session:
        state = await session.get(RepStateRow, rep)
    return state is not None and state.away


async def test_the_managers_answer_comes_while_slack_holds_the_dm_and_the_dm_arrives_once(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    held = slack.hold("chat.postMessage")  # Slack takes its time over the next post
    body = command_body("pto for 3d <@UBEN|ben>", "UMIA", response_url=slack.response_url("p"))
    assert await send(http, body) == 200

    (answer,) = await slack.wait_for("response")  # while the DM is still on its way
    assert answer.params["text"].startswith("Ben Baker is out of office until <!date^")
    assert await away(sqlite_db, "ben")
    held.release()
    await rounds(app, clock, 3)

    (dm,) = told_to(slack, "UBEN")
    assert dm.startswith("Mia Moss marked you out of office until <!date^")
    assert dm.endswith("No unclaimed leads had to move.")
    (item,) = await absence_items(sqlite_db)
    assert item.done_at is not None


async def test_a_dm_slack_rate_limits_is_sent_once_its_retry_after_has_passed(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    slack.fail("chat.postMessage", status=429, retry_after=1)
    body = command_body("pto off <@UCAT|cat>", "UMIA", response_url=slack.response_url("b"))
    assert await send(http, body) == 200
    await slack.wait_for("response")
    await rounds(app, clock, 3)

    refused = [c for c in slack.refused if c.method == "chat.postMessage"]
    assert [(c.params["channel"], c.status) for c in refused] == [("UCAT", 429)]
    (sent,) = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "UCAT"]
    assert sent.params["text"] == "Mia Moss marked you available again."
    assert sent.at - refused[0].at >= 1.0  # not before Slack said it could take it
    (item,) = await absence_items(sqlite_db)  # the outbox's to carry out, not the command's
    assert item.done_at is not None and item.payload == {"rep": "cat", "by": "mia", "away": False}


async def test_only_a_rep_someone_else_marks_is_told_and_not_one_marking_themselves(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    commands = [("pto for 3d", "UANN"), ("pto off", "UANN"), ("pto for 3d <@UBEN|ben>", "UMIA")]
    for number, (text, user) in enumerate(commands):
        key = f"c{number}"
        body = command_body(text, user, response_url=slack.response_url(key), trigger_id=key)
        assert await send(http, body) == 200
        await slack.wait_for("response", count=number + 1)
    await rounds(app, clock, 2)

    assert [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "UANN"] == []
    (dm,) = told_to(slack, "UBEN")
    assert dm.startswith("Mia Moss marked you out of office until <!date^")
    assert [item.payload["rep"] for item in await absence_items(sqlite_db)] == ["ben"]
