"""Decisions on PostgreSQL hold the scopes they depend on (`routing.scope`, `bot.world`): one
team's decisions wait for each other instead of being made twice, and never for another team's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from bot.service import Service
from routing.policy import load_policy
from storage.db import Database, open_database
from storage.locks import ScopeBusy, lock_key, scope_locks
from tests.service.conftest import Clock
from tests.service.support import (
    new_lead,
    offers_of,
    open_offers_by_rep,
    stored_open_counts,
    write_policy,
)

EAST_WEST = """\
reps:
  - {id: ann}
  - {id: ben}
  - {id: cat}
  - {id: dan}
teams:
  east: {members: [ann, ben], distribution: round_robin}
  west: {members: [cat, dan], distribution: round_robin}
rules:
  - name: Energy
    when: {industry: Energy}
    assign: {team: east}
  - name: Everyone else
    assign: {team: west}
"""


@asynccontextmanager
async def scope_held_elsewhere(url: str, scope: str) -> AsyncIterator[None]:
    """Another session holds `scope` (as a routing transaction of another replica would)."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute("SELECT pg_advisory_xact_lock($1)", lock_key(scope))
        yield
        await transaction.commit()
    finally:
        await connection.close()


def services_on(url: str, policy_path: Path, clock: Clock, count: int) -> list[Service]:
    """`count` services, each with a database (and connection pool) of its own: replicas."""
    policy = load_policy(policy_path)
    return [
        Service(db=open_database(url), policy=lambda: policy, clock=clock) for _ in range(count)
    ]


async def test_a_decision_for_one_team_does_not_wait_for_another_teams(
    postgres_url: str, postgres_db: Database, tmp_path: Path, clock: Clock
) -> None:
    [service] = services_on(postgres_url, write_policy(tmp_path, EAST_WEST), clock, 1)
    try:
        async with scope_held_elsewhere(postgres_url, "team:west"):
            east = await asyncio.wait_for(service.intake(new_lead("E-1", industry="Energy")), 5)
            west = asyncio.create_task(service.intake(new_lead("W-1")))
            await asyncio.sleep(0.5)
            assert not west.done(), "a west decision went ahead while west was held elsewhere"
        assert east.lead.rep == "ann"
        assert (await asyncio.wait_for(west, 10)).lead.rep == "cat"
        assert service.lock_waits == 1 and service.conflicts == 0
    finally:
        await service.db.dispose()


async def test_the_same_person_holds_their_reps_team_not_the_one_the_rules_name(
    postgres_url: str, postgres_db: Database, tmp_path: Path, clock: Clock
) -> None:
    [service] = services_on(postgres_url, write_policy(tmp_path, EAST_WEST), clock, 1)
    try:
        first = await service.intake(new_lead("E-1", industry="Energy", email="kim@power.example"))
        assert first.lead.rep == "ann"
        # Its rules name west, which is busy; the person is ann's, in east: no wait, no redo.
        async with scope_held_elsewhere(postgres_url, "team:west"):
            again = await asyncio.wait_for(
                service.intake(new_lead("W-1", email="kim@power.example")), 5
            )
        assert (again.lead.rep, again.lead.rule) == ("ann", "Same person")
        assert service.lock_waits == 0 and service.conflicts == 0
        assert service.decisions_redone == 0
    finally:
        await service.db.dispose()


async def test_replicas_deciding_for_one_team_wait_for_each_other_and_redo_nothing(
    postgres_url: str, postgres_db: Database, tmp_path: Path, clock: Clock
) -> None:
    replicas = services_on(postgres_url, write_policy(tmp_path, EAST_WEST), clock, 3)
    try:
        await asyncio.gather(
            *(
                replica.intake(new_lead(f"W-{n}-{r}"))
                for n in range(30)
                for r, replica in enumerate(replicas)
            )
        )
    finally:
        for replica in replicas:
            await replica.db.dispose()

    assert sum(r.decisions for r in replicas) == 90
    assert sum(r.decisions_redone for r in replicas) == 0
    assert sum(r.conflicts for r in replicas) == 0
    assert sum(r.lock_waits for r in replicas) > 0
    assert await open_offers_by_rep(postgres_db) == {"cat": 45, "dan": 45}
    assert await stored_open_counts(postgres_db) == {"cat": 45, "dan": 45}


