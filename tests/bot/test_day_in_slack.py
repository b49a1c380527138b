"""A sales day read from each seat, through the real app against the fake Slack: what a rep
reads of a lead's story (`/routing why`, signed, its recorded blocks) holds nothing that is
RevOps' to fix, and what a manager reads of a colleague Slack cannot reach says Slack's
refusal in words, with what to do, not as Slack's status and error code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.bootstrap import App
from bot.service.availability import set_out_of_office
from bot.service.digests import queue_digest
from bot.service.intake import intake
from bot.service.offers import assign, claim, reject
from bot.service.watchdog import sweep
from routing.leads import parse_lead
from tests.bot.conftest import Clock
from tests.bot.test_slack_app import send
from tests.bot.test_slack_blocks import rich_words
from tests.bot.test_slack_refusals import said_to
from tests.bot.test_unreachable_managers import POLICY, contact_missed_by_ann
from tests.fakes.slack import FakeSlack, command_body, event_body


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def why(http: TestClient, slack: FakeSlack, user: str, lead: str = "L-1") -> str:
    """`/routing why` typed by `user`: the words of the answer's blocks, as Slack shows them."""
    before = len(slack.calls_to("response"))
    key = f"why-{user}-{before}"
    body = command_body(f"why {lead}", user, response_url=slack.response_url(key), trigger_id=key)
    assert await send(http, body) == 200
    answer = (await slack.wait_for("response", count=before + 1))[-1]
    blocks: Any = answer.params["blocks"]
    return "\n".join(rich_words(blocks))


async def test_a_rep_asking_why_reads_their_lead_not_a_managers_slack_trouble_nor_its_version(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    slack.deactivated_users.add("UMIA")
    await contact_missed_by_ann(app, clock)  # Mia could not be told; Max was, instead

    ann = await why(http, slack, "UANN")
    assert "Claimed (Ann Archer)" in ann and "Contact SLA missed (Ann Archer)" in ann
    for revops in ("could not be told", "UMIA", "Mia Moss", "slack check", "Policy version"):
        assert revops not in ann, revops
    # A manager reads all of it: who could not be told, what to fix, the version.
    max_ = await why(http, slack, "UMAX")
    assert "A manager could not be told in Slack · Mia Moss" in max_
    assert "leadrouter slack check" in max_ and "Policy version" in max_


@pytest.mark.parametrize("code", ["user_not_found", "user_disabled"])
async def test_managers_read_why_a_colleague_cannot_be_reached_in_words_with_the_fix(
    app: App, slack: FakeSlack, clock: Clock, code: str
) -> None:
    slack.channel_errors["UMIA"] = code  # Slack refuses Mia's DM for good
    await contact_missed_by_ann(app, clock)
    assert await queue_digest(app.uow, "mia", due_at=clock.now, runner="here")
    await clock_rounds(app, clock)

    alert, note = said_to(slack, "UMAX")
    assert "Mia Moss could not be told of this in Slack" in alert
    assert "leadrouter cannot reach Mia Moss in Slack" in note
    for said in (alert, note):
        assert "Slack answered" not in said and code not in said and " 200 " not in said
        assert "Slack user UMIA is deactivated or gone" in said
        assert "give their current member id in the policy" in said  # what to do, kept
        assert "))" not in said  # no aside within an aside


async def clock_rounds(app: App, clock: Clock) -> None:
    assert app.delivery is not None
    for _ in range(4):
        await app.delivery.deliver_due()
        clock.advance(minutes=6)


async def test_the_story_names_who_moved_a_lead_by_name_and_not_a_rep_who_only_rejected_it(
    app: App, http: TestClient, slack: FakeSlack, clock: Clock
) -> None:
    await intake(app.uow, parse_lead({"id": "L-1", "company": "Acme", "source": "web"}))
    clock.advance(minutes=2)
    await reject(app.uow, "L-1", by="ann", reason="Not my territory")  # on to Ben
    clock.advance(minutes=2)
    await reject(app.uow, "L-1", by="ben", reason="Not a fit")  # nobody left: the queue
    clock.advance(minutes=2)
    await assign(app.uow, "L-1", rep_id="ann", by="mia")  # Mia gives it back to Ann

    ben = await why(http, slack, "UBEN")
    assert "Rejected (Ann Archer) · Not my territory" in ben
    assert "Routed again to Ben Baker · " in ben  # not "by Ann Archer": she handed nothing on
    assert "by Ben Baker" not in ben and "Mia" not in ben  # after it left him: not his
    max_ = await why(http, slack, "UMAX")
    assert "Assigned to Ann Archer by Mia Moss" in max_
    assert "Routed again to Ann Archer by Mia Moss" in max_
    assert " by mia" not in max_  # a manager by name, as the cards name them


async def test_a_manager_of_no_team_reads_so_in_app_home_not_that_the_policy_has_none(
    app: App, http: TestClient, slack: FakeSlack
) -> None:
    # Max manages no team (duo is Mia's), yet gets duo's alerts while Mia cannot be reached.
    body = event_body({"type": "app_home_opened", "user": "UMAX", "tab": "home"})
    assert await send(http, body, json_body=True) == 200
    (published,) = await slack.wait_for("views.publish")

    home = json.dumps(published.params["view"])
    assert "No teams in the policy" not in home
    assert "You manage no team in the policy" in home


async def test_a_missed_contact_of_a_rep_marked_out_tells_the_manager_they_are_out(
    app: App, slack: FakeSlack, clock: Clock
) -> None:
    await intake(app.uow, parse_lead({"id": "L-1", "company": "Acme", "source": "web"}))
    await clock_rounds(app, clock)
    await claim(app.uow, "L-1", by="ann")
    # Mia marks Ann out: the lead Ann claimed stays hers, and its contact SLA runs on.
    await set_out_of_office(app.uow, "ann", until=None, reason="flu", by="mia")
    clock.advance(hours=2, minutes=1)
    await sweep(app.uow)
    await clock_rounds(app, clock)

    (alert,) = [said for said in said_to(slack, "UMIA") if "did not contact them" in said]
    assert "It is still <@UANN>'s, who is out of office until further notice." in alert
    assert "flu" not in alert  # the absence's own reason is not the alert's to tell
