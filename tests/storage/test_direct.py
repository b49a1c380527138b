"""`storage.direct`: the routing transaction's statements run straight on SQLite's cursor store
and answer exactly what SQLAlchemy's execution would, which they skip.

Each test does the same work twice, on two databases: once in a write transaction that holds the
lock (where the statements go direct), of either kind (a session's, or an inline transaction's
with no session unless asked for), and once in a session that does not (where they go through
`session.execute`), then compares the answers and the stored bytes."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from routing.distribution import TeamState
from routing.model import Account
from storage import direct
from storage import repository as repo
from storage.db import Database, open_database
from storage.direct import InlineTransaction, Tx
from storage.models import AuditEventRow, DecisionRow, LeadRow
from storage.sqlite_driver import INLINE_MAX_ROWS
from tests.sqlite_trace import sqlite_statements

NOW = datetime(
    2026, 11, 17, 17, 15, tzinfo=UTC
)  # no microseconds: stored as ".000000" all the same
LATER = NOW + timedelta(minutes=5, microseconds=123_456)
TABLES = ("leads", "decisions", "audit_events", "offers", "outbox", "rep_state", "team_state")

Work = Callable[[Tx], Awaitable[Any]]
Way = Callable[[Database, Work], Awaitable[Any]]  # how the direct side runs its work


@pytest.fixture
async def databases(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    opened = [open_database(f"sqlite+aiosqlite:///{tmp_path / name}") for name in ("a", "b")]
    for database in opened:
        await database.create_tables()
    yield opened[0], opened[1]
    for database in opened:
        await database.dispose()


def _executions(db: Database) -> list[str]:
    """Statements that went through SQLAlchemy's execution (direct ones do not)."""
    seen: list[str] = []
    for engine in (db.engine, db.read_engine):
        assert engine is not None
        event.listen(
            engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2])
        )
    return seen


async def _in_a_session(db: Database, work: Work) -> Any:
    """`work` in a session's write transaction that holds the lock, so its statements may go
    direct."""
    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))  # the BEGIN IMMEDIATE goes with this one
        return await work(session)


async def _inline(db: Database, work: Work) -> Any:
    """`work` in an inline transaction: no session, unless `direct.as_session` asks for one."""
    async with db.lean_transaction() as tx:
        assert isinstance(tx, InlineTransaction)
        return await work(tx)


@pytest.fixture(params=[_in_a_session, _inline], ids=["session", "inline"])
def direct_way(request: pytest.FixtureRequest) -> Way:
    way: Way = request.param
    return way


async def _through_sqlalchemy(db: Database, work: Work) -> Any:
    """`work` in a session that does not hold the write lock (BEGIN DEFERRED), then committed."""
    async with db.reading() as session:
        result = await work(session)
        await session.commit()
        return result


