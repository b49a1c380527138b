"""Inline transactions (`Database.lean_transaction` on SQLite): plain statements on the event
loop's thread with no ORM session, a session joined to the same transaction when one is asked
for, and a session's transaction wherever an inline one cannot be had."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from routing.distribution import TeamState
from storage import direct
from storage import repository as repo
from storage.db import Database, open_database
from storage.direct import InlineTransaction
from storage.models import AuditEventRow, LeadRow
from storage.sqlite_driver import INLINE_MAX_ROWS
from tests.sqlite_trace import opening, sqlite_statements
from tests.storage.support import NOW, another_writer, queued_lead


def _through_sqlalchemy(db: Database) -> list[str]:
    """Statements that go through SQLAlchemy's execution from now on."""
    seen: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


async def _open_both(db: Database) -> None:
    """Open the connection kept for inline transactions and one in the pool for sessions, so
    that no trip counted afterwards is one of opening a connection."""
    async with db.lean_transaction():
        pass
    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))


async def _external_ids(db: Database) -> list[str]:
    async with db.reading() as session:
        stored = await session.execute(text("SELECT external_id FROM leads ORDER BY id"))
        return list(stored.scalars().all())


async def test_a_transaction_of_plain_statements_goes_to_sqlite_alone(
    db: Database, trips: list[str]
) -> None:
    await _open_both(db)
    trips.clear()
    through_sqlalchemy = _through_sqlalchemy(db)
    for name in ("first", "second"):
        statements = sqlite_statements(db)
        async with db.lean_transaction() as tx:
            assert isinstance(tx, InlineTransaction)
            await repo.load_team_states(session=tx)
            await repo.insert_leads(session=tx, rows=[queued_lead(name)])
        assert [opening(s, 1) for s in statements] == ["BEGIN", "SELECT", "INSERT", "COMMIT"]
    assert through_sqlalchemy == []
    assert trips == []  # nothing went to the database thread
    assert await _external_ids(db) == ["first", "second"]


async def test_a_session_asked_for_works_in_the_same_transaction_and_commits_with_it(
    db: Database,
) -> None:
    async with db.lean_transaction() as tx:
        assert isinstance(tx, InlineTransaction)
        ids = await repo.insert_leads(session=tx, rows=[queued_lead("inline")])
        session = await direct.as_session(tx)
        assert await direct.as_session(tx) is session  # one per transaction
        found = (await session.execute(select(LeadRow))).scalars().all()
        assert [lead.external_id for lead in found] == ["inline"]  # it sees the inline write
        session.add(AuditEventRow(lead_id=ids["inline"], at=NOW, kind="routed", data={}))
        # An inline statement after it sees the ORM's object too: it is flushed first.
        assert await repo.find_leads(session=tx, external_ids=["inline"])
        audits = await direct.run(tx, text("SELECT count(*) FROM audit_events"))
        assert audits.rows == [(1,)]
    async with db.reading() as reading:
        count = await reading.execute(text("SELECT count(*) FROM audit_events"))
        assert count.scalar_one() == 1
    assert await _external_ids(db) == ["inline"]


async def test_a_failure_rolls_back_what_both_wrote_and_the_next_transaction_is_inline_again(
    db: Database,
) -> None:
    async def fails() -> None:
        async with db.lean_transaction() as tx:
            await repo.insert_leads(session=tx, rows=[queued_lead("inline")])
            session = await direct.as_session(tx)
            session.add(LeadRow(**queued_lead("orm")))
            await session.flush()
            raise RuntimeError("cut short")

    with pytest.raises(RuntimeError):
        await fails()
    assert await _external_ids(db) == []
    kept = db.inline_connection
    assert kept is not None and not kept.sqlite_connection.in_transaction
    async with db.lean_transaction() as tx:
        assert isinstance(tx, InlineTransaction)
        await repo.insert_leads(session=tx, rows=[queued_lead("after")])
    assert await _external_ids(db) == ["after"]


