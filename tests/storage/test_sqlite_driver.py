"""The SQLite driver: each statement in one trip to aiosqlite's thread, a write transaction that
holds the lock in none, with the answers a DBAPI cursor gives (rows, rowcount, lastrowid,
errors), and bulk inserts in one statement."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from storage import repository as repo
from storage.db import CHECKPOINT_WAL_BYTES, Database, open_database
from storage.models import AuditEventRow, LeadRow
from storage.sqlite_driver import INLINE_MAX_ROWS
from tests.sqlite_trace import opening, sqlite_statements
from tests.storage.support import NOW, another_writer, queued_lead


def _first_words(statements: list[str]) -> list[str]:
    return [opening(statement, 1) for statement in statements]


async def test_a_query_in_a_read_transaction_takes_one_trip_to_the_database_thread(
    db: Database, trips: list[str]
) -> None:
    async with db.reading() as session:
        await session.execute(text("SELECT 0"))  # the transaction's BEGIN goes first
        trips.clear()
        result = await session.execute(text("SELECT 1 UNION ALL SELECT 2"))
        assert trips == ["_run"]
        assert [row[0] for row in result] == [1, 2]


async def test_a_write_transaction_makes_no_trip_while_nobody_else_writes(
    db: Database, trips: list[str]
) -> None:
    statements = sqlite_statements(db)
    async with db.transaction() as session:
        await repo.insert_leads(session=session, rows=[queued_lead("a"), queued_lead("b")])
        count = await session.execute(text("SELECT count(*) FROM leads"))
        assert count.scalar_one() == 2
    # BEGIN IMMEDIATE took the lock at once, on the event loop's thread, with everything after
    # it (a lead an INSERT, see `storage.direct`); the pool's rollback-on-return after a commit
    # has nothing to end.
    assert _first_words(statements) == ["BEGIN", "INSERT", "INSERT", "SELECT", "COMMIT"]
    assert trips == []


async def test_a_begin_that_must_wait_for_another_writer_waits_on_the_database_thread(
    db: Database, trips: list[str], tmp_path: Path
) -> None:
    async with (
        another_writer(tmp_path / "storage.db", for_s=0.3) as ticks,
        db.transaction() as session,
    ):
        await repo.insert_leads(session=session, rows=[queued_lead("waited")])
    assert trips == ["_begin_waiting"]  # the BEGIN went to wait; nothing else made a trip
    assert ticks.count >= 10  # and the event loop went on meanwhile
    async with db.reading() as session:
        stored = await session.execute(text("SELECT external_id FROM leads"))
        assert stored.scalars().all() == ["waited"]


async def test_the_write_lock_is_held_from_the_first_statement(
    db: Database, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "storage.db", timeout=0, isolation_level=None)
    try:
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))  # a read: the BEGIN IMMEDIATE went with it
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once committed
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_transaction_that_ran_nothing_makes_no_trip(db: Database, trips: list[str]) -> None:
    async with db.transaction():
        pass
    assert trips == []


async def test_a_transaction_cut_short_is_rolled_back_before_its_connection_is_reused(
    db: Database,
) -> None:
    async def cut_short() -> None:
        async with db.transaction() as session:
            await repo.insert_leads(session=session, rows=[queued_lead("half")])
            raise RuntimeError("cut short")

    with pytest.raises(RuntimeError):
        await cut_short()
    async with db.transaction() as session:
        count = await session.execute(text("SELECT count(*) FROM leads"))
        assert count.scalar_one() == 0


async def test_an_update_reports_how_many_rows_it_changed(db: Database) -> None:
    async with db.transaction() as session:
        await repo.insert_leads(
            session=session, rows=[queued_lead("a"), queued_lead("b"), queued_lead("c")]
        )
        changed = await session.execute(
            text("UPDATE leads SET status = 'claimed' WHERE external_id IN ('a', 'b')")
        )
        untouched = await session.execute(
            text("UPDATE leads SET status = 'claimed' WHERE external_id = 'nobody'")
        )
    assert changed.rowcount == 2  # type: ignore[attr-defined]
    assert untouched.rowcount == 0  # type: ignore[attr-defined]


async def test_an_insert_reports_the_row_id_it_made(db: Database) -> None:
    async with db.transaction() as session:
        row = LeadRow(**queued_lead("orm"))
        session.add(row)
        await session.flush()
        stored = await session.execute(text("SELECT id FROM leads WHERE external_id = 'orm'"))
    assert row.id == stored.scalar_one()


async def test_a_failed_statement_raises_the_drivers_error_and_the_connection_goes_on(
    db: Database,
) -> None:
    async def insert_twice() -> None:
        async with db.transaction() as session:
            await repo.insert_leads(session=session, rows=[queued_lead("twice")])
            await repo.insert_leads(session=session, rows=[queued_lead("twice")])

    async def read_nothing() -> None:
        async with db.transaction() as session:
            await session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(IntegrityError):
        await insert_twice()
    with pytest.raises(OperationalError):
        await read_nothing()
    async with db.transaction() as session:
        count = await session.execute(text("SELECT count(*) FROM leads"))
        assert count.scalar_one() == 0  # the first transaction rolled back whole


async def test_leads_with_different_missing_values_go_in_in_one_statement(db: Database) -> None:
    rows = [
        queued_lead("a", rep_id="ann", team="trio", status="offered"),
        queued_lead("b", queue="unmatched"),
        queued_lead("c", rule="Junk", status="nurture", email="c@example.com"),
        *(queued_lead(f"bulk-{n}", company=f"Company {n}" if n % 2 else None) for n in range(200)),
    ]
    statements = sqlite_statements(db)
    async with db.transaction() as session:
        ids = await repo.insert_leads(session=session, rows=rows)
        stored = dict((await session.execute(text("SELECT external_id, id FROM leads"))).all())
    assert _first_words(statements).count("INSERT") == 1
    assert ids == stored
    assert len(ids) == len(rows)


async def test_rows_nobody_reads_back_go_in_without_a_trip(db: Database, trips: list[str]) -> None:
    async with db.transaction() as session:
        ids = await repo.insert_leads(session=session, rows=[queued_lead("a"), queued_lead("b")])
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
    async with db.transaction() as session:
        await repo.insert_rows(session=session, table=AuditEventRow, rows=audits)
        actors = (
            (await session.execute(text("SELECT actor FROM audit_events ORDER BY id")))
            .scalars()
            .all()
        )
    assert _first_words(statements).count("INSERT") == 2  # one executemany, a step per row
    assert trips == []
    assert actors == [None, "ann"]


async def test_offers_come_back_by_lead_and_two_for_one_lead_are_refused(db: Database) -> None:
    async with db.transaction() as session:
        ids = await repo.insert_leads(session=session, rows=[queued_lead("a"), queued_lead("b")])
        offer = {
            "rep_id": "ann",
            "team": "trio",
            "status": "offered",
            "offered_at": NOW,
            "sla_due_at": NOW,
            "reassignments": 0,
        }
        offers = await repo.insert_offers(
            session=session,
            rows=[{**offer, "lead_id": ids["b"]}, {**offer, "lead_id": ids["a"]}],
        )
        stored = dict((await session.execute(text("SELECT lead_id, id FROM offers"))).all())
        with pytest.raises(ValueError, match="at most one offer per lead"):
            await repo.insert_offers(
                session=session,
                rows=[{**offer, "lead_id": ids["a"]}, {**offer, "lead_id": ids["a"]}],
            )
    assert offers == stored
    assert set(offers) == {ids["a"], ids["b"]}


async def test_a_new_database_file_is_put_in_wal_mode_and_an_old_one_left_in_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fresh.db"
    for _ in range(2):  # the second engine finds the file already in WAL mode
        database = open_database(f"sqlite+aiosqlite:///{path}")
        async with database.transaction() as session:
            mode = (await session.execute(text("PRAGMA journal_mode"))).scalar_one()
        await database.dispose()
        assert mode == "wal"
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


async def test_the_wal_is_checkpointed_into_the_database_file_once_it_grows_past_its_limit(
    db: Database, tmp_path: Path, trips: list[str]
) -> None:
    """The writer's connections never checkpoint (that could mean disk syncs on the event loop):
    `Database` has one run on a reading connection's thread instead."""
    payload = {"notes": "x" * 100_000}
    written = 0
    while db._checkpoint is None:  # started by the first write to find the WAL too big
        async with db.transaction() as session:
            await repo.insert_leads(
                session=session, rows=[queued_lead(f"lead-{written}", raw=payload)]
            )
        written += 1
        assert written < 100, "no checkpoint was started"
    assert (tmp_path / "storage.db-wal").stat().st_size > CHECKPOINT_WAL_BYTES
    assert written > CHECKPOINT_WAL_BYTES // 200_000  # not before it grew (a lead's ~100 KB)
    await db._checkpoint
    # `immutable=1` reads the database file alone, as if there were no WAL.
    file_only = sqlite3.connect(f"file:{tmp_path / 'storage.db'}?immutable=1", uri=True)
    try:
        assert file_only.execute("SELECT count(*) FROM leads").fetchone()[0] == written
    finally:
        file_only.close()
    # All of it copied, the next write starts the WAL over, its file cut back to the limit;
    # that COMMIT syncs the WAL's new header, so it goes to the database thread. Not the next.
    for name in ("after", "later"):
        trips.clear()
        async with db.transaction() as session:
            await repo.insert_leads(session=session, rows=[queued_lead(name)])
        assert trips == (["commit"] if name == "after" else [])
    assert (tmp_path / "storage.db-wal").stat().st_size <= CHECKPOINT_WAL_BYTES


