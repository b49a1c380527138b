"""A manager Slack cannot reach (deactivated: Slack would take the post and nobody would read it;
or a DM Slack refuses for good) is never a silent hole, through the real delivery against the
fake Slack: a missed contact SLA goes to the other managers instead, and the lead's story says
so; a digest, a backlog word or a refused policy is not posted into a dead DM nor sent to
anyone twice, but the other managers are told, once a day, that the manager cannot be reached."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.bootstrap import App
from bot.service.digests import queue_digest
from bot.service.intake import intake
from bot.service.offers import claim
from bot.service.policies import refuse_policy
from bot.service.unit_of_work import UnitOfWork
from bot.service.watchdog import summarise_backlog, sweep
from routing.leads import parse_lead
from routing.policy import PolicyError, parse_policy
from storage.db import Database
from storage.models import OutboxRow
from tests.bot.conftest import Clock
from tests.bot.test_slack_refusals import rounds, said_to, story
from tests.fakes.slack import FakeSlack

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: ben, name: Ben Baker, slack: UBEN}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
  - {id: max, name: Max Mold, slack: UMAX}
teams:
  duo: {members: [ann, ben], distribution: round_robin, manager: mia}
rules:
  - name: Everyone
    assign: {team: duo}
fallback: {queue: unmatched, channel: CQUEUE}
sla: {default: 10m, contact: 2h}
"""

UNREACHABLE = "leadrouter cannot reach Mia Moss in Slack"


@pytest.fixture
def slack_policy() -> str:
    return POLICY


@pytest.fixture(params=["deactivated", "user_not_found"])
def mia_unreachable(request: pytest.FixtureRequest, slack: FakeSlack) -> str:
    """Mia's account deactivated (Slack takes a post to her DM all the same), or her DM refused."""
    if request.param == "deactivated":
        slack.deactivated_users.add("UMIA")
    else:
        slack.channel_errors["UMIA"] = request.param
    return str(request.param)


def posts_to(slack: FakeSlack, user: str) -> int:
    """Posts that reached `user`'s DM or that Slack refused there: none, for a dead DM."""
    return sum(call.params["channel"] == user for call in slack.calls_to("chat.postMessage"))


async def keys(db: Database, kind: str) -> list[str]:
    async with db.reading() as session:
        found = await session.execute(select(OutboxRow.dedupe_key).where(OutboxRow.kind == kind))
        return sorted(found.scalars())


async def contact_missed_by_ann(app: App, clock: Clock) -> None:
    """Ann gets L-1, claims it and does not contact it within the 2h of the contact SLA."""
    await intake(app.uow, parse_lead({"id": "L-1", "company": "Acme", "source": "web"}))
    await rounds(app, clock, 1, minutes=1)
    await claim(app.uow, "L-1", by="ann")
    clock.advance(hours=2, minutes=1)
    await sweep(app.uow)
    await rounds(app, clock, 4)


# --- a missed contact SLA -------------------------------------------------------------------


async def test_a_missed_contact_its_managers_dm_cannot_take_goes_to_the_other_managers(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock, mia_unreachable: str
) -> None:
    await contact_missed_by_ann(app, clock)

    if mia_unreachable == "deactivated":
        assert posts_to(slack, "UMIA") == 0  # asked before posting: nothing in a dead DM
    (alert,) = said_to(slack, "UMAX")
    assert "<@UANN> claimed this lead and did not contact them" in alert
    assert "Mia Moss could not be told of this in Slack" in alert and "so you are" in alert
    (why,) = [reason or "" for kind, reason in await story(sqlite_db) if kind == "manager_not_told"]
    assert why.startswith("Mia Moss, of the missed contact SLA: ")
    assert "UMIA" in why and why.endswith("told Max Mold instead")
    told = await app.reader.story("L-1", None)  # as /routing why tells it
    assert told is not None
    assert any(
        event.what.startswith("A manager could not be told in Slack · Mia Moss, of the missed")
        for event in told.events
    )