async def test_a_conflict_in_a_savepoint_rolls_the_whole_transaction_back(db: Database) -> None:
    async with db.lean_transaction() as tx:
        await repo.save_team_state(
            session=tx, team="trio", state=TeamState("ann", {}), read_version=None
        )

    async def created_twice() -> None:
        async with db.lean_transaction() as tx:
            await repo.insert_leads(session=tx, rows=[queued_lead("lost")])
            await repo.save_team_state(
                session=tx, team="trio", state=TeamState("ben", {}), read_version=None
            )

    with pytest.raises(repo.Conflict):
        await created_twice()
    assert await _external_ids(db) == []
    async with db.reading() as session:
        teams = await repo.load_team_states(session=session)
        assert teams.states["trio"] == TeamState("ann", {})


async def test_bulk_work_goes_through_the_joined_session_to_the_thread_and_its_commit_too(
    db: Database, trips: list[str]
) -> None:
    many = [queued_lead(f"bulk-{n}") for n in range(INLINE_MAX_ROWS + 1)]
    async with db.lean_transaction() as tx:
        assert isinstance(tx, InlineTransaction)
        ids = await repo.insert_leads(session=tx, rows=many)
        await repo.insert_leads(session=tx, rows=[queued_lead("one")])
    assert trips == ["_run", "commit"]  # the bulk INSERT, then COMMIT; the small one inline
    assert len(ids) == len(many)
    assert len(await _external_ids(db)) == len(many) + 1


async def test_cancelled_while_bulk_work_runs_on_the_thread_nothing_is_kept(
    db: Database,
) -> None:
    many = [queued_lead(f"bulk-{n}") for n in range(500)]
    started = asyncio.Event()

    async def bulk() -> None:
        async with db.lean_transaction() as tx:
            started.set()
            # Its first wait is for the database thread, where the INSERT goes (bulk work):
            # the cancellation below lands there.
            await repo.insert_leads(session=tx, rows=many)

    task = asyncio.create_task(bulk())
    await started.wait()
    cut_short = db.inline_connection
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with db.lean_transaction() as tx:
        assert isinstance(tx, InlineTransaction)
        await repo.insert_leads(session=tx, rows=[queued_lead("after")])
    # SQLAlchemy closed the connection the statement was cut short on (rolling it back), and
    # the next transaction opened another.
    assert db.inline_connection is not cut_short
    assert await _external_ids(db) == ["after"]


async def test_with_another_writer_holding_the_lock_it_waits_in_a_sessions_transaction(
    db: Database, tmp_path: Path, trips: list[str]
) -> None:
    await _open_both(db)
    trips.clear()
    async with (
        another_writer(tmp_path / "storage.db", for_s=0.3) as ticks,
        db.lean_transaction() as tx,
    ):
        assert isinstance(tx, AsyncSession)
        await repo.insert_leads(session=tx, rows=[queued_lead("waited")])
    assert trips == ["_begin_waiting"]  # it waited on the database thread
    assert ticks.count >= 10  # and the event loop went on meanwhile
    assert await _external_ids(db) == ["waited"]


async def test_the_first_commit_after_a_complete_checkpoint_goes_to_the_thread(
    db: Database, trips: list[str]
) -> None:
    await _open_both(db)
    async with db.lean_transaction() as tx:
        await repo.insert_leads(session=tx, rows=[queued_lead("before")])
    await db.checkpoint()  # all of the WAL copied: the next write starts it over
    for name in ("after", "later"):
        trips.clear()
        async with db.lean_transaction() as tx:
            assert isinstance(tx, AsyncSession if name == "after" else InlineTransaction)
            await repo.insert_leads(session=tx, rows=[queued_lead(name)])
        assert trips == (["commit"] if name == "after" else [])
    assert await _external_ids(db) == ["before", "after", "later"]


async def test_a_database_not_in_wal_mode_gets_sessions() -> None:
    db = open_database("sqlite+aiosqlite:///:memory:")
    try:
        await db.create_tables()
        for n in range(2):
            async with db.lean_transaction() as tx:
                assert isinstance(tx, AsyncSession)
                await repo.insert_leads(session=tx, rows=[queued_lead(f"lead-{n}")])
        assert db.inline_connection is None
    finally:
        await db.dispose()


