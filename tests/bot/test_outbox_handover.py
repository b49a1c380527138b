"""Outbox items handed over at commit: queued while a worker of their kind runs in this process,
they are committed already leased to it and carried out at once, without a poll or a lease of
their own; should the process die first, the lease runs out and a poll takes them up."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.bootstrap import App
from bot.outbox import LEASE, Attempt, OutboxWorker
from bot.service import intake as intake_use_case
from bot.service.offers import claim
from bot.service.views import NewOffer
from bot.slack.delivery import SLACK_KINDS
from routing.leads import parse_lead
from storage.db import Database
from storage.models import OfferRow, OutboxRow
from tests.bot.conftest import Clock
from tests.fakes.slack import FakeSlack
from tests.sqlite_trace import opening, sqlite_statements, writing_engines

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
    result = await intake_use_case.intake(
        app.uow, parse_lead({"id": lead_id, "company": "Acme Corp"})
    )
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


@dataclass
class DroppingTaker:
    """Takes items over for nobody (or into `kept`): the process 'dies' between commit and
    delivery, as far as these items are concerned."""

    birth_token: str
    kept: list[OutboxRow] | None = None
    in_order: bool = False

    def take(self, items: Sequence[OutboxRow]) -> None:
        if self.kept is not None:
            self.kept.extend(items)


def dropping_takers(app: App, kept: list[OutboxRow] | None = None) -> None:
    assert app.delivery is not None
    taker = DroppingTaker(app.delivery.birth_token, kept)
    app.uow.takers = lambda: dict.fromkeys(SLACK_KINDS, taker)


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
    assert item.lease_token is None  # ended cleanly: the next attempt, if any, need not look
    assert await posted_ts(sqlite_db) is not None


async def test_a_card_whose_process_died_before_carrying_it_out_is_looked_for_then_posted(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    dropping_takers(app)
    await intake(app)
    item = await card_item(sqlite_db)
    assert item.next_attempt_at == clock() + LEASE  # committed leased to the process
    assert item.attempts == 1 and item.lease_token == app.delivery.birth_token

    assert await app.delivery.deliver_due() == 0  # nobody else may take it meanwhile
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await app.delivery.deliver_due() == 1
    # The dead process might have posted it: its DM is looked through before posting again
    # (once Slack says the rep's account is active).
    assert [c.method for c in slack.calls] == [
        "users.info",
        "conversations.open",
        "conversations.history",
        "chat.postMessage",
    ]
    item = await card_item(sqlite_db)
    assert item.done_at is not None
    assert item.attempts == 2
    assert await posted_ts(sqlite_db) is not None


async def test_a_card_posted_by_a_process_that_died_before_recording_it_is_not_posted_again(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    kept: list[OutboxRow] = []
    dropping_takers(app, kept)
    await intake(app)
    # The process posted the card, and died before the transaction that records its ts.
    app.delivery.finished = _dies  # type: ignore[method-assign]
    app.delivery.take(kept)
    await slack.wait_for("chat.postMessage")
    await asyncio.sleep(0.2)
    assert await posted_ts(sqlite_db) is None
    del app.delivery.finished

    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await app.delivery.deliver_due() == 1
    ((_channel, ts),) = slack.messages
    assert await posted_ts(sqlite_db) == ts  # found in the DM's history and recorded
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert (await card_item(sqlite_db)).done_at is not None


def _dies(*_args: Any, **_kwargs: Any) -> None:
    raise ConnectionError("the process is gone")


async def test_a_lease_is_renewed_while_its_attempt_waits_for_slack(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    assert app.delivery is not None
    await posting_slowly(app, slack, seconds=1.0)
    clock.advance(seconds=LEASE.total_seconds() - 1)
    await app.delivery.renew()  # as the worker does every few seconds while it runs
    assert (await card_item(sqlite_db)).next_attempt_at == clock() + LEASE
    clock.advance(seconds=LEASE.total_seconds() - 1)  # past the first lease: still held
    assert await app.delivery.deliver_due() == 0
    await until(lambda: _done(sqlite_db))
    assert len(slack.calls_to("chat.postMessage")) == 1


async def posting_slowly(app: App, slack: FakeSlack, *, seconds: float) -> None:
    """A lead's card handed over, and its post under way to a Slack that answers after
    `seconds`."""
    assert app.delivery is not None
    kept: list[OutboxRow] = []
    dropping_takers(app, kept)
    await intake(app)
    slack.delay("chat.postMessage", seconds)
    app.delivery.take(kept)
    await until(lambda: _posting(slack))


async def _posting(slack: FakeSlack) -> bool:
    return bool(slack.calls_to("chat.postMessage"))


async def test_an_attempt_whose_item_another_worker_took_does_not_end_it_but_keeps_its_card(
    app: App, slack: FakeSlack, sqlite_db: Database, clock: Clock
) -> None:
    await posting_slowly(app, slack, seconds=0.5)
    # Meanwhile the lease ran out (a frozen process) and another replica took the item.
    await sqlite_db.run(
        lambda session: session.execute(update(OutboxRow).values(lease_token="other:1", attempts=2))
    )
    await until(lambda: _ts_recorded(sqlite_db))
    await asyncio.sleep(0.2)
    item = await card_item(sqlite_db)
    assert item.done_at is None and item.lease_token == "other:1"  # the other attempt's to end
    assert len(slack.calls_to("chat.postMessage")) == 1


async def _ts_recorded(db: Database) -> bool:
    return await posted_ts(db) is not None


async def test_a_second_copy_of_a_card_is_deleted_once_the_first_is_found_recorded(
    app: App, slack: FakeSlack, sqlite_db: Database
) -> None:
    assert app.delivery is not None
    made: list[NewOffer] = []
    app.uow.on_new_offers = made.extend
    kept: list[OutboxRow] = []
    dropping_takers(app, kept)
    await intake(app)
    app.reader.remember_new_offers(made)
    # Another attempt posted and recorded the card while this one's copy was on its way.
    await sqlite_db.run(
        lambda session: session.execute(
            update(OfferRow).values(channel="DANN", message_ts="1.000001")
        )
    )
    app.delivery.take(kept)
    await until(lambda: _deleted(slack))
    ((channel, ts),) = slack.deleted
    assert channel == "DANN" and ts != "1.000001"
    assert await posted_ts(sqlite_db) == "1.000001"


async def _deleted(slack: FakeSlack) -> bool:
    return bool(slack.deleted)


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

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        table = next((w for w in words[1:4] if w.lower() in TABLES), "?")
        seen.append(f"{words[0].upper()} {table.lower()}")

    for engine in writing_engines(db):
        event.listen(engine, "before_cursor_execute", record)

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
    # Nothing read: the item ends, with the card's ts stored and the DM's pace shared with
    # other replicas, in one transaction.
    assert sorted(statements) == ["BEGIN ?", "INSERT ?", "UPDATE offers", "UPDATE outbox"]


async def test_a_remembered_card_is_the_card_read_back_from_the_database(
    app: App, slack: FakeSlack, sqlite_db: Database
) -> None:
    made: list[NewOffer] = []
    app.uow.on_new_offers = made.extend
    await intake_use_case.intake(
        app.uow,
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
        ),
    )
    (offer,) = made
    app.reader.remember_new_offers(made)
    remembered = await app.reader.new_offer_card(offer.offer_id)
    assert remembered == await app.reader.offer_card(offer.offer_id)


async def test_a_remembered_card_that_waited_is_read_back_as_it_stands(
    app: App, slack: FakeSlack, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[NewOffer] = []
    app.uow.on_new_offers = made.extend
    await intake(app)
    (offer,) = made
    app.reader.remember_new_offers(made)
    await claim(app.uow, "L-1", by="ann")
    monkeypatch.setattr("bot.reading.NEW_OFFER_FRESH_S", 0.0)
    card = await app.reader.new_offer_card(offer.offer_id)
    assert card is not None and card.status == "claimed"


async def _all_done(db: Database) -> bool:
    async with db.reading() as session:
        rows = (await session.execute(select(OutboxRow))).scalars().all()
    return all(row.done_at is not None for row in rows)


async def test_a_burst_for_one_rep_goes_out_in_order_a_second_apart_each_card_once(
    app: App, slack: FakeSlack, sqlite_db: Database
) -> None:
    assert app.delivery is not None
    kept: list[OutboxRow] = []
    dropping_takers(app, kept)
    for n in range(4):  # one rep, one DM: one lane, paced a second apart
        await intake(app, f"L-{n}")

    app.delivery.take(kept)
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
    assert values == [f"L-{n}" for n in range(4)]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(posts)]
    assert min(gaps) >= 0.95
    assert len(slack.calls_to("chat.postMessage")) == 4


@dataclass(kw_only=True)
class BuggyWorker(OutboxWorker):
    """Carries out card items by failing in a way no `failure` rule knows (a bug)."""

    kinds: tuple[str, ...] = ("slack.offer_card",)
    closed: list[int] = field(default_factory=list)

    async def carry_out(self, attempt: Attempt) -> None:
        raise KeyError("ts")

    def finished(
        self, session: Session, attempt: Attempt, *, error: str | None, gave_up: bool
    ) -> None:
        self.closed.append(attempt.id)


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
    assert item.lease_token == "unsure"  # what the bug left undone is looked for first
    assert "failed unexpectedly" in caplog.text
