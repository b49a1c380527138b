"""Policy versions in Slack: `/routing why` names the version that decided the lead (and how it
came to serve), and the managers get a refused policy file's problems in a DM, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlmodel import col

from bot.bootstrap import App
from bot.live_policy import PolicyWatch
from bot.service.kinds import OutboxKind
from bot.service.offers import reject
from bot.service.policies import Activation, activate_policy
from routing.policy import parse_policy
from routing.policy_version import short_version, version_of
from storage.db import Database
from storage.models import OutboxRow
from tests.bot.test_slack_app import POLICY, new_lead, send
from tests.bot.test_slack_blocks import rich_words
from tests.fakes.slack import FakeSlack, command_body

BAD_POLICY = POLICY.replace("members: [ann, ben, cat]", "members: [ann, ben, zed]")


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def why(http: TestClient, slack: FakeSlack, user: str, lead: str = "L-1") -> str:
    count = len(slack.calls_to("response"))
    body = command_body(
        f"why {lead}", user, response_url=slack.response_url(f"why{count}"), trigger_id=f"t{count}"
    )
    assert await send(http, body) == 200
    answers = await slack.wait_for("response", count=count + 1)
    return "\n".join(rich_words(answers[-1].params["blocks"]))


async def test_routing_why_names_the_policy_version_that_decided_the_lead_to_a_manager(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    rep = await new_lead(app)

    text = await why(http, slack, "UMIA")

    assert f"Policy version {short_version(version_of(POLICY))}" in text
    assert "activated" not in text  # this version was never activated: the test made it serve
    # Its rep reads the decision, not which version of the file made it: RevOps' detail.
    assert "Policy version" not in await why(http, slack, f"U{rep.upper()}")


async def test_routing_why_says_when_the_version_was_activated_and_by_whom(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    await activate_policy(app.uow, POLICY, source="routing.yml", how=Activation.COMMAND, by="mia")
    await new_lead(app)

    text = await why(http, slack, "UMIA")

    assert (
        f"Policy version {short_version(version_of(POLICY))}, activated <!date^" in text
        and "by mia (leadrouter policy activate)" in text
    )


async def test_routing_why_names_another_version_that_routed_the_lead_again(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    rep = await new_lead(app)
    reviewed = POLICY + "# reviewed\n"
    app.live.switch(parse_policy(reviewed))
    await reject(app.uow, "L-1", by=rep, reason="not mine")

    text = await why(http, slack, "UMIA")

    assert f"Policy version {short_version(version_of(POLICY))}" in text
    assert f"(policy version {short_version(version_of(reviewed))})" in text


async def test_the_managers_get_a_refused_policy_files_problems_in_a_dm_once(
    app: App, http: TestClient, slack: FakeSlack, tmp_path: Path, sqlite_db: Database
) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    watches = [
        PolicyWatch(app.live, app.uow, rules, every_s=1, runner=f"host:{n}") for n in range(2)
    ]
    for watch in watches:
        await watch.start()
    rules.write_text(BAD_POLICY, encoding="utf-8")

    for watch in watches:
        await watch.look(asked=True)

    (dm,) = await slack.wait_for("chat.postMessage")
    assert dm.params["channel"] == "UMIA"
    text = dm.params["text"]
    assert f"The policy file {rules} was not activated" in text
    assert f"version {short_version(version_of(BAD_POLICY))}" in text
    assert f"Version {short_version(version_of(POLICY))} goes on serving" in text
    assert "`zed` is not a rep defined under reps" in text
    assert app.policy.version == version_of(POLICY)
    async with sqlite_db.reading() as session:
        kinds = (await session.execute(select(col(OutboxRow.kind)))).scalars().all()
    assert kinds == [OutboxKind.POLICY_REFUSED]  # one item, for the one manager
