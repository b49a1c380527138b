"""Outbox items handed over at commit: queued while a worker of their kind runs in this process,
they are committed already leased to it and carried out at once, without a poll or a lease of
their own; should the process die first, the lease runs out and a poll takes them up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.bootstrap import App
from bot.outbox import LEASE, OutboxWorker
from bot.service import NewOffer
from bot.slack.delivery import SLACK_KINDS
from routing.leads import parse_lead
from storage.db import Database
from storage.models import OfferRow, OutboxRow
from tests.bot.conftest import Clock
from tests.fakes.slack import FakeSlack
from tests.sqlite_trace import opening, sqlite_statements

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
teams:
  solo: {members: [ann], distribution: round_robin}
rules:
  - name: Everyone
    assign: {team: solo}
"""


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def intake(app: App, lead_id: str = "L-1") -> None:
    result = await app.service.intake(parse_lead({"id": lead_id, "company": "Acme Corp"}))
    assert result.lead.rep == "ann"


async def card_item(db: Database) -> OutboxRow:
    async with db.reading() as session:
        found = await session.execute(
            select(OutboxRow).where(col(OutboxRow.kind) == "slack.offer_card")
        )
        return found.scalar_one()


async def posted_ts(db: Database) -> str | None:
    async with db.reading() as session:
        offer = (await session.execute(select(OfferRow))).scalar_one()
    return offer.message_ts


async def until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.02)


def dropping_takers(app: App, kept: list[OutboxRow] | None = None) -> None:
    """Hand items over to nobody (or into `kept`): the process 'dies' between commit and
    delivery, as far as these items are concerned."""

    def take(items: Sequence[OutboxRow]) -> None:
        if kept is not None:
            kept.extend(items)

    app.service.takers = lambda: dict.fromkeys(SLACK_KINDS, take)