def _stored(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the routing tables as SQLite holds it (text, numbers, NULLs)."""
    raw = sqlite3.connect(path)
    try:
        return {
            table: raw.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in TABLES
        }
    finally:
        raw.close()


def _lead(external_id: str, **values: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "status": "offered",
        "rep_id": "ann",
        "team": "trio",
        "rule": "Everyone",
        "queue": None,
        "account_id": None,
        "email": f"{external_id}@example.com",
        "company": "Acme & Co <b>",
        "crm_system": None,
        "crm_id": None,
        "source": "webinar",
        "raw": {"name": "Ada", "tags": ["a", "b"], "score": 87.5, "nested": {"x": None}},
        "facts": {"country": "GB", "employees": 250},
        "created_at": NOW,
        "updated_at": LATER,
        **values,  # "reason" left out: its column default ('') fills it
    }


async def _write_a_routing_transaction(session: Tx) -> dict[str, Any]:
    ids = await repo.insert_leads(
        session=session, rows=[_lead("a", account_id="A1"), _lead("b", rep_id=None)]
    )
    decision = {
        "lead_id": ids["a"],
        "at": NOW,
        "outcome": "assigned",
        "rep_id": "ann",
        "team": "trio",
        "rule": "Everyone",
        "reason": "round robin",
        "sla_seconds": 900,
        "trace": [{"rule": "Everyone", "matched": True, "skipped": {"ben": "away"}}],
    }
    await repo.insert_rows(session=session, table=DecisionRow, rows=[decision])
    audit = {"lead_id": ids["a"], "at": LATER, "kind": "routed", "actor": None}
    await repo.insert_rows(
        session=session,
        table=AuditEventRow,
        rows=[{**audit, "rule": None, "reason": None, "data": {}}],
    )
    offer = {
        "rep_id": "ann",
        "team": "trio",
        "status": "offered",
        "offered_at": NOW,
        "sla_due_at": LATER,
        "sla_seconds": 900,
        "reassignments": 0,
        "remind_at": None,
    }
    offers = await repo.insert_offers(
        session=session,
        rows=[{**offer, "lead_id": ids["a"]}, {**offer, "lead_id": ids["b"]}],
    )
    outbox = await repo.insert_outbox(
        session=session,
        rows=[
            repo.outbox_values(kind="card", dedupe_key=f"card:{n}", payload={"offer": n}, now=NOW)
            for n in offers.values()
        ],
    )
    await repo.save_team_state(
        session=session, team="trio", state=TeamState("ann", {"x": 1}), read_version=None
    )
    await repo.save_team_state(
        session=session, team="trio", state=TeamState("ben", {"x": 2}), read_version=1
    )
    await repo.count_open_leads(session=session, rep_id="ann", read_count=0, added=2, now=NOW)
    await repo.count_open_leads(session=session, rep_id="ann", read_count=2, added=1, now=LATER)
    return {"leads": ids, "offers": offers, "outbox": outbox}


async def test_a_routing_transaction_written_direct_is_stored_as_sqlalchemy_stores_it(
    databases: tuple[Database, Database],
    tmp_path: Path,
    direct_way: Way,
) -> None:
    direct_db, plain_db = databases
    skipped, executed = _executions(direct_db), _executions(plain_db)

    direct = await direct_way(direct_db, _write_a_routing_transaction)
    plain = await _through_sqlalchemy(plain_db, _write_a_routing_transaction)

    assert direct == plain
    assert _stored(tmp_path / "a") == _stored(tmp_path / "b")
    # The proof the two ways differ: the direct side sent SQLAlchemy only the statements the
    # shortcut does not cover (the first SELECT, and the ORM's inserts of new state rows).
    assert not any("INSERT INTO leads" in s or "INSERT INTO outbox" in s for s in skipped)
    assert any("INSERT INTO leads" in s for s in executed)


async def _read_the_routing_state(session: Tx) -> dict[str, Any]:
    reps = await repo.load_rep_states(session=session)
    teams = await repo.load_team_states(session=session)
    candidates = await repo.candidate_accounts(
        session=session, lookups=[("acme.example", "Acme Rockets"), (None, "Globex Rockets")]
    )
    found = await repo.find_leads(session=session, external_ids=["a", "b", "nobody"])
    holders = await repo.reps_holding_accounts(session=session, account_ids=["A1", "A2"])
    return {
        "holders": holders,
        "reps": reps,
        "teams": teams,
        "accounts": sorted(candidates.accounts, key=lambda account: account.id),
        "key_sizes": candidates.key_sizes,
        "leads": {key: (row.id, row.raw, row.created_at) for key, row in found.items()},
    }


async def test_the_routing_state_read_direct_is_what_sqlalchemy_reads(
    databases: tuple[Database, Database], direct_way: Way
) -> None:
    for db in databases:
        await direct_way(db, _write_a_routing_transaction)
        async with db.transaction() as session:
            await repo.set_away(
                session=session,
                rep_id="ben",
                away=True,
                since=NOW,
                until=LATER,
                reason="holiday",
                now=NOW,
            )
            await repo.upsert_accounts(
                session=session,
                accounts=[
                    Account("A1", "Acme Rockets", "acme.example", "ann", "gold", "DE", "Bavaria"),
                    Account("A2", "Globex Rockets", None, None, None),
                    Account("A3", "Initech", "initech.example", None, None),
                ],
                now=NOW,
            )
    direct_db, plain_db = databases
    skipped = _executions(direct_db)

    direct = await direct_way(direct_db, _read_the_routing_state)
    plain = await _through_sqlalchemy(plain_db, _read_the_routing_state)

    assert direct == plain
    assert direct["reps"].out_of_office["ben"].until == LATER  # an aware datetime, to the µs
    assert direct["teams"].states["trio"] == TeamState("ben", {"x": 2})
    assert [account.id for account in direct["accounts"]] == ["A1", "A2"]
    assert (direct["accounts"][0].country, direct["accounts"][0].state) == ("DE", "Bavaria")
    assert set(direct["leads"]) == {"a", "b"}
    assert direct["holders"] == {"A1": ["ann"]}  # lead "a"'s open offer
    went_through = [
        s for s in skipped if any(t in s for t in ("rep_state", "account_keys", "JOIN"))
    ]
    assert went_through == []


async def test_a_duplicate_key_raises_sqlalchemys_integrity_error_without_the_values(
    databases: tuple[Database, Database], direct_way: Way
) -> None:
    db, _ = databases

    async def insert_twice(session: Tx) -> None:
        await repo.insert_leads(session=session, rows=[_lead("twice", email="private@example.com")])
        await repo.insert_leads(session=session, rows=[_lead("twice", email="private@example.com")])

    with pytest.raises(IntegrityError) as raised:
        await direct_way(db, insert_twice)
    assert "UNIQUE" in str(raised.value)
    assert "private@example.com" not in str(raised.value)
    async with db.reading() as session:
        count = await session.execute(text("SELECT count(*) FROM leads"))
        assert count.scalar_one() == 0  # the whole transaction rolled back


async def test_an_object_added_but_not_flushed_is_seen_by_the_next_statement(
    databases: tuple[Database, Database], direct_way: Way
) -> None:
    db, _ = databases

    async def add_then_find(session: Tx) -> set[str]:
        orm = await direct.as_session(session)
        orm.add(LeadRow(**{**_lead("pending"), "reason": ""}))
        return set(await repo.find_leads(session=session, external_ids=["pending"]))

    assert await direct_way(db, add_then_find) == {"pending"}
    async with db.reading() as session:  # and it was committed with the rest
        assert await repo.find_lead(session=session, external_id="pending") is not None


async def test_the_first_statement_takes_the_write_lock_and_goes_direct_too(
    databases: tuple[Database, Database],
) -> None:
    db, _ = databases
    through_sqlalchemy = _executions(db)
    run_by_sqlite = sqlite_statements(db)

    async with db.transaction() as session:
        await repo.load_team_states(session=session)
        await repo.load_team_states(session=session)

    assert [s.split()[0] for s in run_by_sqlite] == ["BEGIN", "SELECT", "SELECT", "COMMIT"]
    assert through_sqlalchemy == []


async def test_many_rows_go_through_sqlalchemy_to_the_database_thread(
    databases: tuple[Database, Database],
) -> None:
    db, _ = databases
    through_sqlalchemy = _executions(db)
    many = [_lead(f"bulk-{n}") for n in range(INLINE_MAX_ROWS + 1)]

    async with db.transaction() as session:
        bulk_ids = await repo.insert_leads(session=session, rows=many)
        one_id = await repo.insert_leads(session=session, rows=[_lead("one")])

    assert len([s for s in through_sqlalchemy if s.startswith("INSERT INTO leads")]) == 1
    assert set(bulk_ids) == {row["external_id"] for row in many}
    assert set(one_id) == {"one"}
