from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.policy_file import load_policy
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy
from storage.db import Database
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
def make_uow(policy: Policy, clock: Clock) -> Callable[[Database], UnitOfWork]:
    def make(db: Database) -> UnitOfWork:
        return UnitOfWork(db=db, policy=lambda: policy, clock=clock)

    return make
