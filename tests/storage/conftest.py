"""Fixtures shared by the storage tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database
from tests.databases import sqlite_database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite database in `tmp_path / "storage.db"`, its tables made."""
    async with sqlite_database(tmp_path / "storage.db") as database:
        yield database