async def test_a_reader_that_keeps_the_wal_from_starting_over_does_not_make_every_write_checkpoint(
    db: Database, tmp_path: Path
) -> None:
    payload = {"notes": "x" * 100_000}
    reader = sqlite3.connect(tmp_path / "storage.db", isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM leads").fetchone()  # holds its snapshot
        n = 0
        while db._checkpoint is None:
            async with db.transaction() as session:
                await repo.insert_leads(session=session, rows=[queued_lead(f"a-{n}", raw=payload)])
            n += 1
        first = db._checkpoint
        await first
        for m in range(5):  # ~0.5 MB more: under a quarter of the limit
            async with db.transaction() as session:
                await repo.insert_leads(session=session, rows=[queued_lead(f"b-{m}", raw=payload)])
            await asyncio.sleep(0)
        assert db._checkpoint is first  # none started again yet
        assert (tmp_path / "storage.db-wal").stat().st_size > CHECKPOINT_WAL_BYTES
    finally:
        reader.close()


async def test_bulk_work_goes_to_the_database_thread_and_its_commit_with_it(
    db: Database, trips: list[str]
) -> None:
    async with db.transaction() as session:
        await session.execute(
            text("INSERT INTO processed_requests (key, at) VALUES (:key, :at)"),
            [{"key": f"k{n}", "at": "2026-11-17"} for n in range(INLINE_MAX_ROWS + 1)],
        )
    assert trips == ["_run", "commit"]


async def test_the_wal_stays_near_its_limit_however_long_writes_go_on(
    db: Database, tmp_path: Path
) -> None:
    """Writers wait for a checkpoint under way, so the next write finds the WAL all copied and
    starts it over; with writes racing the checkpoint, it would only ever grow."""
    payload = {"notes": "x" * 30_000}
    largest = 0
    for n in range(400):  # about three times the limit, written
        async with db.transaction() as session:
            await repo.insert_leads(session=session, rows=[queued_lead(f"lead-{n}", raw=payload)])
        largest = max(largest, (tmp_path / "storage.db-wal").stat().st_size)
        await asyncio.sleep(0)  # a checkpoint under way gets its turn, as between requests
    assert largest < 1.5 * CHECKPOINT_WAL_BYTES
