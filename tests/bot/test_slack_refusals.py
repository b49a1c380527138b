# Just over 400 lines on purpose: every refusal Slack gives for good, each through the real
# delivery against the fake Slack, and the one set of helpers they share.
"""What a sales team gets when Slack refuses a post for a reason that retrying will not cure,
through the real delivery against the fake Slack: a bot token Slack no longer takes keeps every
card waiting with its rep (no SLA, no lead moved); a rep Slack has deactivated loses the lead to
the next rep, uncharged; a queue channel that is archived, gone or without the bot has its lead
told to the managers in their DMs, not in that channel."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from bot.bootstrap import App
from bot.service.intake import intake
from bot.service.kinds import CARD_UNDELIVERABLE, SLA_MISSED
from bot.service.offers import assign
from bot.service.watchdog import sweep
from routing.leads import parse_lead
from storage.db import Database
from storage.models import AuditEventRow, LeadRow, OfferRow, OutboxRow
from tests.bot.conftest import Clock
from tests.fakes.slack import FakeSlack

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: ben, name: Ben Baker, slack: UBEN}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
  - {id: max, name: Max Mold, slack: UMAX}
teams:
  duo: {members: [ann, ben], distribution: round_robin, manager: mia, channel: CTEAM}
rules:
  - name: Triage
    when: {source: triage}
    assign: {queue: triage, channel: CTRIAGE}
  - name: Everyone
    assign: {team: duo}
fallback: {queue: unmatched, channel: CQUEUE}
sla: {default: 10m, max_reassignments: 1}
"""


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def lead(app: App, lead_id: str, source: str = "web") -> None:
    await intake(app.uow, parse_lead({"id": lead_id, "company": "Acme", "source": source}))


async def rounds(app: App, clock: Clock, count: int, *, minutes: float = 6) -> None:
    """`count` rounds of delivery, the clock moved on after each (past any backoff)."""
    assert app.delivery is not None
    for _ in range(count):
        await app.delivery.deliver_due()
        clock.advance(minutes=minutes)


async def offers(db: Database) -> list[OfferRow]:
    async with db.reading() as session:
        return list((await session.execute(select(OfferRow).order_by(OfferRow.id))).scalars())


async def item(db: Database, key: str) -> OutboxRow:
    async with db.reading() as session:
        found = await session.execute(select(OutboxRow).where(OutboxRow.dedupe_key == key))
        return found.scalar_one()


async def story(db: Database) -> list[tuple[str, str | None]]:
    async with db.reading() as session:
        events = await session.execute(select(AuditEventRow).order_by(AuditEventRow.id))
        return [(event.kind, event.reason) for event in events.scalars()]


async def lead_status(db: Database, external_id: str) -> str:
    async with db.reading() as session:
        found = await session.execute(select(LeadRow).where(LeadRow.external_id == external_id))
        return found.scalar_one().status


# --- the bot token ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["token_revoked", "invalid_auth", "account_inactive"])
async def test_a_token_slack_refuses_keeps_the_card_waiting_with_its_rep_until_it_is_fixed(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock, code: str
) -> None:
    slack.token_error = code
    await lead(app, "L-1")
    await rounds(app, clock, 5)
    assert (await sweep(app.uow)).expired == 0

    (offer,) = await offers(sqlite_db)
    assert (offer.rep_id, offer.status, offer.sla_due_at) == ("ann", "offered", None)
    assert await lead_status(sqlite_db, "L-1") == "offered"
    assert CARD_UNDELIVERABLE not in [kind for kind, _ in await story(sqlite_db)]
    card = await item(sqlite_db, "offer-card:1")
    assert card.failed_at is None and card.done_at is None  # waiting, not given up
    assert code in (card.last_error or "") and "SLACK_BOT_TOKEN" in (card.last_error or "")
    assert slack.calls_to("chat.postMessage") == []

    slack.token_error = None  # a new token, say
    await rounds(app, clock, 1)
    (offer,) = await offers(sqlite_db)
    assert offer.status == "offered" and offer.message_ts is not None
    assert offer.sla_due_at is not None  # the SLA starts with the card Ann can see
    posts = slack.calls_to("chat.postMessage")
    assert sorted(post.params["channel"] for post in posts) == ["CTEAM", "UANN"]


