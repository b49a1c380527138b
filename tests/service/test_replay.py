"""The replay use case on SQLite and PostgreSQL: history read as it happened (first decisions,
closings, absences, the state at the window's start) and the database left as it was."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.service.availability import set_back, set_out_of_office
from bot.service.intake import find_lead, intake_many
from bot.service.offers import reject
from bot.service.replay import replay
from bot.service.unit_of_work import UnitOfWork
from routing.model import Outcome
from routing.policy import Policy, parse_policy
from routing.replay import Replayed
from routing.replay_summary import ReplaySummary
from routing.report.window import Window
from routing.simulation import Simulation
from storage.db import Database
from tests.service.conftest import Clock
from tests.service.support import new_lead

# Two reps who always work, two open leads at most, one round-robin team; a rule for nobody's
# leads (no rule matches those from a gov domain).
PAIR = parse_policy(
    "reps:\n  - {id: ann, capacity: 2}\n  - {id: ben, capacity: 2}\n"
    "teams:\n  pool: {members: [ann, ben], distribution: round_robin}\n"
    "rules:\n  - {name: Everyone, when: {email_domain: {not_in: [agency.gov]}}, "
    "assign: {team: pool}}\n",
    source="pair.yml",
)
# Another policy for the same reps: everyone to ben, a shorter SLA.
BEN_ONLY = parse_policy(
    "reps:\n  - {id: ann}\n  - {id: ben}\nsla: {default: 5m}\n"
    "rules:\n  - {name: Ben, assign: {rep: ben}}\n",
    source="ben.yml",
)


def uow_of(db: Database, clock: Clock, policy: Policy = PAIR) -> UnitOfWork:
    return UnitOfWork(db=db, policy=lambda: policy, clock=clock)


async def arrive(uow: UnitOfWork, clock: Clock, *lead_ids: str, **fields: Any) -> None:
    """Each lead arrives a minute after the one before."""
    for lead_id in lead_ids:
        clock.advance(minutes=1)
        await intake_many(uow, [new_lead(lead_id, **fields)])


async def replayed(
    db: Database, clock: Clock, policy: Policy, since: datetime, until: datetime | None = None
) -> tuple[list[Replayed], ReplaySummary]:
    found: list[Replayed] = []
    summary = await replay(
        uow_of(db, clock),
        policy,
        Window(since, until or clock.now + timedelta(hours=1)),
        each=found.append,
    )
    return found, summary


async def every_row(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    rows = {}
    async with db.reading() as session:
        for table in SQLModel.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in (await session.execute(query)).all()]
    return rows


async def test_the_policy_that_decided_replays_its_history_unchanged_and_writes_nothing(
    db: Database, clock: Clock
) -> None:
    uow = uow_of(db, clock)
    start = clock.now
    await arrive(uow, clock, "L-1", "L-2", "L-3", "L-4", "L-5")
    await arrive(uow, clock, "G-1", email="clerk@agency.gov")
    before = await every_row(db)

    leads, summary = await replayed(db, clock, PAIR, start)

    assert await every_row(db) == before
    assert [r.lead_id for r in leads] == ["L-1", "L-2", "L-3", "L-4", "L-5", "G-1"]
    assert [r.after.where for r in leads] == ["ann", "ben", "ann", "ben", "(queued)", "(queued)"]
    assert not any(r.moved for r in leads) and summary.moved == 0
    assert [r.after.unmatched for r in leads] == [False] * 4 + [False, True]
    assert [r.before.unmatched for r in leads] == [False] * 4 + [False, True]
    assert leads[0].arrived_at == start + timedelta(minutes=1)
    assert {(r.before.policy_version, r.after.policy_version) for r in leads} == {
        (PAIR.version, PAIR.version)
    }


async def test_another_policy_is_what_a_simulation_of_the_leads_at_their_arrival_gives(
    db: Database, clock: Clock
) -> None:
    uow = uow_of(db, clock)
    start = clock.now
    await arrive(uow, clock, "L-1", "L-2", "L-3")

    leads, summary = await replayed(db, clock, BEN_ONLY, start)

    simulation = Simulation(BEN_ONLY, start)
    expected = [simulation.route(new_lead(lead.lead_id), lead.arrived_at) for lead in leads]
    assert [(r.after.rep, r.after.rule, r.sla_due_at) for r in leads] == [
        (d.rep, d.rule, d.sla_due_at) for d in expected
    ]
    # Ben's lead is his still, though through no team now: it has not moved.
    assert [r.moved for r in leads] == [True, False, True]
    assert summary.teams[("pool", None)].count == 3
    assert summary.assigned_before == {"ann": 2, "ben": 1}
    assert summary.assigned_after == {"ben": 3}
    assert {key: m.count for key, m in summary.slas.items()} == {(900, 300): 3}


async def test_a_lead_is_compared_by_its_first_decision_and_holds_its_rep_until_it_closed(
    db: Database, clock: Clock
) -> None:
    uow = uow_of(db, clock)
    start = clock.now
    await arrive(uow, clock, "L-1", "L-2", "L-3", "L-4")  # ann, ben, ann, ben: all full
    clock.advance(minutes=1)
    await reject(uow, "L-1", by="ann", reason="not mine")  # ben is full too: L-1 is queued
    await arrive(uow, clock, "L-5")  # ann has room again

    leads, _ = await replayed(db, clock, PAIR, start)

    first = leads[0]
    assert (first.lead_id, first.before.rep, first.after.rep) == ("L-1", "ann", "ann")
    # Without L-1 closing in the replay too, ann would still be full when L-5 arrives.
    assert [r.after.rep for r in leads] == ["ann", "ben", "ann", "ben", "ann"]
    assert not any(r.moved for r in leads)


async def test_absences_are_replayed_as_the_audit_trail_recorded_them(
    db: Database, clock: Clock
) -> None:
    uow = uow_of(db, clock)
    start = clock.now
    await set_out_of_office(uow, "ann", until=None, reason="offsite")
    await arrive(uow, clock, "L-1", "L-2")
    await set_back(uow, "ann")
    await arrive(uow, clock, "L-3")

    leads, _ = await replayed(db, clock, PAIR, start)

    assert [r.after.where for r in leads] == ["ben", "ben", "ann"]
    assert not any(r.moved for r in leads)


async def test_the_window_starts_with_the_loads_and_rotations_history_left(
    db: Database, clock: Clock
) -> None:
    uow = uow_of(db, clock)
    await arrive(uow, clock, "OLD-1", "OLD-2", "OLD-3")  # ann, ben, ann: ann full, ann last
    clock.advance(days=1)
    since = clock.now
    await arrive(uow, clock, "L-1", "L-2")

    leads, summary = await replayed(db, clock, PAIR, since)

    assert [r.lead_id for r in leads] == ["L-1", "L-2"]
    assert [r.after.where for r in leads] == ["ben", "(queued)"]
    assert summary.moved == 0


async def test_a_window_holds_the_leads_that_arrived_from_its_start_until_its_end(
    db: Database, clock: Clock
) -> None:
    uow = uow_of(db, clock)
    start = clock.now
    await arrive(uow, clock, "L-1", "L-2", "L-3", "L-4")

    middle, _ = await replayed(
        db, clock, PAIR, start + timedelta(minutes=2), start + timedelta(minutes=4)
    )
    none, summary = await replayed(db, clock, PAIR, clock.now + timedelta(minutes=1))

    assert [r.lead_id for r in middle] == ["L-2", "L-3"]
    assert none == [] and summary.leads == 0


async def test_stored_accounts_are_matched_as_intake_matches_them(
    db: Database, clock: Clock
) -> None:
    from bot.service.accounts import import_accounts
    from routing.model import Account

    owners = parse_policy(
        "reps:\n  - {id: ann}\n  - {id: ben}\n"
        "rules:\n  - {name: Owner, when: {account.owner: {exists: true}}, assign: account_owner}\n"
        "  - {name: Ann, assign: {rep: ann}}\n",
        source="owners.yml",
    )
    uow = uow_of(db, clock, owners)
    await import_accounts(uow, [Account("A1", "Initech", "initech.com", "ben")])
    start = clock.now
    await arrive(uow, clock, "L-1", email="pm@initech.com")
    await arrive(uow, clock, "L-2", company="Initech Inc", email="pm@elsewhere.example")

    leads, _ = await replayed(db, clock, owners, start)

    assert [(r.after.rep, r.after.rule) for r in leads] == [("ben", "Owner"), ("ben", "Owner")]
    assert [r.before.outcome for r in leads] == [Outcome.ASSIGNED] * 2
    assert not any(r.moved for r in leads)


async def test_a_replay_its_reader_stops_ends_there_and_the_database_serves_on(
    db: Database, clock: Clock
) -> None:
    uow = uow_of(db, clock)
    start = clock.now
    await arrive(uow, clock, "L-1", "L-2", "L-3")

    def gone(replayed: Replayed) -> None:
        raise BrokenPipeError(replayed.lead_id)

    window = Window(start, clock.now + timedelta(hours=1))
    with pytest.raises(BrokenPipeError, match="L-1"):
        await replay(uow, BEN_ONLY, window, each=gone)

    again, _ = await replayed(db, clock, BEN_ONLY, start)
    await arrive(uow, clock, "L-4")
    assert [r.lead_id for r in again] == ["L-1", "L-2", "L-3"]


# --- on two cores: a second process matches the leads to accounts (`bot.service.replay_stage`)

OWNERS = parse_policy(
    "reps:\n  - {id: ann}\n  - {id: ben}\n  - {id: cy}\n"
    "teams:\n  pool: {members: [ann, cy], distribution: round_robin}\n"
    "rules:\n  - {name: Owner, when: {account.owner: {exists: true}}, assign: account_owner}\n"
    "  - {name: Pool, assign: {team: pool}}\n",
    source="owners.yml",
)


async def history_with_accounts(db: Database, clock: Clock) -> tuple[UnitOfWork, datetime]:
    """Leads matched by domain, by name (one misspelt), near an account and matched by
    nothing; some leads closed, so that loads move."""
    from bot.service.accounts import import_accounts
    from routing.model import Account

    uow = uow_of(db, clock, OWNERS)
    await import_accounts(
        uow,
        [
            Account("A1", "Initech", "initech.com", "ben"),
            Account("A2", "Umbrella Biotech", None, "ben", country="DE"),
            Account("A3", "Globex Logistics", "globex.example", None),
        ],
    )
    start = clock.now
    await arrive(uow, clock, "L-1", email="pm@initech.com")
    await arrive(uow, clock, "L-2", company="Umbrela Biotech GmbH", country="Germany")
    await arrive(uow, clock, "L-3", company="Globex Freight", email="x@freight.example")
    await arrive(uow, clock, "L-4", company="Nobody Known", email="a@nobody.example")
    await arrive(uow, clock, "L-5", email="ops@globex.example")
    clock.advance(minutes=5)
    held = await find_lead(uow, "L-4")
    assert held.rep is not None
    await reject(uow, "L-4", by=held.rep, reason="not mine")
    await arrive(uow, clock, "L-6", company="Initech", email="z@gmail.com")
    return uow, start


def lines_of(found: list[Replayed]) -> list[tuple[Any, ...]]:
    return [(r.lead_id, r.before, r.after, r.sla_due_at) for r in found]


@pytest.mark.parametrize("policy", [OWNERS, PAIR], ids=["owners", "pair"])
async def test_a_replay_on_two_cores_gives_what_one_core_gives(
    db: Database, clock: Clock, policy: Policy
) -> None:
    uow, start = await history_with_accounts(db, clock)
    window = Window(start, clock.now + timedelta(hours=1))
    one: list[Replayed] = []
    two: list[Replayed] = []
    alone = await replay(uow, policy, window, each=one.append, two_cores=False)
    paired = await replay(uow, policy, window, each=two.append, two_cores=True)

    assert lines_of(two) == lines_of(one)
    assert paired == alone
    assert len(one) == 6
    if policy is OWNERS:  # the accounts were matched at all: by domain, and by a misspelt name
        assert [r.after.rep for r in one[:3]] == ["ben", "ben", "ann"]


async def test_a_replay_on_two_cores_without_accounts_routes_without_them(
    db: Database, clock: Clock
) -> None:
    uow = uow_of(db, clock)
    start = clock.now
    await arrive(uow, clock, "L-1", "L-2", "L-3")
    window = Window(start, clock.now + timedelta(hours=1))

    two: list[Replayed] = []
    await replay(uow, BEN_ONLY, window, each=two.append, two_cores=True)

    assert [(r.lead_id, r.after.rep) for r in two] == [
        ("L-1", "ben"),
        ("L-2", "ben"),
        ("L-3", "ben"),
    ]


async def test_a_reader_stopped_by_the_replay_ends_the_second_process_too(
    sqlite_db: Database, clock: Clock
) -> None:
    uow, start = await history_with_accounts(sqlite_db, clock)

    def gone(replayed: Replayed) -> None:
        raise BrokenPipeError(replayed.lead_id)

    window = Window(start, clock.now + timedelta(hours=1))
    with pytest.raises(BrokenPipeError, match="L-1"):
        await replay(uow, OWNERS, window, each=gone, two_cores=True)
    assert not [p for p in multiprocessing.active_children()]
    assert not _replay_readers_running()


def _replay_readers_running() -> list[str]:
    """Processes of this machine running the replay's second process."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "bot.service.replay_stage" in command and str(os.getpid()) != entry.name:
                found.append(command)
    return found


