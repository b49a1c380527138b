"""Cards delivered exactly once and on time, against a fake Slack that is slow, rate-limits,
and loses answers the way the real one sometimes does."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot import outbox
from bot.bootstrap import App
from bot.service.intake import intake
from bot.service.kinds import CARD_UNDELIVERABLE, SLA_MISSED
from bot.service.watchdog import sweep
from bot.slack.delivery import CardDelivery
from routing.leads import parse_lead
from storage.db import Database
from storage.models import AuditEventRow, OfferRow, OutboxRow, SlackLaneRow
from tests.bot.conftest import Clock
from tests.bot.test_outbox_handover import until
from tests.fakes.slack import FakeSlack

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: bob, name: Bob Brown, slack: UBOB}
  - {id: cy, name: Cy Cole}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
teams:
  ann_only: {members: [ann]}
  bob_only: {members: [bob]}
  cy_then_bob: {members: [cy, bob]}
sla: {default: 5m}
rules:
  - name: Unreachable first
    when: {source: cy}
    assign: {team: cy_then_bob}
  - name: Bob's
    when: {source: bob}
    assign: {team: bob_only}
  - name: Ann's
    assign: {team: ann_only}
"""


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def lead_for(app: App, lead_id: str, source: str = "ann") -> None:
    await intake(app.uow, parse_lead({"id": lead_id, "company": "Acme", "source": source}))


async def offers(db: Database) -> list[OfferRow]:
    async with db.reading() as session:
        return list((await session.execute(select(OfferRow).order_by(OfferRow.id))).scalars())


