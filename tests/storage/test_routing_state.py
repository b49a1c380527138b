"""The compare-and-set that saves a routing transaction's state, on each database: a rep's open
leads and a team's rotation are written only if they are still as read, whatever the number of
reps and teams in one call (on PostgreSQL one statement each, not one per rep)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy.orm import Session

from routing.distribution import TeamState
from routing.model import OutOfOffice
from storage import repository as repo
from storage.db import Database
from tests.sqlite_trace import opening, sqlite_statements

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgres"])
def both_db(request: pytest.FixtureRequest) -> Database:
    """This directory's SQLite `db`, or a PostgreSQL one."""
    database: Database = request.getfixturevalue(
        "db" if request.param == "sqlite" else "postgres_db"
    )
    return database


async def write(db: Database, work: Callable[[Session], T]) -> T:
    return await db.run(work)


async def loads(db: Database) -> dict[str, int]:
    return dict((await db.run(lambda s: repo.load_rep_states(session=s))).open_loads)


async def teams(db: Database) -> repo.TeamStates:
    return await db.run(lambda s: repo.load_team_states(session=s))


async def test_open_leads_are_counted_for_many_reps_at_once_new_rows_included(
    both_db: Database,
) -> None:
    await write(
        both_db,
        lambda s: repo.count_open_leads_many(
            session=s, changes=[("ana", 0, 2), ("bo", 0, 1)], now=NOW
        ),
    )
    await write(
        both_db,
        lambda s: repo.count_open_leads_many(
            session=s, changes=[("ana", 2, 1), ("bo", 1, -1), ("cy", 0, 4)], now=NOW
        ),
    )
    assert await loads(both_db) == {"ana": 3, "cy": 4}


@pytest.mark.parametrize(
    "stale",
    [
        ("ana", 1, 1),  # ana has 2 now
        ("bo", 0, 1),  # bo has a row with 1: read as none
    ],
)
async def test_a_count_read_before_another_transaction_changed_it_saves_nothing(
    both_db: Database, stale: tuple[str, int, int]
) -> None:
    await write(
        both_db,
        lambda s: repo.count_open_leads_many(
            session=s, changes=[("ana", 0, 2), ("bo", 0, 1)], now=NOW
        ),
    )
    with pytest.raises(repo.StateChanged):
        await write(
            both_db,
            lambda s: repo.count_open_leads_many(session=s, changes=[("cy", 0, 5), stale], now=NOW),
        )
    assert await loads(both_db) == {"ana": 2, "bo": 1}  # cy's count rolled back with the rest


async def test_rotations_are_saved_for_many_teams_and_a_stale_version_saves_none(
    both_db: Database,
) -> None:
    await write(
        both_db,
        lambda s: repo.save_team_states(
            session=s,
            changes=[
                ("na", TeamState("ana", {"ana": 1}), None),
                ("emea", TeamState("bo", {}), None),
            ],
        ),
    )
    stored = await teams(both_db)
    assert stored.versions == {"na": 1, "emea": 1}
    await write(
        both_db,
        lambda s: repo.save_team_states(
            session=s,
            changes=[
                ("na", TeamState("cy", {"ana": 1, "cy": 2}), 1),
                ("emea", TeamState("dee", {"dee": 0.5}), 1),
                ("smb", TeamState("eli", {}), None),
            ],
        ),
    )
    stored = await teams(both_db)
    assert stored.versions == {"na": 2, "emea": 2, "smb": 1}
    assert stored.states["na"] == TeamState("cy", {"ana": 1, "cy": 2})
    assert stored.states["emea"] == TeamState("dee", {"dee": 0.5})
    # The week's picks and the performance distribution's credits ride along, apart.
    days, credits = {"2026-12-07": {"cy": 2}}, {"cy": -150, "ana": 75}
    await write(
        both_db,
        lambda s: repo.save_team_states(
            session=s, changes=[("na", TeamState("cy", {"ana": 1}, days, credits), 2)]
        ),
    )
    assert (await teams(both_db)).states["na"] == TeamState("cy", {"ana": 1}, days, credits)

    for stale in [("na", TeamState("x", {}), 1), ("smb", TeamState("x", {}), None)]:
        with pytest.raises(repo.StateChanged):
            await write(
                both_db,
                lambda s, stale=stale: repo.save_team_states(
                    session=s, changes=[("emea", TeamState("x", {}), 2), stale]
                ),
            )
    assert (await teams(both_db)).versions == {"na": 3, "emea": 2, "smb": 1}


async def test_on_postgresql_a_hundred_reps_cost_one_statement(postgres_db: Database) -> None:
    reps = [f"r{n:03d}" for n in range(100)]
    await write(
        postgres_db,
        lambda s: repo.count_open_leads_many(
            session=s, changes=[(rep, 0, 1) for rep in reps], now=NOW
        ),
    )
    sent = sqlite_statements(postgres_db)  # every statement, whichever the database
    await write(
        postgres_db,
        lambda s: repo.count_open_leads_many(
            session=s, changes=[(rep, 1, 1) for rep in reps], now=NOW
        ),
    )
    assert [opening(statement) for statement in sent] == ["UPDATE REP_STATE", "COMMIT"]
    assert set((await loads(postgres_db)).values()) == {2}


async def test_on_postgresql_a_rep_gone_away_since_the_read_takes_no_lead(
    postgres_db: Database,
) -> None:
    """Another replica, on another version of the policy, may mark a rep away under teams this
    transaction does not hold: the count is saved only if the absence is still as read."""
    friday = NOW + timedelta(days=4)
    await write(
        postgres_db,
        lambda s: repo.count_open_leads_many(
            session=s, changes=[("ana", 0, 1), ("bo", 0, 1)], now=NOW
        ),
    )
    for rep in ("ana", "bo"):  # committed after this transaction read them as at work
        await write(
            postgres_db,
            lambda s, rep=rep: repo.set_away(
                session=s, rep_id=rep, away=True, since=None, until=friday, reason=None, now=NOW
            ),
        )

    with pytest.raises(repo.StateChanged):  # read as at work
        await write(
            postgres_db,
            lambda s: repo.count_open_leads_many(
                session=s, changes=[("ana", 1, 1)], now=NOW, away={}
            ),
        )
    with pytest.raises(repo.StateChanged):  # read as away, until another day
        await write(
            postgres_db,
            lambda s: repo.count_open_leads_many(
                session=s, changes=[("bo", 1, 1)], now=NOW, away={"bo": OutOfOffice(until=NOW)}
            ),
        )
    await write(
        postgres_db,
        lambda s: repo.count_open_leads_many(  # read as it is
            session=s, changes=[("bo", 1, -1)], now=NOW, away={"bo": OutOfOffice(until=friday)}
        ),
    )
    assert await loads(postgres_db) == {"ana": 1}
