"""PostgreSQL's pooled connections: pinged only after sitting idle, so a busy process sends no
ping per transaction, and a connection cut by a server restart is still found and replaced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from storage.db import Database, DatabaseUnavailable, open_database
from tests.pg import PostgresServer

IDLE_S = 0.3


@pytest.fixture
async def database(restartable_postgres: PostgresServer) -> AsyncIterator[Database]:
    name = await restartable_postgres.create_database()
    db = open_database(restartable_postgres.url(name), pool_size=1, ping_after_idle_s=IDLE_S)
    try:
        yield db
    finally:
        await db.dispose()


def backend_pid(session: Session) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def counting_pings(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    dialect = db.engine.sync_engine.dialect
    ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


async def test_a_busy_connection_is_not_pinged_and_an_idle_one_is(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = counting_pings(database, monkeypatch)
    first = await database.run(backend_pid)
    for _ in range(20):
        assert await database.run(backend_pid) == first
    async with database.reading() as session:
        await session.execute(text("SELECT 1"))
    assert pings == []
    await asyncio.sleep(IDLE_S + 0.1)
    assert await database.run(backend_pid) == first
    assert pings == [1]


async def test_a_connection_cut_by_a_restart_is_replaced_before_use(
    database: Database, restartable_postgres: PostgresServer
) -> None:
    before = await database.run(backend_pid)
    restartable_postgres.restart()
    await asyncio.sleep(IDLE_S + 0.1)
    after = await database.run(backend_pid)
    assert after != before


async def test_within_the_window_a_cut_connection_fails_once_then_the_pool_renews(
    restartable_postgres: PostgresServer,
) -> None:
    """What is given up for no ping per transaction: the server down and back within the
    window, the next transaction fails (as the database out of reach), the one after works."""
    name = await restartable_postgres.create_database()
    db = open_database(restartable_postgres.url(name), pool_size=1, ping_after_idle_s=3600)
    try:
        before = await db.run(backend_pid)
        restartable_postgres.restart()
        with pytest.raises(DatabaseUnavailable) as failed:
            await db.run(backend_pid)
        cause = failed.value.__cause__
        assert isinstance(cause, DBAPIError) and cause.connection_invalidated
        assert await db.run(backend_pid) != before
    finally:
        await db.dispose()


async def test_one_failed_ping_replaces_every_kept_connection_without_pinging_each(
    restartable_postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart cuts every connection: after the first failed ping the pool connects afresh
    for all, so the second kept connection is not pinged (and found dead) on its own."""
    name = await restartable_postgres.create_database()
    db = open_database(restartable_postgres.url(name), pool_size=2, ping_after_idle_s=IDLE_S)
    try:
        pings = counting_pings(db, monkeypatch)
        async with db.reading() as one, db.reading() as two:  # two connections kept in the pool
            await one.execute(text("SELECT 1"))
            await two.execute(text("SELECT 1"))
        restartable_postgres.restart()
        await asyncio.sleep(IDLE_S + 0.1)
        first = await db.run(backend_pid)
        async with db.reading() as one, db.reading() as two:
            pids = {first}
            for session in (one, two):
                pids.add(int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
        assert len(pids) == 2  # both fresh connections, one of them used for `first` too
        assert pings == [1]
    finally:
        await db.dispose()