async def test_a_refused_token_is_said_once_in_the_log_and_once_when_it_works_again(
    app: App, slack: FakeSlack, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    slack.token_error = "token_revoked"
    await lead(app, "L-1")
    await lead(app, "L-2")
    with caplog.at_level(logging.INFO, logger="bot.slack.delivery"):
        await rounds(app, clock, 3)
        slack.token_error = None
        await rounds(app, clock, 1)
    said = [(r.levelname, r.getMessage()) for r in caplog.records if "bot token" in r.getMessage()]
    assert [level for level, _ in said] == ["ERROR", "WARNING"]
    assert "token_revoked" in said[0][1] and "waits in the outbox" in said[0][1]


async def test_a_refused_token_makes_slack_unreachable_for_healthz_and_the_metrics(
    app: App, slack: FakeSlack, clock: Clock
) -> None:
    before = app.slack_state()
    slack.token_error = "token_revoked"
    await lead(app, "L-1")
    await rounds(app, clock, 1)
    assert app.slack_state() == "unreachable"
    slack.token_error = None
    await rounds(app, clock, 1)
    assert app.slack_state() == before != "unreachable"


async def test_a_post_whose_answer_was_lost_is_still_looked_for_after_the_token_was_refused(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    """The first post landed but its answer did not come; the next attempt met a revoked
    token before it could look. Once the token works, the card is found, not posted again."""
    assert app.delivery is not None
    app.delivery.call_timeout_s = 0.3
    slack.delay("chat.postMessage", 1.0)
    await lead(app, "L-1")
    await rounds(app, clock, 1)
    slack.delay("chat.postMessage", 0)
    slack.token_error = "token_revoked"
    await rounds(app, clock, 2)
    slack.token_error = None
    await rounds(app, clock, 1)

    to_ann = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "UANN"]
    assert len(to_ann) == 1
    (offer,) = await offers(sqlite_db)
    assert offer.message_ts is not None


# --- a rep Slack no longer has ---------------------------------------------------------------


@pytest.mark.parametrize("code", ["user_disabled", "user_not_found", "account_inactive"])
async def test_a_rep_slack_has_deactivated_loses_the_lead_to_the_next_rep_uncharged(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock, code: str
) -> None:
    # Slack refuses the post to Ann's DM, and only that: the token itself is fine.
    slack.fail("chat.postMessage", status=200, error=code)
    await lead(app, "L-1")
    await rounds(app, clock, 2)

    first, second = await offers(sqlite_db)
    assert (first.rep_id, first.status) == ("ann", "reassigned")
    assert (second.rep_id, second.status) == ("ben", "offered")
    assert second.message_ts is not None
    events = await story(sqlite_db)
    (why,) = [reason for kind, reason in events if kind == CARD_UNDELIVERABLE]
    assert f"{code}: Slack user UANN is deactivated or gone" in (why or "")
    assert SLA_MISSED not in [kind for kind, _ in events]


async def test_a_rep_whose_dm_will_not_open_for_an_unsure_card_still_loses_the_lead(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    """The first post's answer was lost; by the next attempt Ann's account is gone, and Slack
    answers account_inactive both to opening her DM (to look for the card) and to the post,
    while the token itself works: the lead moves on rather than wait for a token fix."""
    assert app.delivery is not None
    app.delivery.call_timeout_s = 0.3
    slack.fail("chat.postMessage", status=500)
    await lead(app, "L-1")
    await rounds(app, clock, 1)
    slack.fail("conversations.open", status=200, error="account_inactive", times=5)
    slack.channel_errors["UANN"] = "account_inactive"
    await rounds(app, clock, 2)

    first, second = await offers(sqlite_db)
    assert (first.rep_id, first.status) == ("ann", "reassigned")
    assert (second.rep_id, second.status) == ("ben", "offered")
    assert app.slack_state() != "unreachable"


async def test_a_rep_deactivated_in_slack_gets_no_card_and_is_not_charged_for_one(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    """Slack takes a post to a deactivated user's DM, and nobody reads it: the card would start
    an SLA nobody could meet. users.info says the account is deactivated; asked once a while."""
    slack.deactivated_users.add("UANN")
    await lead(app, "L-1")
    await rounds(app, clock, 2, minutes=1)
    await lead(app, "L-2")
    await rounds(app, clock, 2, minutes=1)

    assert [c.params["channel"] for c in slack.calls_to("chat.postMessage")].count("UANN") == 0
    assert [(o.rep_id, o.status) for o in await offers(sqlite_db)] == [
        ("ann", "reassigned"),
        ("ben", "offered"),
        ("ann", "reassigned"),
        ("ben", "offered"),
    ]
    reasons = [
        reason or "" for kind, reason in await story(sqlite_db) if kind == CARD_UNDELIVERABLE
    ]
    assert len(reasons) == 2 and all("UANN is deactivated or gone" in r for r in reasons)
    asked = [c for c in slack.calls_to("users.info") if c.params["user"] == "UANN"]
    assert len(asked) == 1  # remembered for a while, not asked per card
    clock.advance(minutes=11)
    await sweep(app.uow)
    async with sqlite_db.reading() as session:
        misses = await session.execute(
            select(AuditEventRow).where(AuditEventRow.kind == SLA_MISSED)
        )
        assert all((event.data or {}).get("rep") != "ann" for event in misses.scalars())


async def test_users_info_rate_limited_lets_cards_go_and_is_not_asked_again_per_card(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    """users.info answering 429 says nothing of the rep: the card goes. The next card to the
    same rep, a moment later, does not ask again (each ask is a wait before the card, and one
    more call to a method Slack has just said to slow down on)."""
    slack.fail("users.info", status=429, retry_after=1, times=50)
    await lead(app, "L-1")  # Ann's (round robin)
    await lead(app, "L-2")  # Ben's
    await rounds(app, clock, 1, minutes=1)
    asked = [c.params["user"] for c in slack.refused if c.method == "users.info"]
    await lead(app, "L-3")  # Ann's again
    await rounds(app, clock, 1, minutes=1)

    assert {"UANN", "UBEN"} <= set(asked)
    assert [c.params["user"] for c in slack.refused if c.method == "users.info"] == asked
    to_ann = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "UANN"]
    assert len(to_ann) == 2
    assert [(o.rep_id, o.status) for o in await offers(sqlite_db)] == [
        ("ann", "offered"),
        ("ben", "offered"),
        ("ann", "offered"),
    ]


# --- a queue's channel, and a lead no rep's card reached ---------------------------------------


def said_to(slack: FakeSlack, user: str) -> list[str]:
    """What each post to `user`'s DM says, its blocks' JSON included."""
    return [
        f"{post.params['text']} {json.dumps(post.params.get('blocks'))}"
        for post in slack.calls_to("chat.postMessage")
        if post.params["channel"] == user
    ]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("is_archived", "the channel CTRIAGE is archived: unarchive it"),
        ("channel_not_found", "the bot cannot see the channel CTRIAGE"),
        ("not_in_channel", "invite the bot to the channel CTRIAGE"),
    ],
)
async def test_a_lead_its_queue_channel_refuses_goes_to_the_managers_dms_never_that_channel(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock, code: str, words: str
) -> None:
    slack.channel_errors["CTRIAGE"] = code
    await lead(app, "L-1", "triage")
    await rounds(app, clock, 3)

    assert (await item(sqlite_db, "queue-post:1:0")).failed_at is not None
    to_triage = [c for c in [*slack.calls, *slack.refused] if c.params.get("channel") == "CTRIAGE"]
    assert [(c.method, c.error) for c in to_triage] == [("chat.postMessage", code)]
    # A queued lead of no team: every manager hears of it, with why, and can assign it.
    for manager in ("UMIA", "UMAX"):
        (alert,) = said_to(slack, manager)
        assert "could not be posted in the triage queue's channel" in alert
        assert words in alert and '"block_id": "assign:L-1"' in alert
        assert code not in alert and "Slack answered" not in alert  # in words, not Slack's code
    events = await story(sqlite_db)
    (why,) = [reason for kind, reason in events if kind == "queue_post_undeliverable"]
    assert code in (why or "") and (why or "").endswith("told Max Mold, Mia Moss")
    assert await lead_status(sqlite_db, "L-1") == "queued"


async def test_a_queue_post_refused_after_the_lead_was_assigned_alerts_nobody(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    slack.channel_errors["CTRIAGE"] = "is_archived"
    await lead(app, "L-1", "triage")
    await assign(app.uow, "L-1", rep_id="ann", by="mia")
    await rounds(app, clock, 2)

    assert said_to(slack, "UMIA") == [] and said_to(slack, "UMAX") == []
    assert "queue_post_undeliverable" not in [kind for kind, _ in await story(sqlite_db)]


async def test_a_lead_no_reps_card_could_reach_is_queued_and_its_team_manager_told(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    slack.channel_errors["UANN"] = "user_disabled"
    slack.channel_errors["UBEN"] = "user_disabled"
    await lead(app, "L-1")
    await rounds(app, clock, 4)

    assert await lead_status(sqlite_db, "L-1") == "queued"
    (alert,) = said_to(slack, "UMIA")  # duo's manager, and only she
    assert "card could not be delivered to Ben Baker" in alert
    assert '"block_id": "assign:L-1"' in alert
    assert said_to(slack, "UMAX") == []
    assert [c.params["channel"] for c in slack.calls_to("chat.postMessage")].count("CQUEUE") == 1
    assert SLA_MISSED not in [kind for kind, _ in await story(sqlite_db)]


# --- a message Slack will not draw --------------------------------------------------------------


@pytest.mark.parametrize("code", ["invalid_blocks", "msg_too_long"])
async def test_a_card_slack_will_not_draw_reaches_its_rep_as_text_and_the_lead_stays(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock, code: str
) -> None:
    slack.blocks_refused = code
    await lead(app, "L-1")
    await rounds(app, clock, 2)

    (offer,) = await offers(sqlite_db)
    assert (offer.rep_id, offer.status) == ("ann", "offered")
    assert offer.message_ts is not None and offer.sla_due_at is not None  # Ann saw it
    (card,) = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "UANN"]
    assert card.params.get("blocks") is None
    assert card.params["text"].startswith("New lead for you: Acme")
    assert code in card.params["text"] and "App Home" in card.params["text"]
    # Tagged as any post, so a lost answer is still found rather than posted again.
    assert card.params["metadata"]["event_payload"]["key"] == "offer-card:1"
    assert CARD_UNDELIVERABLE not in [kind for kind, _ in await story(sqlite_db)]


# --- a manager Slack cannot reach --------------------------------------------------------------


@pytest.mark.parametrize("refusal", ["deactivated", "user_not_found"])
async def test_a_queued_lead_its_managers_dm_refuses_goes_to_the_other_managers(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock, refusal: str
) -> None:
    if refusal == "deactivated":
        slack.deactivated_users.add("UMIA")
    else:
        slack.channel_errors["UMIA"] = refusal
    slack.channel_errors["UANN"] = "user_disabled"
    slack.channel_errors["UBEN"] = "user_disabled"
    await lead(app, "L-1")  # no rep can get it: queued, and duo's manager Mia is alerted
    await rounds(app, clock, 5)

    assert said_to(slack, "UMIA") == []
    (alert,) = said_to(slack, "UMAX")
    assert "Mia Moss could not be told of this lead in Slack" in alert
    assert '"block_id": "assign:L-1"' in alert
    (why,) = [reason or "" for kind, reason in await story(sqlite_db) if kind == "manager_not_told"]
    assert why.startswith("Mia Moss: ") and why.endswith("told Max Mold instead")


async def test_an_alert_sent_instead_that_cannot_go_either_is_passed_on_no_further(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    slack.deactivated_users.update({"UMIA", "UMAX"})
    slack.channel_errors["UANN"] = "user_disabled"
    slack.channel_errors["UBEN"] = "user_disabled"
    await lead(app, "L-1")  # no rep can get it: duo's manager Mia is alerted, then Max instead
    await rounds(app, clock, 8)

    async with sqlite_db.reading() as session:
        alerts = (
            await session.execute(select(OutboxRow).where(OutboxRow.kind == "slack.manager_alert"))
        ).scalars()
        keys = sorted(alert.dedupe_key for alert in alerts)
    assert keys == ["manager-alert:2:mia", "manager-alert:2:mia:instead:max"]
    told = [reason or "" for kind, reason in await story(sqlite_db) if kind == "manager_not_told"]
    assert [r.split(":")[0] for r in told] == ["Mia Moss", "Max Mold"]
    assert told[0].endswith("told Max Mold instead") and told[1].endswith("nobody else told")
    assert said_to(slack, "UMIA") == [] and said_to(slack, "UMAX") == []


async def test_a_manager_alerted_with_one_who_is_deactivated_is_not_alerted_twice(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    """A triage lead (no team) is told to every manager at once; Mia's DM refuses hers. Max
    has it already: nobody is told "instead", and Max gets the lead once."""
    slack.deactivated_users.add("UMIA")
    slack.channel_errors["CTRIAGE"] = "is_archived"
    await lead(app, "L-1", "triage")
    await rounds(app, clock, 6)

    assert said_to(slack, "UMIA") == []
    (alert,) = said_to(slack, "UMAX")
    assert "could not be posted in the triage queue's channel" in alert
    (why,) = [reason or "" for kind, reason in await story(sqlite_db) if kind == "manager_not_told"]
    assert why.startswith("Mia Moss: ") and why.endswith("nobody else told")


async def test_a_manager_alerted_of_a_queued_lead_is_not_alerted_again_when_its_queue_refuses_it(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    """No rep's card could go: Mia, duo's manager, has the lead in her DM. The queue's channel
    is archived too: she is not sent the same lead a second time, and the story says why."""
    slack.channel_errors["UANN"] = "user_disabled"
    slack.channel_errors["UBEN"] = "user_disabled"
    slack.channel_errors["CQUEUE"] = "is_archived"
    await lead(app, "L-1")
    await rounds(app, clock, 6)

    assert await lead_status(sqlite_db, "L-1") == "queued"
    (alert,) = said_to(slack, "UMIA")
    assert "card could not be delivered to Ben Baker" in alert
    assert said_to(slack, "UMAX") == []
    (why,) = [r or "" for kind, r in await story(sqlite_db) if kind == "queue_post_undeliverable"]
    assert "is_archived" in why and why.endswith("Mia Moss had it already")


async def test_a_lead_its_queue_refused_is_still_told_to_managers_once_after_a_crash(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    """The post's give-up was committed and the process died before the managers were told:
    the watchdog's sweep tells them, once, however often it runs."""
    assert app.delivery is not None
    escalate = app.delivery.on_given_up
    app.delivery.on_given_up = None  # what ran after the give-up died with the process
    slack.channel_errors["CTRIAGE"] = "is_archived"
    await lead(app, "L-1", "triage")
    await rounds(app, clock, 2)
    assert (await item(sqlite_db, "queue-post:1:0")).failed_at is not None
    assert said_to(slack, "UMIA") == [] and said_to(slack, "UMAX") == []

    app.delivery.on_given_up = escalate  # a new process
    for _ in range(3):
        assert (await sweep(app.uow)).expired == 0
        await rounds(app, clock, 2)

    for manager in ("UMIA", "UMAX"):
        (alert,) = said_to(slack, manager)
        assert "could not be posted in the triage queue's channel" in alert
        assert "CTRIAGE is archived" in alert and '"block_id": "assign:L-1"' in alert
    events = [kind for kind, _ in await story(sqlite_db)]
    assert events.count("queue_post_undeliverable") == 1
