"""A manager's digest tick is queued once however many replicas fire it, and each digest covers
the time since the one before."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.jobs import Job, declare_jobs
from bot.policy_file import load_policy
from bot.service.digests import queue_digest
from bot.service.errors import ServiceError
from bot.service.kinds import OutboxKind
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy, parse_policy
from storage import repository as repo
from storage.db import Database
from storage.models import OutboxRow
from tests.service.conftest import Clock
from tests.service.support import TRIO_POLICY, write_policy

MONDAY_9 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
MONDAY_9AM = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


BERLIN_DIGEST = TRIO_POLICY.replace(
    "{id: mia, name: Mia Moss}",
    '{id: mia, name: Mia Moss, timezone: Europe/Berlin, digest: "0 9 * * mon-fri"}',
)


def digest_job(policy: Policy) -> Job:
    """Mia's digest job as `serve` declares it."""
    (job,) = [job for job in declare_jobs(policy) if job.name == "digest:mia"]
    return job


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY))


async def digests(db: Database) -> list[dict[str, str]]:
    async with db.reading() as session:
        rows = await session.execute(
            select(OutboxRow)
            .where(col(OutboxRow.kind) == OutboxKind.DIGEST)
            .order_by(col(OutboxRow.id))
        )
        return [dict(row.payload) for row in rows.scalars()]


async def test_two_replicas_firing_the_same_tick_queue_one_digest(
    db: Database, policy: Policy, clock: Clock
) -> None:
    replicas = [UnitOfWork(db=db, policy=lambda: policy, clock=clock) for _ in range(2)]

    taken = await asyncio.gather(
        *(
            queue_digest(replica, "mia", due_at=MONDAY_9, runner=f"replica-{n}")
            for n, replica in enumerate(replicas)
        )
    )

    assert sorted(taken) == [False, True]
    assert len(await digests(db)) == 1


async def test_each_digest_covers_the_time_since_the_one_before(
    db: Database, policy: Policy, clock: Clock
) -> None:
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    tuesday = MONDAY_9 + timedelta(days=1)

    assert await queue_digest(uow, "mia", due_at=MONDAY_9, runner="r")
    assert await queue_digest(uow, "mia", due_at=tuesday, runner="r")

    first, second = await digests(db)
    assert first == {
        "manager": "mia",
        "since": (MONDAY_9 - timedelta(days=1)).isoformat(),
        "until": MONDAY_9.isoformat(),
    }
    assert (second["since"], second["until"]) == (MONDAY_9.isoformat(), tuesday.isoformat())


async def test_a_digest_for_someone_not_a_manager_is_refused(
    db: Database, policy: Policy, clock: Clock
) -> None:
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    with pytest.raises(ServiceError, match="no manager with id ann"):
        await queue_digest(uow, "ann", due_at=MONDAY_9, runner="r")
    assert await digests(db) == []


async def test_a_tick_that_came_while_the_app_was_stopped_is_sent_once_at_its_next_start(
    db: Database, clock: Clock
) -> None:
    policy = parse_policy(BERLIN_DIGEST)
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    tick = digest_job(policy)
    clock.now = MONDAY_9AM - timedelta(days=3)  # Friday's tick, sent on time
    assert tick.at_start
    assert await tick.call(uow)

    clock.now = MONDAY_9AM + timedelta(minutes=20)  # the app is back after a deploy across 9:00
    assert await tick.call(uow)
    clock.now = MONDAY_9AM + timedelta(minutes=45)  # a second restart that morning
    assert not await tick.call(uow)

    assert [(d["since"], d["until"]) for d in (await digests(db))[1:]] == [
        ((MONDAY_9AM - timedelta(days=3)).isoformat(), MONDAY_9AM.isoformat())
    ]


async def test_a_first_start_after_the_tick_sends_no_digest_out_of_the_blue(
    db: Database, clock: Clock
) -> None:
    policy = parse_policy(BERLIN_DIGEST)
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    tick = digest_job(policy)
    clock.now = MONDAY_9AM + timedelta(hours=6)

    assert not await tick.call(uow)
    clock.now = MONDAY_9AM + timedelta(days=1)  # the next tick, on time: the first digest
    assert await tick.call(uow)

    assert [d["until"] for d in await digests(db)] == [(MONDAY_9AM + timedelta(days=1)).isoformat()]


async def report_made_to(uow: UnitOfWork) -> datetime | None:
    """How far the routing report's stories were last brought up to date."""
    cursor = await uow.read(lambda session: repo.report_cursor(session=session))
    return None if cursor is None else cursor.watermark


async def test_a_start_after_the_weeks_first_digest_went_out_does_not_make_the_report_again(
    db: Database, clock: Clock
) -> None:
    """Each start runs every digest job at once (to catch up a missed tick): for one already
    sent, by this replica or another, there is nothing to bring the report up to date for.
    (After an upgrade that remakes every story, each manager's would remake them all again.)"""
    policy = parse_policy(BERLIN_DIGEST)
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    tick = digest_job(policy)
    clock.now = MONDAY_9AM - timedelta(days=3)
    assert await tick.call(uow)  # Friday's
    clock.now = MONDAY_9AM
    assert await tick.call(uow)  # Monday's, the week's first: the report is made to 09:00
    assert await report_made_to(uow) == MONDAY_9AM

    clock.now = MONDAY_9AM + timedelta(minutes=30)  # a restart that morning
    assert not await tick.call(uow)

    assert await report_made_to(uow) == MONDAY_9AM