async def test_a_scope_busy_below_one_held_is_not_waited_for(postgres_url: str) -> None:
    low, high = sorted(["team:east", "team:west"], key=lock_key)
    db = open_database(postgres_url)
    try:
        async with scope_held_elsewhere(postgres_url, low), db.transaction() as session:
            locks = scope_locks(session)
            assert locks is not None
            assert await locks.take({high}) == {high}
            with pytest.raises(ScopeBusy) as busy:
                await asyncio.wait_for(locks.take({low}), 2)  # waiting here could deadlock
            assert busy.value.wanted == {low, high}
            assert locks.held == {high} and locks.waits == 0
    finally:
        await db.dispose()


async def test_a_reassignment_that_finds_its_new_team_busy_starts_again_and_waits_for_it(
    postgres_url: str,
    postgres_db: Database,
    tmp_path: Path,
    clock: Clock,
    make_service: Callable[[Database], Service],
) -> None:
    # The lead's first team holds only ann; without her it falls back to the other team. Named
    # so that the fallback's lock key is the lower one: by then the first team's scope is held
    # (ann's lead was released), so the fallback's can only be tried, not waited for.
    low, high = sorted(["team:east", "team:west"], key=lock_key)
    first, fallback = high.removeprefix("team:"), low.removeprefix("team:")
    policy = write_policy(
        tmp_path,
        "reps:\n  - {id: ann}\n  - {id: cat}\n"
        f"teams:\n  {first}: {{members: [ann]}}\n  {fallback}: {{members: [cat]}}\n"
        f"rules:\n  - name: All\n    assign: {{team: {first}}}\n"
        f"    fallback: {{team: {fallback}}}\n",
    )
    [service] = services_on(postgres_url, policy, clock, 1)
    try:
        await service.intake(new_lead("L-1"))
        [offer] = await offers_of(postgres_db, "L-1")
        assert offer.rep_id == "ann" and offer.id is not None
        async with scope_held_elsewhere(postgres_url, low):
            moving = asyncio.create_task(service.reassign(offer.id, reason="rebalancing"))
            await asyncio.sleep(0.5)
            assert not moving.done()
        move = await asyncio.wait_for(moving, 10)
        assert move is not None and move.to.rep == "cat"
        # Lost once (to the busy scope, before any decision was kept), then waited.
        assert service.conflicts == 1 and service.decisions_redone == 0
        assert service.lock_waits >= 1
    finally:
        await service.db.dispose()
    assert await stored_open_counts(postgres_db) == {"cat": 1}


SHARED_REP = """\
reps:
  - {id: ann, capacity: 40}
  - {id: ben, capacity: 40}
  - {id: cat, capacity: 40}
teams:
  east: {members: [ann, ben], distribution: least_loaded}
  west: {members: [ben, cat], distribution: least_loaded}
rules:
  - name: Energy
    when: {industry: Energy}
    assign: {team: east}
  - name: Everyone else
    assign: {team: west}
"""


async def test_a_rep_in_two_teams_is_counted_right_when_both_decide_at_once(
    postgres_url: str, postgres_db: Database, tmp_path: Path, clock: Clock
) -> None:
    replicas = services_on(postgres_url, write_policy(tmp_path, SHARED_REP), clock, 3)
    try:
        results = await asyncio.gather(
            *(
                replica.intake(new_lead(f"L-{n}-{r}", industry="Energy" if n % 2 else "Retail"))
                for n in range(50)
                for r, replica in enumerate(replicas)
            )
        )
    finally:
        for replica in replicas:
            await replica.db.dispose()

    assert all(result.created for result in results)
    per_rep = await open_offers_by_rep(postgres_db)
    assert per_rep == await stored_open_counts(postgres_db)
    assert sum(per_rep.values()) == 120 and max(per_rep.values()) == 40  # 30 wait in the queue
    assert sum(r.decisions for r in replicas) == 150