async def test_a_card_queued_while_the_delivery_runs_is_posted_without_a_poll_or_a_lease(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    assert app.delivery is not None
    app.delivery.poll_every_s = 3600  # from its next wait on: no poll would find the card soon
    app.delivery.wake()
    await asyncio.sleep(0.2)
    statements = sqlite_statements(sqlite_db)

    started = time.monotonic()
    await intake(app)
    await slack.wait_for("chat.postMessage", timeout=5)
    assert time.monotonic() - started < 5
    await until(lambda: _done(sqlite_db))

    # Queued with the decision; then, once carried out, done with the card's ts in one update.
    on_outbox = [opening(s) for s in statements if " outbox " in f"{s.lower()} "]
    assert on_outbox == ["INSERT INTO", "UPDATE OUTBOX"]
    item = await card_item(sqlite_db)
    assert item.attempts == 1
    assert await posted_ts(sqlite_db) is not None


async def test_a_card_whose_process_died_before_carrying_it_out_is_polled_up_after_its_lease(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    dropping_takers(app)
    await intake(app)
    item = await card_item(sqlite_db)
    assert item.next_attempt_at == clock() + LEASE  # committed leased to the process
    assert item.attempts == 1

    assert await app.delivery.deliver_due() == 0  # nobody else may take it meanwhile
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await app.delivery.deliver_due() == 1
    await slack.wait_for("chat.postMessage")
    assert len(slack.calls_to("chat.postMessage")) == 1
    item = await card_item(sqlite_db)
    assert item.done_at is not None
    assert item.attempts == 2
    assert await posted_ts(sqlite_db) is not None


async def test_an_item_that_waited_past_half_its_lease_is_leased_again_before_it_is_tried(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    kept: list[OutboxRow] = []
    dropping_takers(app, kept)
    await intake(app)
    clock.advance(seconds=LEASE.total_seconds() / 2 + 1)

    app.delivery.take(kept)
    await slack.wait_for("chat.postMessage")
    await until(lambda: _done(sqlite_db))
    item = await card_item(sqlite_db)
    assert item.attempts == 1  # the lease was extended, not a second attempt begun


async def test_an_item_another_worker_leased_meanwhile_is_left_to_it(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    kept: list[OutboxRow] = []
    dropping_takers(app, kept)
    await intake(app)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    # The lease ran out and another replica's poll took the item.
    async with sqlite_db.transaction() as session:
        await session.execute(update(OutboxRow).values(next_attempt_at=clock() + LEASE, attempts=2))

    app.delivery.take(kept)
    await asyncio.sleep(0.5)
    assert slack.calls_to("chat.postMessage") == []
    item = await card_item(sqlite_db)
    assert item.done_at is None and item.attempts == 2


async def test_without_a_running_worker_items_are_committed_due_for_a_poll(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None and not app.delivery.running
    await intake(app)
    item = await card_item(sqlite_db)
    assert item.next_attempt_at == clock() and item.attempts == 0
    assert await app.delivery.deliver_due() == 1
    await slack.wait_for("chat.postMessage")


async def _done(db: Database) -> bool:
    return (await card_item(db)).done_at is not None


def all_statements(db: Database) -> list[str]:
    """Every statement sent from now on, as its verb and table."""
    seen: list[str] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        table = next((w for w in words[1:4] if w.lower() in TABLES), "?")
        seen.append(f"{words[0].upper()} {table.lower()}")

    return seen


TABLES = {"outbox", "offers", "leads", "decisions"}


async def test_a_new_offers_card_goes_out_without_reading_back_what_intake_wrote(
    app: App, http: TestClient, slack: FakeSlack, sqlite_db: Database
) -> None:
    await intake(app, "L-0")  # the delivery's first poll and start-up are behind us
    await slack.wait_for("chat.postMessage")
    await until(lambda: _all_done(sqlite_db))

    await intake(app, "L-1")
    statements = all_statements(sqlite_db)
    await slack.wait_for("chat.postMessage", count=2)
    await until(lambda: _all_done(sqlite_db))
    # Nothing read: the item ends, with the card's ts stored, in one transaction.
    assert sorted(statements) == ["UPDATE offers", "UPDATE outbox"]


async def test_a_remembered_card_is_the_card_read_back_from_the_database(
    app: App, slack: FakeSlack, sqlite_db: Database
) -> None:
    made: list[NewOffer] = []
    app.service.on_new_offers = made.extend
    await app.service.intake(
        parse_lead(
            {
                "id": "L-9",
                "company": "Acme Corp",
                "first_name": "Jo",
                "title": "CTO",
                "employees": 450,
                "country": "DE",
                "source": "demo_request",
                "score": 87.5,
            }
        )
    )
    (offer,) = made
    app.reader.remember_new_offers(made)
    remembered = await app.reader.new_offer_card(offer.offer_id)
    assert remembered == await app.reader.offer_card(offer.offer_id)


async def test_a_remembered_card_that_waited_is_read_back_as_it_stands(
    app: App, slack: FakeSlack, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[NewOffer] = []
    app.service.on_new_offers = made.extend
    await intake(app)
    (offer,) = made
    app.reader.remember_new_offers(made)
    await app.service.claim("L-1", by="ann")
    monkeypatch.setattr("bot.reading.NEW_OFFER_FRESH_S", 0.0)
    card = await app.reader.new_offer_card(offer.offer_id)
    assert card is not None and card.status == "claimed"


async def _all_done(db: Database) -> bool:
    async with db.reading() as session:
        rows = (await session.execute(select(OutboxRow))).scalars().all()
    return all(row.done_at is not None for row in rows)


async def test_a_burst_handed_over_waits_in_a_queue_and_each_card_goes_out_once(
    app: App, slack: FakeSlack, sqlite_db: Database
) -> None:
    assert app.delivery is not None
    kept: list[OutboxRow] = []
    dropping_takers(app, kept)
    for n in range(4):  # one rep, one DM: posts are paced a second apart
        await intake(app, f"L-{n}")
    app.delivery.concurrency = 2

    app.delivery.take(kept)
    assert len(app.delivery._takers) == 2  # two carriers for four items, not a task apiece
    posts = await slack.wait_for("chat.postMessage", count=4, timeout=10)
    await until(lambda: _all_done(sqlite_db))
    values = [
        element["value"]
        for post in posts
        for block in post.params["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "claim_lead"
    ]
    # Begun in order, two at a time: the two under way race for the DM's next slot.
    assert sorted(values) == [f"L-{n}" for n in range(4)]


@dataclass(kw_only=True)
class BuggyWorker(OutboxWorker):
    """Carries out card items by failing in a way no `failure` rule knows (a bug)."""

    kinds: tuple[str, ...] = ("slack.offer_card",)
    closed: list[int] = field(default_factory=list)

    async def carry_out(self, item: OutboxRow) -> None:
        raise KeyError("ts")

    async def finished(
        self, session: AsyncSession, item: OutboxRow, *, error: str | None, gave_up: bool
    ) -> None:
        assert item.id is not None
        self.closed.append(item.id)


async def test_a_bug_while_carrying_out_still_closes_the_attempt_and_retries_a_lease_later(
    app: App, sqlite_db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await intake(app)
    worker = BuggyWorker(db=sqlite_db, clock=clock)
    assert await worker.deliver_due() == 1
    item = await card_item(sqlite_db)
    assert worker.closed == [item.id]  # what the attempt did is recorded (a card's ts, say)
    assert item.done_at is None and item.failed_at is None
    assert item.last_error == "failed unexpectedly (KeyError); see the log"
    assert item.next_attempt_at >= clock() + LEASE
    assert "failed unexpectedly" in caplog.text
