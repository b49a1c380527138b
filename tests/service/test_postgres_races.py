"""Races on PostgreSQL, replayed in a fixed order.

A transaction of our own holds a row lock; the operations under test are started, and once
PostgreSQL reports them all waiting on locks the row is let go. They then proceed in the order
they queued, every run. (SQLite runs one writer at a time: none of this can happen there.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.policy_file import load_policy
from bot.service.errors import NotAllowed
from bot.service.intake import intake
from bot.service.offers import claim, reassign, reject
from bot.service.unit_of_work import UnitOfWork
from bot.service.views import ClaimResult, Move
from routing.policy import Policy
from storage.db import Database
from storage.models import MoveReason
from tests.service.support import (
    TRIO_POLICY,
    new_lead,
    offers_of,
    open_offers_by_rep,
    stored_open_counts,
    write_policy,
)

WAIT_S = 10


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY))


@asynccontextmanager
async def row_locked(db: Database, table: str, where: str, **params: Any) -> AsyncIterator[None]:
    """Hold `SELECT ... FOR UPDATE` on the matching rows until the block ends."""
    async with db.engine.connect() as connection:
        transaction = await connection.begin()
        try:
            await connection.execute(
                text(f"SELECT 1 FROM {table} WHERE {where} FOR UPDATE"), params
            )
            yield
        finally:
            await transaction.rollback()


async def until_waiting_on_locks(db: Database, count: int) -> None:
    """Return once `count` sessions of this database wait on a lock; fail after WAIT_S."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    waiting = 0
    for _ in range(WAIT_S * 100):
        async with db.engine.connect() as connection:
            waiting = (await connection.execute(query)).scalar_one()
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{waiting} of {count} sessions came to wait on the held row")


def start(*operations: Any) -> list[asyncio.Task[Any]]:
    """The operations running. Start them once the row they are to wait on is locked: started
    before, one may get past it first (a loaded machine runs them before the lock is taken)."""
    return [asyncio.ensure_future(operation) for operation in operations]


@asynccontextmanager
async def started() -> AsyncIterator[list[asyncio.Task[Any]]]:
    """A list for the tasks a test starts, cancelled if still running when the block ends."""
    tasks: list[asyncio.Task[Any]] = []
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task


async def outcomes(tasks: list[asyncio.Task[Any]]) -> list[Any]:
    return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT_S)


async def test_a_claim_that_loses_the_race_is_shown_the_lead_as_claimed(
    postgres_db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    db, uow = postgres_db, make_uow(postgres_db)
    await intake(uow, new_lead("L-1"))
    [offer] = await offers_of(db, "L-1")

    async with started() as tasks:
        async with row_locked(db, "offers", "id = :id", id=offer.id):
            tasks += start(claim(uow, "L-1", by="ann"), claim(uow, "L-1", by="mia"))
            await until_waiting_on_locks(db, 2)  # both read the offer as open
        results = await outcomes(tasks)

    assert all(isinstance(r, ClaimResult) for r in results), results
    [loser] = [r for r in results if not r.claimed]
    assert loser.holder == "ann"
    assert (loser.lead.status, loser.lead.rep) == ("claimed", "ann"), loser.lead


async def test_a_claim_that_loses_to_a_reassignment_does_not_name_the_rep_who_lost_the_lead(
    postgres_db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    db, uow = postgres_db, make_uow(postgres_db)
    await intake(uow, new_lead("L-1"))
    [offer] = await offers_of(db, "L-1")
    assert offer.id is not None and offer.rep_id == "ann"

    async with started() as tasks:
        async with row_locked(db, "offers", "id = :id", id=offer.id):
            tasks += start(reassign(uow, offer.id, because=MoveReason.OUT_OF_OFFICE, reason="away"))
            await until_waiting_on_locks(db, 1)
            tasks += start(claim(uow, "L-1", by="mia"))
            await until_waiting_on_locks(db, 2)  # the claim queued behind the reassignment
        move, claimed = await outcomes(tasks)

    assert isinstance(move, Move) and move.to.rep in {"ben", "cat"}
    # Either refused (the offer it saw is gone), or told who holds the lead now; never "ann".
    if isinstance(claimed, ClaimResult):
        assert not claimed.claimed
        assert claimed.holder == move.to.rep, f"claim says {claimed.holder} holds it"
    else:
        assert isinstance(claimed, NotAllowed), claimed


async def test_two_reps_rejecting_at_once_each_lead_going_to_the_other_both_succeed(
    postgres_db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    db, uow = postgres_db, make_uow(postgres_db)
    for n in range(3):  # ann, ben, cat: L-0 will go to ben, L-1 to ann (next in the rotation)
        await intake(uow, new_lead(f"L-{n}"))

    rejects = (
        reject(uow, "L-0", by="ann", reason="busy"),
        reject(uow, "L-1", by="ben", reason="busy"),
    )
    async with started() as tasks:
        async with row_locked(db, "team_state", "team = 'trio'"):
            tasks += start(*rejects)
            # Both have turned their offer down and wait to save the rotation.
            await until_waiting_on_locks(db, 2)
        results = await outcomes(tasks)

    # Each holds its own rep's count and wants the rotation and the other's count: taken in
    # different orders, PostgreSQL would end one of them as a deadlock.
    assert all(isinstance(r, Move) for r in results), results
    from_ann, from_ben = results
    assert from_ann.to.rep in {"ben", "cat"} and from_ben.to.rep in {"ann", "cat"}
    assert await stored_open_counts(db) == await open_offers_by_rep(db)
