"""A manager's digest tick is queued once however many replicas fire it, and each digest covers
the time since the one before."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.policy_file import load_policy
from bot.service.digests import queue_digest
from bot.service.errors import ServiceError
from bot.service.kinds import OutboxKind
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy
from storage.db import Database
from storage.models import OutboxRow
from tests.service.conftest import Clock
from tests.service.support import TRIO_POLICY, write_policy

MONDAY_9 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


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
