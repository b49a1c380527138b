"""Rows for the storage tests to write, and another writer to wait for."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)


def queued_lead(external_id: str, **values: Any) -> dict[str, Any]:
    """A `leads` row for `repo.insert_leads`: a queued lead with nothing else known."""
    return {
        "external_id": external_id,
        "status": "queued",
        "rep_id": None,
        "team": None,
        "rule": None,
        "queue": None,
        "reason": "",
        "account_id": None,
        "email": None,
        "company": None,
        "crm_system": None,
        "crm_id": None,
        "source": None,
        "raw": {},
        "facts": {},
        "created_at": NOW,
        "updated_at": NOW,
        **values,
    }


@dataclass
class Ticks:
    """How often the event loop ran a task that wakes every 10 ms."""

    count: int = 0


@asynccontextmanager
async def another_writer(path: Path, *, for_s: float) -> AsyncIterator[Ticks]:
    """Another connection holds SQLite's write lock on `path` for `for_s` seconds from entry,
    while the event loop's ticks are counted (to show it went on meanwhile)."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    ticks = Ticks()

    async def tick() -> None:
        while True:
            ticks.count += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    threading.Timer(for_s, other.execute, args=("ROLLBACK",)).start()
    try:
        yield ticks
    finally:
        ticker.cancel()
        other.close()