async def test_a_second_process_out_of_step_is_stopped_and_the_rest_matched_here(
    sqlite_db: Database, clock: Clock
) -> None:
    from bot.service.replay_stage import ReadingStage

    _, start = await history_with_accounts(sqlite_db, clock)
    until = clock.now + timedelta(hours=1)
    async with ReadingStage(sqlite_db.url, start, until, threshold=90) as stage:
        assert await stage.lookups_for(["L-2", "L-1"]) is None  # not its order: out of step
        assert await stage.lookups_for(["L-1"]) is None  # and it stays given up
    assert not _replay_readers_running()

    async with ReadingStage(sqlite_db.url, start, until, threshold=90) as stage:
        lookups = await stage.lookups_for([f"L-{n}" for n in range(1, 7)])
    assert lookups is not None and len(lookups) == 6


async def test_a_second_process_that_cannot_read_leaves_the_matching_here(
    tmp_path: Path, clock: Clock
) -> None:
    from bot.service.replay_stage import ReadingStage

    missing = f"sqlite+aiosqlite:///{tmp_path / 'no-tables.db'}"
    async with ReadingStage(missing, clock.now, clock.now + timedelta(days=1), threshold=90) as s:
        assert await s.lookups_for(["L-1"]) is None
    assert not _replay_readers_running()


async def test_an_error_reading_the_leads_ahead_is_raised_where_its_chunk_was_due() -> None:
    from bot.service.replay import _read_ahead

    async def stored() -> Any:
        yield ["first chunk"]
        raise OSError("the disk went away")

    got: list[Any] = []

    async def route_all() -> None:
        async with _read_ahead(stored()) as chunks:
            async for chunk in chunks:
                got.append(chunk)

    with pytest.raises(OSError, match="the disk went away"):
        await asyncio.wait_for(route_all(), timeout=10)  # raised, not waited on for ever
    assert got == [["first chunk"]]