async def test_dispose_gives_the_kept_connection_back(tmp_path: Path) -> None:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'kept.db'}")
    await db.create_tables()
    async with db.lean_transaction():
        pass
    pool = db.engine.sync_engine.pool
    assert pool.checkedout() == 1  # type: ignore[attr-defined]  # a QueuePool's count
    await db.dispose()
    assert db.inline_connection is None
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def _a_commit_that_fails(db: Database, *, joined: bool) -> None:
    """A transaction whose COMMIT fails: a foreign key checked only then (deferred) is broken."""
    async with db.lean_transaction() as tx:
        await direct.run(tx, text("PRAGMA defer_foreign_keys=ON"))
        await repo.insert_leads(session=tx, rows=[queued_lead("lost")])
        await direct.run(
            tx,
            text("INSERT INTO audit_events (lead_id, at, kind, data) VALUES (999, :at, 'x', '{}')"),
            {"at": NOW},
        )
        if joined:
            await direct.as_session(tx)


@pytest.mark.parametrize("joined", [False, True], ids=["alone", "with-a-session"])
async def test_after_a_commit_that_failed_the_next_transactions_work_sessions_and_all(
    db: Database, joined: bool
) -> None:
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        await _a_commit_that_fails(db, joined=joined)
    for name in ("after", "later"):
        async with db.lean_transaction() as tx:
            assert isinstance(tx, InlineTransaction)
            await repo.insert_leads(session=tx, rows=[queued_lead(name)])
            # A session joins it: SQLAlchemy let go of the failed transaction.
            await repo.save_team_state(
                session=tx, team=name, state=TeamState(None, {}), read_version=None
            )
    assert await _external_ids(db) == ["after", "later"]


async def test_once_a_failed_flush_rolled_the_transaction_back_no_statement_runs_outside_it(
    db: Database,
) -> None:
    async with db.lean_transaction() as tx:
        await repo.insert_leads(session=tx, rows=[queued_lead("taken")])

    async def carries_on_after_a_failed_flush() -> None:
        async with db.lean_transaction() as tx:
            session = await direct.as_session(tx)
            session.add(LeadRow(**queued_lead("taken")))  # a duplicate external id
            with pytest.raises(IntegrityError):
                await session.flush()  # the session rolls the whole transaction back
            await repo.insert_leads(session=tx, rows=[queued_lead("leaked")])

    with pytest.raises(InvalidRequestError):  # SQLAlchemy's PendingRollbackError
        await carries_on_after_a_failed_flush()
    assert await _external_ids(db) == ["taken"]


async def test_a_transaction_used_after_its_block_refuses(db: Database) -> None:
    async with db.lean_transaction() as tx:
        await repo.insert_leads(session=tx, rows=[queued_lead("inside")])
    with pytest.raises(InvalidRequestError, match="ended"):
        await repo.insert_leads(session=tx, rows=[queued_lead("outside")])
    with pytest.raises(InvalidRequestError, match="ended"):
        await direct.as_session(tx)
    assert await _external_ids(db) == ["inside"]


async def test_open_leads_counted_for_many_reps_at_once_refuse_a_count_that_moved(
    db: Database,
) -> None:
    async with db.lean_transaction() as tx:
        for rep in ("ann", "ben"):
            await repo.count_open_leads(session=tx, rep_id=rep, read_count=0, added=2, now=NOW)

    async def count_on_a_stale_read() -> None:
        async with db.lean_transaction() as tx:
            changes = [("ann", 2, 1), ("ben", 1, 1)]  # ben's count is 2, not 1
            await repo.count_open_leads_many(session=tx, changes=changes, now=NOW)

    with pytest.raises(repo.Conflict):
        await count_on_a_stale_read()
    async with db.lean_transaction() as tx:
        await repo.count_open_leads_many(
            session=tx, changes=[("ann", 2, 1), ("ben", 2, 3)], now=NOW
        )
        loads = await repo.load_rep_states(session=tx)
    assert loads.open_loads == {"ann": 3, "ben": 5}
