"""How SQLite runs the sweep's look-up of leads left with a rep out of office: led by the reps
away, each one's open offers found by their index, never by reading every open offer (the sweep
runs every minute, on tables of hundreds of thousands of offers)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from storage import repository as repo
from storage.db import Database

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _plan(path: Path, sql: str, params: Any) -> list[str]:
    raw = sqlite3.connect(path)
    try:
        return [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    finally:
        raw.close()


async def test_offers_of_absent_reps_are_found_through_the_reps_away_not_every_open_offer(
    db: Database, tmp_path: Path
) -> None:
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, sql: str, params: Any, *_rest: Any) -> None:
        if "FROM offers" in sql:
            sent.append((sql, params))

    for engine in db.sync_engines:
        event.listen(engine, "before_cursor_execute", seen)
    found = await db.run(
        lambda session: repo.offers_of_absent_reps(
            session=session, marked_before=NOW - timedelta(minutes=1), now=NOW, limit=500
        ),
        quick=True,
    )

    assert found == []
    ((sql, params),) = sent
    plan = _plan(tmp_path / "storage.db", sql, params)
    assert any("ix_offers_rep_status" in step for step in plan), plan
    assert not any(step.startswith("SEARCH offers USING INDEX ix_offers_status") for step in plan)
    assert not any(step.startswith("SCAN offers") for step in plan), plan