async def test_a_missed_contact_sent_instead_that_cannot_go_either_goes_no_further(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    slack.deactivated_users.add("UMIA")
    slack.channel_errors["UMAX"] = "cannot_dm_bot"
    await contact_missed_by_ann(app, clock)
    await rounds(app, clock, 3)

    assert await keys(sqlite_db, "slack.contact_missed") == [
        "contact-missed:1:mia",
        "contact-missed:1:mia:instead:max",
    ]
    told = [reason or "" for kind, reason in await story(sqlite_db) if kind == "manager_not_told"]
    assert [reason.split(",")[0] for reason in told] == ["Mia Moss", "Max Mold"]
    assert told[0].endswith("told Max Mold instead") and told[1].endswith("nobody else told")
    assert posts_to(slack, "UMIA") == 0


# --- the digest -----------------------------------------------------------------------------


async def test_a_digest_is_not_posted_to_a_manager_slack_cannot_reach_and_the_others_hear_daily(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock, mia_unreachable: str
) -> None:
    assert await queue_digest(app.uow, "mia", due_at=clock.now, runner="here")
    await rounds(app, clock, 3)
    if mia_unreachable == "deactivated":
        assert posts_to(slack, "UMIA") == 0

    (note,) = said_to(slack, "UMAX")
    assert UNREACHABLE in note and "Their digest was not sent" in note
    assert "they get no digest" not in note  # said once already
    assert "leadrouter slack check" in note
    assert "Routing digest" not in note and "All clear" not in note  # not Mia's digest itself

    # Mia's next digest the same day: Max is not told again.
    assert await queue_digest(app.uow, "mia", due_at=clock.now, runner="here")
    await rounds(app, clock, 3)
    assert len(said_to(slack, "UMAX")) == 1
    # The next day, while Mia is still out of reach: once more.
    clock.advance(days=1)
    assert await queue_digest(app.uow, "mia", due_at=clock.now, runner="here")
    await rounds(app, clock, 3)
    assert [UNREACHABLE in note for note in said_to(slack, "UMAX")] == [True, True]
    assert len(await keys(sqlite_db, "slack.manager_unreachable")) == 2


async def test_a_manager_out_of_reach_alone_in_the_policy_is_a_warning_in_the_log(
    app: App,
    slack: FakeSlack,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack.deactivated_users.update({"UMIA", "UMAX"})
    assert await queue_digest(app.uow, "mia", due_at=clock.now, runner="here")
    await rounds(app, clock, 4)

    assert posts_to(slack, "UMIA") == 0 and posts_to(slack, "UMAX") == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("manager mia cannot be reached in Slack" in line for line in warned)
    assert any("slack.manager_unreachable" in line and "given up" in line for line in warned)


# --- the backlog word and a refused policy ----------------------------------------------------


async def test_the_backlog_word_is_not_posted_to_a_manager_slack_cannot_reach(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock, mia_unreachable: str
) -> None:
    # L-1 arrives where no Slack app runs (an import): a backlog when Slack comes.
    offline = UnitOfWork(db=sqlite_db, policy=app.uow.policy, clock=clock)
    await intake(offline, parse_lead({"id": "L-1", "company": "Acme", "source": "web"}))
    assert await summarise_backlog(app.uow) == 1  # to Mia, duo's manager
    await rounds(app, clock, 3)

    if mia_unreachable == "deactivated":
        assert posts_to(slack, "UMIA") == 0
    assert posts_to(slack, "UANN") == 1  # the card itself reaches its rep
    (note,) = said_to(slack, "UMAX")
    assert UNREACHABLE in note and "not told of the leads that arrived" in note


async def test_a_refused_policy_is_not_posted_to_a_manager_slack_cannot_reach_nor_sent_twice(
    app: App, slack: FakeSlack, clock: Clock, mia_unreachable: str
) -> None:
    bad = POLICY.replace("members: [ann, ben]", "members: [ann, zed]")
    with pytest.raises(PolicyError) as refused:
        parse_policy(bad, source="routing.yml")
    assert await refuse_policy(app.uow, refused.value, bad, serving=app.uow.policy()) == 2
    await rounds(app, clock, 3)

    if mia_unreachable == "deactivated":
        assert posts_to(slack, "UMIA") == 0
    told = said_to(slack, "UMAX")
    assert sum("was not activated" in said for said in told) == 1  # Max's own, once
    (note,) = [said for said in told if UNREACHABLE in said]
    assert "not told of a policy file refused (you were)" in note
