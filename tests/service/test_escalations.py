"""The sweep's safety net for what follows a queue post or a manager's DM given up: the
managers told instead, once, even when the delivery's own escalation was lost to a crash between
the item's give-up and it. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from bot.policy_file import load_policy
from bot.service.digests import queue_digest
from bot.service.escalations import escalate
from bot.service.intake import intake
from bot.service.kinds import MANAGER_NOT_TOLD, QUEUE_POST_UNDELIVERABLE, OutboxKind
from bot.service.offers import assign
from bot.service.unit_of_work import UnitOfWork
from bot.service.views import SweepResult
from bot.service.watchdog import sweep
from routing.policy import Policy
from storage.db import Database
from storage.models import AuditEventRow, OutboxRow
from tests.service.conftest import Clock
from tests.service.support import new_lead, write_policy

POLICY = """\
reps:
  - {id: ann, name: Ann Archer}
  - {id: ben, name: Ben Baker}
managers:
  - {id: mia, name: Mia Moss}
  - {id: max, name: Max Mold}
teams:
  duo: {members: [ann, ben], distribution: round_robin, manager: mia}
rules:
  - name: Triage
    when: {source: triage}
    assign: {queue: triage, channel: CTRIAGE}
  - name: Everyone
    assign: {team: duo}
fallback: {queue: unmatched, channel: CQUEUE}
sla: {default: 10m, max_reassignments: 0}
"""
REFUSED = "Slack refused the post: is_archived"


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, POLICY))


@pytest.fixture
def uow(db: Database, policy: Policy, clock: Clock) -> UnitOfWork:
    return UnitOfWork(db=db, policy=lambda: policy, clock=clock)


async def items(db: Database, kind: str) -> list[OutboxRow]:
    async with db.reading() as session:
        found = await session.execute(
            select(OutboxRow).where(col(OutboxRow.kind) == kind).order_by(col(OutboxRow.id))
        )
        return list(found.scalars())


async def alerts_to(db: Database) -> list[tuple[str, str]]:
    """Who each manager alert goes to, and why it says they are told."""
    return [
        (str(item.payload["manager"]), str(item.payload.get("why") or ""))
        for item in await items(db, OutboxKind.MANAGER_ALERT)
    ]


async def story(db: Database, kind: str) -> list[str]:
    async with db.reading() as session:
        found = await session.execute(select(AuditEventRow).where(col(AuditEventRow.kind) == kind))
        return [event.reason or "" for event in found.scalars()]


async def give_up(db: Database, kind: str, clock: Clock, error: str = REFUSED) -> None:
    """The item's attempt ended for good and that end was committed; the process died before
    its escalation (`after_end`) ran."""
    async with db.sessions.begin() as session:
        await session.execute(
            update(OutboxRow)
            .where(col(OutboxRow.kind) == kind, col(OutboxRow.done_at).is_(None))
            .values(failed_at=clock.now, last_error=error, lease_token=None)
        )


async def test_a_queue_post_given_up_whose_escalation_was_lost_is_told_to_managers_by_the_sweep(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    await intake(uow, new_lead("L-1", source="triage"))
    await give_up(db, OutboxKind.QUEUE_POST, clock)
    # The delivery's own escalation may still be on its way: left to it for a while.
    assert await sweep(uow) == SweepResult()
    assert await alerts_to(db) == []

    clock.advance(minutes=1, seconds=1)
    assert await sweep(uow) == SweepResult(escalated=1)

    # A lead of no team: every manager hears of it, with why, once.
    told = await alerts_to(db)
    assert [manager for manager, _ in told] == ["max", "mia"]
    assert all("could not be posted in the triage queue's channel" in why for _, why in told)
    assert all("is_archived" in why for _, why in told)
    (said,) = await story(db, QUEUE_POST_UNDELIVERABLE)
    assert said.endswith("told Max Mold, Mia Moss")

    clock.advance(minutes=5)
    assert await sweep(uow) == SweepResult()  # a second sweep tells nobody
    assert len(await alerts_to(db)) == 2
    assert len(await story(db, QUEUE_POST_UNDELIVERABLE)) == 1


async def test_a_managers_alert_given_up_whose_escalation_was_lost_goes_to_the_others_by_the_sweep(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    await intake(uow, new_lead("L-1"))
    clock.advance(minutes=10, seconds=1)
    assert (await sweep(uow)).queued == 1  # nobody claimed it: queued, duo's manager alerted
    assert await alerts_to(db) == [("mia", "")]
    await give_up(db, OutboxKind.MANAGER_ALERT, clock, "user_not_found: no such user")

    clock.advance(minutes=1, seconds=1)
    assert await sweep(uow) == SweepResult(escalated=1)

    told = await alerts_to(db)
    assert [manager for manager, _ in told] == ["mia", "max"]
    assert "Mia Moss could not be told of this lead in Slack" in told[1][1]
    (said,) = await story(db, MANAGER_NOT_TOLD)
    assert said.startswith("Mia Moss: user_not_found") and said.endswith("told Max Mold instead")
    clock.advance(minutes=5)
    assert await sweep(uow) == SweepResult()
    assert len(await alerts_to(db)) == 2


async def test_a_lead_that_left_the_queue_before_the_sweep_is_told_to_nobody(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    await intake(uow, new_lead("L-1", source="triage"))
    await intake(uow, new_lead("L-2", source="triage"))
    await give_up(db, OutboxKind.QUEUE_POST, clock)
    await assign(uow, "L-1", rep_id="ann", by="mia")  # out of the queue: nothing to tell

    clock.advance(minutes=1, seconds=1)
    assert await sweep(uow) == SweepResult(escalated=2)
    clock.advance(minutes=1)
    assert await sweep(uow) == SweepResult()  # both done with, not looked at again

    (_, still_queued) = await items(db, OutboxKind.QUEUE_POST)
    alerts = await items(db, OutboxKind.MANAGER_ALERT)
    assert {alert.payload["lead_id"] for alert in alerts} == {still_queued.payload["lead_id"]}
    assert len(alerts) == 2 and len(await story(db, QUEUE_POST_UNDELIVERABLE)) == 1


async def test_a_late_delivery_and_the_sweep_do_not_both_tell_the_managers(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    await intake(uow, new_lead("L-1", source="triage"))
    await give_up(db, OutboxKind.QUEUE_POST, clock)
    clock.advance(minutes=1, seconds=1)
    assert await sweep(uow) == SweepResult(escalated=1)

    # The delivery's own escalation, late (a process that froze after the give-up).
    (post,) = await items(db, OutboxKind.QUEUE_POST)
    assert await escalate(uow, post, post.last_error or "") is None

    assert len(await alerts_to(db)) == 2
    assert len(await story(db, QUEUE_POST_UNDELIVERABLE)) == 1


async def test_two_replicas_sweeping_at_once_tell_the_managers_once(
    db: Database, replica_db: Database, uow: UnitOfWork, policy: Policy, clock: Clock
) -> None:
    other = UnitOfWork(db=replica_db, policy=lambda: policy, clock=clock)
    for number in range(3):
        await intake(uow, new_lead(f"L-{number}", source="triage"))
    await give_up(db, OutboxKind.QUEUE_POST, clock)
    clock.advance(minutes=1, seconds=1)

    results = await asyncio.gather(sweep(uow), sweep(other))

    assert sum(result.escalated for result in results) == 3
    assert len(await alerts_to(db)) == 6  # two managers, three leads
    assert len(await story(db, QUEUE_POST_UNDELIVERABLE)) == 3


async def test_an_item_that_fails_to_escalate_is_logged_and_left_for_the_next_sweep(
    db: Database, uow: UnitOfWork, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await intake(uow, new_lead("L-1", source="triage"))
    await intake(uow, new_lead("L-2", source="triage"))
    await give_up(db, OutboxKind.QUEUE_POST, clock)
    # L-1's lead is gone from its item (a payload no version of the bot wrote, say).
    first, _ = await items(db, OutboxKind.QUEUE_POST)
    async with db.sessions.begin() as session:
        await session.execute(
            update(OutboxRow).where(col(OutboxRow.id) == first.id).values(payload={})
        )
    clock.advance(minutes=1, seconds=1)

    with caplog.at_level(logging.ERROR, logger="bot.service"):
        assert await sweep(uow) == SweepResult(escalated=1)  # L-2's, all the same
    (logged,) = [r for r in caplog.records if "escalating it failed" in r.getMessage()]
    assert f"item {first.id} " in logged.getMessage()
    assert len(await story(db, QUEUE_POST_UNDELIVERABLE)) == 1

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="bot.service"):
        assert await sweep(uow) == SweepResult()  # tried again, and failing again
    assert [r for r in caplog.records if "escalating it failed" in r.getMessage()]


async def test_a_digest_given_up_whose_escalation_was_lost_is_noted_to_the_others_once_a_day(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    """Mia's digest could not reach her and the process died before the others heard: the
    sweep tells Max, once; her next digest that day, lost the same way, tells him nothing new."""
    await queue_digest(uow, "mia", due_at=clock.now, runner="r1")
    await give_up(db, OutboxKind.DIGEST, clock, "user_not_found: no such user")

    clock.advance(minutes=1, seconds=1)
    assert await sweep(uow) == SweepResult(escalated=1)
    (note,) = await items(db, OutboxKind.MANAGER_UNREACHABLE)
    assert note.payload["manager"] == "max" and note.payload["missing"] == "mia"
    assert "user_not_found" in str(note.payload["why"])

    await queue_digest(uow, "mia", due_at=clock.now, runner="r1")
    await give_up(db, OutboxKind.DIGEST, clock, "user_not_found: no such user")
    clock.advance(minutes=1, seconds=1)
    assert await sweep(uow) == SweepResult(escalated=1)
    assert len(await items(db, OutboxKind.MANAGER_UNREACHABLE)) == 1
    clock.advance(minutes=5)
    assert await sweep(uow) == SweepResult()


async def unmark(db: Database, kind: str) -> None:
    """What a replica of a release before 0017 leaves: the item given up and its managers told
    as it ended, and no mark that they were (that release knew of none)."""
    async with db.sessions.begin() as session:
        await session.execute(
            update(OutboxRow).where(col(OutboxRow.kind) == kind).values(escalated_at=None)
        )


@pytest.mark.parametrize("kind", [OutboxKind.QUEUE_POST, OutboxKind.MANAGER_ALERT])
async def test_an_item_a_replica_not_yet_upgraded_escalated_is_marked_by_the_sweep_not_told_again(
    db: Database, uow: UnitOfWork, clock: Clock, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """During an upgrade past 0017, a replica still on the release before gives up a queue post
    (or a manager's alert) and tells the managers itself, marking nothing. The upgraded
    replicas' sweep finds the item unmarked: it finds its alerts queued and marks it done,
    telling nobody twice, writing the lead's story once, and failing on no sweep."""
    if kind == OutboxKind.QUEUE_POST:
        await intake(uow, new_lead("L-1", source="triage"))
    else:
        await intake(uow, new_lead("L-1"))
        clock.advance(minutes=10, seconds=1)
        assert (await sweep(uow)).queued == 1  # queued, duo's manager alerted
    await give_up(db, kind, clock)
    (item,) = [item for item in await items(db, kind) if item.failed_at is not None]
    assert await escalate(uow, item, REFUSED) == (2 if kind == OutboxKind.QUEUE_POST else 1)
    await unmark(db, kind)
    alerts = await alerts_to(db)
    said = QUEUE_POST_UNDELIVERABLE if kind == OutboxKind.QUEUE_POST else MANAGER_NOT_TOLD

    clock.advance(minutes=1, seconds=1)
    with caplog.at_level(logging.ERROR, logger="bot.service"):
        assert await sweep(uow) == SweepResult()
        clock.advance(minutes=1)
        assert await sweep(uow) == SweepResult()

    assert [r for r in caplog.records if "escalating it failed" in r.getMessage()] == []
    assert await alerts_to(db) == alerts
    assert len(await story(db, said)) == 1
    (item,) = [item for item in await items(db, kind) if item.failed_at is not None]
    assert item.escalated_at is not None
