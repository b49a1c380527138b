from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.policy_file import load_policy
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy
from storage.db import Database, open_database
from tests.databases import sqlite_database

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Tuesday 17 Nov 2026, 17:15 UTC: Alice (Los Angeles) and Bob (New York) are working.
TUESDAY = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: datetime = TUESDAY) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def policy() -> Policy:
    return load_policy(EXAMPLES / "routing.yml")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    async with sqlite_database(tmp_path / "test.db") as db:
        yield db


@pytest.fixture
async def postgres_db(postgres_url: str) -> AsyncIterator[Database]:
    db = open_database(postgres_url)
    try:
        await db.create_tables()
        yield db
    finally:
        await db.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> Database:
    """The same test on each supported database, tables created.

    Looked up by name, not declared, so that a run of SQLite tests alone never starts PostgreSQL.
    """
    database: Database = request.getfixturevalue(f"{request.param}_db")
    return database


@pytest.fixture
def make_uow(policy: Policy, clock: Clock) -> Callable[[Database], UnitOfWork]:
    def make(db: Database) -> UnitOfWork:
        return UnitOfWork(db=db, policy=lambda: policy, clock=clock)

    return make
