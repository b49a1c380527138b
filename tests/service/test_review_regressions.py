"""Regressions for problems a review of the service layer found, each reproduced first."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.policy_file import load_policy
from bot.service.availability import set_out_of_office
from bot.service.errors import ServiceError
from bot.service.intake import intake, intake_many
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy
from storage.db import Database, DatabaseUrlError, check_url
from storage.locks import lock_key
from tests.service.conftest import Clock
from tests.service.support import TRIO_POLICY, new_lead, write_policy


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY))


async def test_going_away_waits_for_routing_already_under_way_on_postgresql(
    postgres_url: str,
    postgres_db: Database,
    make_uow: Callable[[Database], UnitOfWork],
    clock: Clock,
) -> None:
    # A routing transaction for ann's team holds the team's scope. Were the absence to commit
    # meanwhile, that transaction could still hand the rep a lead nobody would move again.
    uow = make_uow(postgres_db)
    routing = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        transaction = routing.transaction()
        await transaction.start()
        await routing.execute("SELECT pg_advisory_xact_lock($1)", lock_key("team:trio"))
        going = asyncio.create_task(
            set_out_of_office(uow, "ann", until=clock.now + timedelta(hours=1), reason="x")
        )
        await asyncio.sleep(0.5)
        assert not going.done()
        await transaction.commit()
        assert await asyncio.wait_for(going, timeout=10) == []
    finally:
        await routing.close()


async def test_a_health_check_does_not_wait_behind_a_writer_on_sqlite(sqlite_db: Database) -> None:
    writing, done = threading.Event(), threading.Event()

    def write(session: Session) -> None:
        session.execute(text("SELECT 1"))  # the write lock is held from here
        writing.set()
        done.wait(5)

    writer = asyncio.create_task(sqlite_db.run(write))
    try:
        await asyncio.to_thread(writing.wait, 5)
        assert await asyncio.wait_for(sqlite_db.ping(), timeout=2)
    finally:
        done.set()
        await writer


async def test_leads_waiting_for_a_group_commit_are_answered_even_when_it_is_cancelled(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    waiting = [asyncio.create_task(intake(uow, new_lead(f"L-{n}"))) for n in range(4)]
    await asyncio.sleep(0)  # all four queued, the committer started
    assert uow.group_commit.committer is not None
    uow.group_commit.committer.cancel()
    results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), timeout=5)
    assert all(isinstance(r, ServiceError) or not isinstance(r, BaseException) for r in results)


async def test_a_violation_other_than_a_repeated_id_is_not_retried(
    sqlite_db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(sqlite_db)
    await sqlite_db.run(  # the card the first offer would queue
        lambda session: session.execute(
            text(
                "INSERT INTO outbox (kind, dedupe_key, payload, attempts, next_attempt_at, "
                "created_at) VALUES ('x', 'offer-card:1', '{}', 0, '2026-01-01', '2026-01-01')"
            )
        )
    )
    with pytest.raises(Exception, match="dedupe_key"):
        await intake_many(uow, [new_lead("L-1")])
    assert uow.tally.conflicts == 0


def test_a_database_url_with_a_bad_port_is_a_sentence_that_hides_the_password() -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        check_url("postgresql+asyncpg://user:s3cret@db:notaport/leads")
    assert "s3cret" not in str(caught.value)
    assert "DATABASE_URL" in str(caught.value)
