"""Databases for tests that need one of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from storage.db import Database, open_database


@asynccontextmanager
async def sqlite_database(path: Path) -> AsyncIterator[Database]:
    """A SQLite database in the file `path`, its tables made; disposed of on leaving."""
    db = open_database(f"sqlite+aiosqlite:///{path}")
    await db.create_tables()
    try:
        yield db
    finally:
        await db.dispose()
