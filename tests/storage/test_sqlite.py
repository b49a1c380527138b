"""SQLite's write transactions: `Database.run` on the writer's thread and `Database.transaction`
through aiosqlite, each from BEGIN IMMEDIATE to COMMIT, waiting for another writer without
holding up the event loop, with the answers a DBAPI cursor gives (rows, rowcount, lastrowid,
errors), bulk inserts in one statement, and the WAL kept near its size."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from storage import repository as repo
from storage.db import WAL_LIMIT_BYTES, Database, open_database
from storage.models import AuditEventRow, LeadRow
from tests.sqlite_trace import opening, sqlite_statements
from tests.storage.support import NOW, another_writer, queued_lead

Way = Callable[[Database, Callable[[Session], Any]], Awaitable[Any]]


async def _on_the_writers_thread(db: Database, work: Callable[[Session], Any]) -> Any:
    return await db.run(work)


async def _quick(db: Database, work: Callable[[Session], Any]) -> Any:
    return await db.run(work, quick=True)


@pytest.fixture(params=[_on_the_writers_thread, _quick], ids=["thread", "quick"])
def way(request: pytest.FixtureRequest) -> Way:
    """Either kind of write transaction, given the same synchronous work."""
    return request.param  # type: ignore[no-any-return]


def _first_words(statements: list[str]) -> list[str]:
    return [opening(statement, 1) for statement in statements]


def _leads(session: Session) -> list[str]:
    return list(session.execute(text("SELECT external_id FROM leads ORDER BY id")).scalars())


@pytest.mark.parametrize(("quick", "where"), [(False, "sqlite-writer_0"), (True, "MainThread")])
async def test_a_write_transaction_runs_from_begin_immediate_to_commit_where_it_belongs(
    db: Database, quick: bool, where: str
) -> None:
    """On the writer's thread; a quick one on the event loop's, nobody else holding the lock."""
    statements = sqlite_statements(db)
    threads: set[str] = set()

    def work(session: Session) -> int:
        threads.add(threading.current_thread().name)
        repo.insert_leads(session=session, rows=[queued_lead("a"), queued_lead("b")])
        return int(session.execute(text("SELECT count(*) FROM leads")).scalar_one())

    assert await db.run(work, quick=quick) == 2
    assert _first_words(statements) == ["BEGIN", "INSERT", "SELECT", "COMMIT"]
    assert statements[0] == "BEGIN IMMEDIATE"
    assert threads == {where}


async def test_a_quick_write_finding_the_lock_held_elsewhere_waits_on_the_writers_thread(
    db: Database, tmp_path: Path
) -> None:
    threads: list[str] = []

    def work(session: Session) -> None:
        threads.append(threading.current_thread().name)
        repo.insert_leads(session=session, rows=[queued_lead(f"lead-{len(threads)}")])

    async with another_writer(tmp_path / "storage.db", for_s=0.3) as ticks:
        await db.run(work, quick=True)
    assert threads == ["sqlite-writer_0"]  # its BEGIN was refused at once, and nothing ran
    assert ticks.count >= 10  # the event loop went on while the BEGIN waited
    await db.run(work, quick=True)  # and the next quick one is back on the event loop's
    assert threads == ["sqlite-writer_0", "MainThread"]


async def test_a_write_that_must_wait_for_another_writer_lets_the_event_loop_go_on(
    db: Database, tmp_path: Path, way: Way
) -> None:
    async with another_writer(tmp_path / "storage.db", for_s=0.3) as ticks:
        await way(db, lambda session: repo.insert_leads(session=session, rows=[queued_lead("w")]))
    assert ticks.count >= 10  # the event loop went on while the BEGIN waited
    assert await db.run(_leads) == ["w"]


async def test_the_write_lock_is_held_from_the_first_statement(
    db: Database, tmp_path: Path, way: Way
) -> None:
    other = sqlite3.connect(
        tmp_path / "storage.db", timeout=0, isolation_level=None, check_same_thread=False
    )

    def work(session: Session) -> None:
        session.execute(text("SELECT 1"))  # a read: BEGIN IMMEDIATE went before it
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")

    try:
        await way(db, work)
        other.execute("BEGIN IMMEDIATE")  # free again once committed
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_transaction_cut_short_is_rolled_back_before_its_connection_is_reused(
    db: Database, way: Way
) -> None:
    def cut_short(session: Session) -> None:
        repo.insert_leads(session=session, rows=[queued_lead("half")])
        raise RuntimeError("cut short")

    with pytest.raises(RuntimeError):
        await way(db, cut_short)
    assert await way(db, _leads) == []


async def test_a_caller_cancelled_meanwhile_leaves_the_transaction_to_end_before_the_next(
    db: Database,
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(session: Session) -> None:
        repo.insert_leads(session=session, rows=[queued_lead("slow")])
        started.set()
        release.wait(5)

    caller = asyncio.create_task(db.run(slow))
    await asyncio.to_thread(started.wait, 5)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    following = asyncio.create_task(db.run(_leads))
    await asyncio.sleep(0.05)
    assert not following.done()  # the writer's lock is still the cancelled caller's
    release.set()
    assert await following == ["slow"]  # committed on its own, then the next one ran


async def test_an_update_reports_how_many_rows_it_changed(db: Database, way: Way) -> None:
    def work(session: Session) -> tuple[int, int]:
        repo.insert_leads(
            session=session, rows=[queued_lead("a"), queued_lead("b"), queued_lead("c")]
        )
        changed = session.execute(
            text("UPDATE leads SET status = 'claimed' WHERE external_id IN ('a', 'b')")
        )
        untouched = session.execute(
            text("UPDATE leads SET status = 'claimed' WHERE external_id = 'nobody'")
        )
        return changed.rowcount, untouched.rowcount  # type: ignore[attr-defined]

    assert await way(db, work) == (2, 0)


async def test_an_insert_reports_the_row_id_it_made(db: Database, way: Way) -> None:
    def work(session: Session) -> tuple[int | None, int]:
        row = LeadRow(**queued_lead("orm"))
        session.add(row)
        session.flush()
        stored = session.execute(text("SELECT id FROM leads WHERE external_id = 'orm'"))
        return row.id, stored.scalar_one()

    made, stored = await way(db, work)
    assert made == stored


async def test_a_failed_statement_raises_the_drivers_error_and_the_connection_goes_on(
    db: Database, way: Way
) -> None:
    def insert_twice(session: Session) -> None:
        repo.insert_leads(session=session, rows=[queued_lead("twice")])
        repo.insert_leads(session=session, rows=[queued_lead("twice")])

    def read_nothing(session: Session) -> None:
        session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(IntegrityError):
        await way(db, insert_twice)
    with pytest.raises(OperationalError):
        await way(db, read_nothing)
    assert await way(db, _leads) == []  # the first transaction rolled back whole


async def test_after_a_commit_that_failed_the_next_transaction_works(
    db: Database, way: Way
) -> None:
    def commit_fails(session: Session) -> None:
        session.execute(text("PRAGMA defer_foreign_keys=ON"))  # checked at COMMIT, then
        repo.insert_rows(
            session=session,
            table=AuditEventRow,
            rows=[{"lead_id": 404, "at": NOW, "kind": "x", "data": {}}],
        )

    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        await way(db, commit_fails)
    await way(db, lambda session: repo.insert_leads(session=session, rows=[queued_lead("next")]))
    assert await way(db, _leads) == ["next"]


async def test_leads_with_different_missing_values_go_in_in_one_statement(db: Database) -> None:
    rows = [
        queued_lead("a", rep_id="ann", team="trio", status="offered"),
        queued_lead("b", queue="unmatched"),
        queued_lead("c", rule="Junk", status="nurture", email="c@example.com"),
        *(queued_lead(f"bulk-{n}", company=f"Company {n}" if n % 2 else None) for n in range(200)),
    ]
    statements = sqlite_statements(db)

    def work(session: Session) -> tuple[dict[str, int], dict[str, int]]:
        ids = repo.insert_leads(session=session, rows=rows)
        stored = session.execute(text("SELECT external_id, id FROM leads")).all()
        return ids, dict(stored)

    ids, stored = await db.run(work)
    assert _first_words(statements).count("INSERT") == 1
    assert ids == stored
    assert len(ids) == len(rows)


async def test_rows_nobody_reads_back_go_in_in_one_executemany(db: Database) -> None:
    two = [queued_lead("a"), queued_lead("b")]
    ids = await db.run(lambda session: repo.insert_leads(session=session, rows=two))
    statements = sqlite_statements(db)
    audits = [
        {
            "lead_id": ids["a"],
            "at": NOW,
            "kind": "routed",
            "actor": None,
            "rule": None,
            "reason": "x",
            "data": {},
        },
        {
            "lead_id": ids["b"],
            "at": NOW,
            "kind": "claimed",
            "actor": "ann",
            "rule": "Everyone",
            "reason": "y",
            "data": {"rep": "ann"},
        },
    ]

    def work(session: Session) -> list[str | None]:
        repo.insert_rows(session=session, table=AuditEventRow, rows=audits)
        actors = session.execute(text("SELECT actor FROM audit_events ORDER BY id"))
        return list(actors.scalars())

    assert await db.run(work) == [None, "ann"]
    assert _first_words(statements).count("INSERT") == 1


async def test_offers_come_back_by_lead_and_two_for_one_lead_are_refused(db: Database) -> None:
    offer = {
        "rep_id": "ann",
        "team": "trio",
        "status": "offered",
        "offered_at": NOW,
        "sla_due_at": NOW,
        "reassignments": 0,
    }

    def work(session: Session) -> tuple[dict[str, int], dict[int, int], dict[int, int]]:
        ids = repo.insert_leads(session=session, rows=[queued_lead("a"), queued_lead("b")])
        offers = repo.insert_offers(
            session=session,
            rows=[{**offer, "lead_id": ids["b"]}, {**offer, "lead_id": ids["a"]}],
        )
        stored = dict(session.execute(text("SELECT lead_id, id FROM offers")).all())
        with pytest.raises(ValueError, match="at most one offer per lead"):
            repo.insert_offers(
                session=session,
                rows=[{**offer, "lead_id": ids["a"]}, {**offer, "lead_id": ids["a"]}],
            )
        return ids, offers, stored

    ids, offers, stored = await db.run(work)
    assert offers == stored
    assert set(offers) == {ids["a"], ids["b"]}


async def test_a_new_database_file_is_put_in_wal_mode_and_an_old_one_left_in_it(
    tmp_path: Path, way: Way
) -> None:
    path = tmp_path / "fresh.db"
    for _ in range(2):  # the second engine finds the file already in WAL mode
        database = open_database(f"sqlite+aiosqlite:///{path}")
        try:
            mode = await way(
                database, lambda session: session.execute(text("PRAGMA journal_mode")).scalar()
            )
        finally:
            await database.dispose()
        assert mode == "wal"
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


async def test_the_wal_stays_near_its_limit_however_long_writes_go_on(
    db: Database, tmp_path: Path
) -> None:
    """SQLite copies the WAL into the database file as it passes 1,000 pages, within the COMMIT
    that took it there; the next write starts it over, and the file is cut back to the limit."""
    payload = {"notes": "x" * 30_000}
    largest = 0
    for n in range(400):  # about three times the limit, written
        await db.run(
            lambda session, n=n: repo.insert_leads(
                session=session, rows=[queued_lead(f"lead-{n}", raw=payload)]
            )
        )
        largest = max(largest, (tmp_path / "storage.db-wal").stat().st_size)
    assert largest < 1.5 * WAL_LIMIT_BYTES