async def items(db: Database) -> list[OutboxRow]:
    async with db.reading() as session:
        return list((await session.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars())


def replica(app: App, slack: FakeSlack, db: Database, **options: float) -> CardDelivery:
    """Another process's delivery over the same database, on the real clock."""
    return CardDelivery(
        db=db,
        reader=app.reader,
        client=AsyncWebClient(token="xoxb-test", base_url=slack.api_url, retry_handlers=[]),
        policy=lambda: app.policy,
        clock=lambda: datetime.now(UTC),
        poll_every_s=0.05,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def running() -> AsyncIterator[Callable[[CardDelivery], None]]:
    tasks: list[asyncio.Task[None]] = []

    def run(worker: CardDelivery) -> None:
        tasks.append(asyncio.create_task(worker.run()))

    yield run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_slack_answering_after_the_lease_ran_out_doubles_no_card_across_two_replicas(
    app: App,
    slack: FakeSlack,
    sqlite_db: Database,
    running: Callable[[CardDelivery], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox, "LEASE", timedelta(seconds=0.6))
    monkeypatch.setattr(outbox, "RENEW_EVERY_S", 0.15)
    for n in range(2):
        await lead_for(app, f"A-{n}", "ann")
        await lead_for(app, f"B-{n}", "bob")
    slack.delay("chat.postMessage", 1.2)  # twice the lease: only renewing it keeps it
    first, second = replica(app, slack, sqlite_db), replica(app, slack, sqlite_db)
    running(first)
    running(second)

    async def all_recorded() -> bool:
        return all(offer.message_ts for offer in await offers(sqlite_db))

    await until(all_recorded, within=20)
    await asyncio.sleep(0.5)
    posts = slack.calls_to("chat.postMessage")
    assert sorted(p.params["metadata"]["event_payload"]["key"] for p in posts) == [
        f"offer-card:{n}" for n in range(1, 5)
    ]
    assert all(item.done_at is not None for item in await items(sqlite_db))
    assert first.delivered + second.delivered == 4


async def test_a_late_copy_from_an_attempt_whose_lease_ran_out_is_deleted_once_another_is_recorded(
    app: App,
    slack: FakeSlack,
    sqlite_db: Database,
    running: Callable[[CardDelivery], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process froze with its post on the way to Slack: its lease ran out, another replica
    looked, found nothing, posted and recorded its own card; then the first copy landed and its
    answer came back. docs/slack.md: that copy "finds the first recorded and is deleted again"."""
    monkeypatch.setattr(outbox, "LEASE", timedelta(seconds=0.6))
    await lead_for(app, "A-1")
    on_its_way = slack.hold("chat.postMessage")
    frozen = replica(app, slack, sqlite_db)
    # One attempt and no renewals: for its lease, the process is frozen.
    attempt = asyncio.create_task(frozen.deliver_due())
    assert await asyncio.to_thread(on_its_way.arrived.wait, 5)
    running(replica(app, slack, sqlite_db))

    async def recorded() -> bool:
        return all(offer.message_ts for offer in await offers(sqlite_db))

    await until(recorded, within=5)
    on_its_way.release()
    assert await asyncio.wait_for(attempt, timeout=5) == 1
    await asyncio.sleep(0.5)  # time for a chat.delete

    assert len(slack.calls_to("chat.postMessage")) == 2  # the late copy did reach Slack
    (offer,) = await offers(sqlite_db)
    assert list(slack.standing_messages()) == [(offer.channel, offer.message_ts)]


async def test_a_late_answer_for_the_very_card_another_replica_found_deletes_nothing(
    app: App,
    slack: FakeSlack,
    sqlite_db: Database,
    running: Callable[[CardDelivery], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The frozen process's post did land; only its answer was late. The replica that took
    the item over found that message in the DM and recorded it: when the answer finally comes,
    it names the card recorded, which is not a second copy and must stay."""
    monkeypatch.setattr(outbox, "LEASE", timedelta(seconds=0.6))
    await lead_for(app, "A-1")
    slack.delay("chat.postMessage", 2.0)  # posted at once, answered two seconds later
    frozen = replica(app, slack, sqlite_db)
    attempt = asyncio.create_task(frozen.deliver_due())

    async def landed() -> bool:
        return bool(slack.messages)

    await until(landed, within=5)
    slack.delay("chat.postMessage", 0)
    running(replica(app, slack, sqlite_db))

    async def recorded() -> bool:
        return all(offer.message_ts for offer in await offers(sqlite_db))

    await until(recorded, within=5)
    assert await asyncio.wait_for(attempt, timeout=5) == 1
    await asyncio.sleep(0.5)  # time for a chat.delete, were one to be sent

    assert len(slack.calls_to("chat.postMessage")) == 1
    assert slack.calls_to("chat.delete") == []
    (offer,) = await offers(sqlite_db)
    assert list(slack.standing_messages()) == [(offer.channel, offer.message_ts)]


async def test_a_post_whose_answer_never_came_is_found_in_the_dm_and_not_posted_again(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    app.delivery.call_timeout_s = 0.3
    slack.delay("chat.postMessage", 1.0)  # Slack posts it, but answers too late
    await lead_for(app, "A-1")
    assert await app.delivery.deliver_due() == 1
    (item,) = await items(sqlite_db)
    assert item.done_at is None and item.lease_token == "unsure"
    assert "did not answer within 0.3 s" in (item.last_error or "")

    slack.delay("chat.postMessage", 0)
    clock.advance(minutes=5)
    assert await app.delivery.deliver_due() == 1
    assert len(slack.calls_to("chat.postMessage")) == 1
    ((channel, ts),) = slack.messages
    (offer,) = await offers(sqlite_db)
    assert (offer.channel, offer.message_ts) == (channel, ts)


async def test_a_post_is_repeated_when_the_dm_cannot_be_read_rather_than_lost(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    slack.fail("chat.postMessage", status=503)
    slack.history_refused["DANN"] = "missing_scope"  # installed without im:history
    await lead_for(app, "A-1")
    assert await app.delivery.deliver_due() == 1
    clock.advance(minutes=5)
    assert await app.delivery.deliver_due() == 1
    assert len(slack.calls_to("chat.postMessage")) == 1
    (offer,) = await offers(sqlite_db)
    assert offer.message_ts is not None


async def test_retry_after_is_waited_out_every_time_and_shared_with_other_replicas(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    slack.fail("chat.postMessage", status=429, retry_after=1, times=5)
    await lead_for(app, "A-1")
    delivering = asyncio.create_task(app.delivery.deliver_due())
    await until(lambda: _refused(slack, 1))
    # Another replica, meanwhile, leaves the held DM alone: a lead for Ann waits ...
    await lead_for(app, "A-2")
    other = replica(app, slack, sqlite_db)
    other.clock = clock
    assert await other.deliver_due() == 0
    # ... while Bob's lane is free.
    await lead_for(app, "B-1", "bob")
    assert await other.deliver_due() == 1

    assert await delivering == 1
    to_ann = [c for c in [*slack.refused, *slack.calls] if c.params.get("channel") == "UANN"]
    to_ann.sort(key=lambda call: call.at)
    # Bob's lane may have drawn some of the five 429s; every one Ann's drew was waited out.
    assert [c.status for c in to_ann] == [429] * (len(to_ann) - 1) + [200]
    assert len(to_ann) >= 4
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(to_ann)]
    assert min(gaps) >= 0.95, gaps
    async with sqlite_db.reading() as session:
        lane = await session.get(SlackLaneRow, "UANN")
    assert lane is not None and lane.not_before > clock()


async def _refused(slack: FakeSlack, count: int) -> bool:
    return len(slack.refused) >= count


async def test_a_backlog_in_one_dm_never_delays_another_reps_card(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    for n in range(100):  # Ann's DM: a hundred cards, one a second
        await lead_for(app, f"A-{n}")
    await slack.wait_for("chat.postMessage", count=3)
    started = time.monotonic()
    await lead_for(app, "B-1", "bob")

    async def bob_carded() -> bool:
        return any(c.params["channel"] == "UBOB" for c in slack.calls_to("chat.postMessage"))

    await until(bob_carded, within=2.0)
    assert time.monotonic() - started < 2.0
    to_ann = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "UANN"]
    assert len(to_ann) < 10  # the backlog is still there, paced


async def test_the_sla_runs_from_the_cards_post_not_from_the_decision(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    await lead_for(app, "A-1")
    (offer,) = await offers(sqlite_db)
    assert offer.sla_due_at is None and offer.card_posted_at is None  # nobody has seen it

    clock.advance(minutes=30)  # Slack was down for half an hour
    swept = await sweep(app.uow)
    assert swept.expired == 0  # the rep is not charged for a card they could not see
    await app.delivery.deliver_due()
    (offer,) = await offers(sqlite_db)
    assert offer.card_posted_at == clock()
    assert offer.sla_due_at == clock() + timedelta(minutes=5)
    # The card itself shows the deadline that runs from its post.
    (post,) = slack.calls_to("chat.postMessage")
    assert str(int((clock() + timedelta(minutes=5)).timestamp())) in str(post.params["blocks"])

    clock.advance(minutes=6)
    assert (await sweep(app.uow)).expired == 1


async def test_a_card_that_cannot_be_delivered_moves_the_lead_on_without_charging_a_miss(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    await lead_for(app, "C-1", "cy")  # Cy has no Slack id: the card cannot go out
    await app.delivery.deliver_due()
    await until(lambda: _offered_to(sqlite_db, "bob"))
    first, second = await offers(sqlite_db)
    assert (first.rep_id, first.status) == ("cy", "reassigned")
    assert second.sla_due_at is None  # Bob's SLA waits for Bob's card
    await app.delivery.deliver_due()
    async with sqlite_db.reading() as session:
        kinds = [e.kind for e in (await session.execute(select(AuditEventRow))).scalars()]
    assert CARD_UNDELIVERABLE in kinds and SLA_MISSED not in kinds
    assert [c.params["channel"] for c in slack.calls_to("chat.postMessage")] == ["UBOB"]


async def _offered_to(db: Database, rep: str) -> bool:
    return any(o.rep_id == rep and o.status == "offered" for o in await offers(db))
