"""The state a decision needs, loaded and saved: reps' open leads and absences, teams' rotations
(what new leads may meet besides, accounts and people: `lead_context`).

Concurrency on PostgreSQL rests on two compare-and-set updates, done last in a decision's
transaction: the team's rotation (`save_team_state`: only if its version is the one read) and the
chosen rep's open-lead count (`count_open_leads`: only if it is the count read). If either finds
the row changed, `StateChanged` is raised, the transaction rolls back, and the service routes
again with fresh state. On SQLite transactions never overlap, so neither ever fails there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from routing.distribution import TeamState
from routing.model import OutOfOffice
from storage.models import RepStateRow, TeamStateRow
from storage.repository.common import (
    REPS,
    TEAMS,
    StateChanged,
)


@dataclass(frozen=True, slots=True)
class RepStates:
    open_loads: dict[str, int]
    out_of_office: dict[str, OutOfOffice]


# Two narrow reads rather than one wide one: every rep with open leads is a row of the first,
# and only the few away carry the columns (dates) that need processing.
# Every rep with open leads or away, in one statement: a routing transaction reads both.
_REP_STATES = select(
    REPS.c.rep_id,
    REPS.c.open_count,
    REPS.c.away,
    REPS.c.away_since,
    REPS.c.away_until,
    REPS.c.away_reason,
).where(or_(REPS.c.open_count != 0, REPS.c.away))


_TEAM_STATES = select(TEAMS.c.team, TEAMS.c.last_rep, TEAMS.c.current, TEAMS.c.version)


# `count_open_leads`: compare-and-set on the count read (b_ names: SQLAlchemy reserves the
# column names for the SET clause's own parameters).
_COUNT_OPEN_LEADS = (
    update(REPS)
    .where(REPS.c.rep_id == bindparam("b_rep"), REPS.c.open_count == bindparam("b_read"))
    .values(open_count=bindparam("b_count"), updated_at=bindparam("b_now"))
)


_ROTATE_TEAM = (
    update(TEAMS)
    .where(TEAMS.c.team == bindparam("b_team"), TEAMS.c.version == bindparam("b_read"))
    .values(
        version=bindparam("b_version"),
        last_rep=bindparam("b_last_rep"),
        current=bindparam("b_current", type_=TEAMS.c.current.type),
    )
)


def load_rep_states(*, session: Session) -> RepStates:
    loads: dict[str, int] = {}
    away: dict[str, OutOfOffice] = {}
    for rep_id, open_count, is_away, since, until, reason in session.execute(_REP_STATES):
        if open_count:
            loads[rep_id] = open_count
        if is_away:
            away[rep_id] = OutOfOffice(until=until, reason=reason, since=since)
    return RepStates(loads, away)


async def read_rep_states(*, session: AsyncSession) -> RepStates:
    """`load_rep_states`, for a coroutine's read."""
    return await session.run_sync(lambda sync: load_rep_states(session=sync))


@dataclass(frozen=True, slots=True)
class TeamStates:
    states: dict[str, TeamState]
    versions: dict[str, int]  # a team with no row yet is absent


# `TeamState.days` rides in the `current` JSON under a key no rep id can be (ids are letters,
# digits and `_.@-`), so the week's counts need no column of their own.
_DAYS_KEY = "#days"
_PERFORMANCE_KEY = "#performance"  # `TeamState.performance`, the same way


def _team_state(last_rep: str | None, current: dict[str, Any] | None) -> TeamState:
    credits = dict(current or {})
    days = credits.pop(_DAYS_KEY, None)
    performance = credits.pop(_PERFORMANCE_KEY, None)
    return TeamState(
        last_rep,
        credits,
        days if isinstance(days, dict) else {},
        performance if isinstance(performance, dict) else {},
    )


def _stored_current(state: TeamState) -> dict[str, Any]:
    stored: dict[str, Any] = dict(state.current)
    if state.days:
        stored[_DAYS_KEY] = {day: dict(reps) for day, reps in state.days.items()}
    if state.performance:
        stored[_PERFORMANCE_KEY] = dict(state.performance)
    return stored


def load_team_states(*, session: Session) -> TeamStates:
    rows = session.execute(_TEAM_STATES).all()
    return TeamStates(
        {team: _team_state(last_rep, current) for team, last_rep, current, _v in rows},
        {team: version for team, _last, _current, version in rows},
    )


def save_team_state(
    *, session: Session, team: str, state: TeamState, read_version: int | None
) -> None:
    """Store a team's new rotation, if nobody changed it since `read_version` (None: no row)."""
    values = {"last_rep": state.last_rep, "current": _stored_current(state)}
    if read_version is None:
        try:
            with session.begin_nested():
                session.execute(insert(TeamStateRow).values(team=team, version=1, **values))
        except IntegrityError:
            raise StateChanged(f"team {team} was created meanwhile") from None
        return
    result = session.execute(
        _ROTATE_TEAM,
        {
            "b_team": team,
            "b_read": read_version,
            "b_version": read_version + 1,
            "b_last_rep": state.last_rep,
            "b_current": values["current"],
        },
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StateChanged(f"team {team} rotated meanwhile")


# PostgreSQL: every rep's compare-and-set in one statement, the rows it changed returned (its
# driver does not count the rows an executemany changed, so that would be a trip per rep).
# The absence is compared too (away, and until when), as this transaction read it: a replica
# on another version of the policy may change a rep under teams this one does not hold, and a
# lead given to a rep who has just gone away must not stand (`bot.service.world`).
_COUNT_OPEN_LEADS_PG = text(
    "UPDATE rep_state SET open_count = asked.count, updated_at = :now"
    " FROM unnest(CAST(:reps AS varchar[]), CAST(:reads AS integer[]),"
    " CAST(:counts AS integer[]), CAST(:aways AS boolean[]), CAST(:untils AS timestamp[]))"
    " AS asked(rep_id, read, count, away, until)"
    " WHERE rep_state.rep_id = asked.rep_id AND rep_state.open_count = asked.read"
    " AND rep_state.away = asked.away"
    " AND (NOT asked.away OR rep_state.away_until IS NOT DISTINCT FROM asked.until)"
    " RETURNING rep_state.rep_id"
).bindparams(bindparam("now", type_=REPS.c.updated_at.type))
# The reps with no row yet, each created unless another transaction created it first.
_CREATE_REPS_PG = text(
    "INSERT INTO rep_state (rep_id, open_count, away, updated_at)"
    " SELECT rep_id, count, false, :now"
    " FROM unnest(CAST(:reps AS varchar[]), CAST(:counts AS integer[])) AS asked(rep_id, count)"
    " ON CONFLICT (rep_id) DO NOTHING RETURNING rep_id"
).bindparams(bindparam("now", type_=REPS.c.updated_at.type))
_ROTATE_TEAMS_PG = text(
    "UPDATE team_state SET version = asked.read + 1, last_rep = asked.last_rep,"
    " current = CAST(asked.current AS json)"
    " FROM unnest(CAST(:teams AS varchar[]), CAST(:reads AS integer[]),"
    " CAST(:last_reps AS varchar[]), CAST(:currents AS text[]))"
    " AS asked(team, read, last_rep, current)"
    " WHERE team_state.team = asked.team AND team_state.version = asked.read"
    " RETURNING team_state.team"
)
_CREATE_TEAMS_PG = text(
    "INSERT INTO team_state (team, version, last_rep, current)"
    " SELECT team, 1, last_rep, CAST(current AS json)"
    " FROM unnest(CAST(:teams AS varchar[]), CAST(:last_reps AS varchar[]),"
    " CAST(:currents AS text[])) AS asked(team, last_rep, current)"
    " ON CONFLICT (team) DO NOTHING RETURNING team"
)


def save_team_states(
    *, session: Session, changes: Sequence[tuple[str, TeamState, int | None]]
) -> None:
    """`save_team_state` for each (team, new state, read version); on PostgreSQL in two
    statements whatever the number of teams (one for the teams with a row, one for those
    without)."""
    if not _is_postgresql(session):
        for team, state, read_version in changes:
            save_team_state(session=session, team=team, state=state, read_version=read_version)
        return
    stored = [change for change in changes if change[2] is not None]
    if stored:
        rotated = session.execute(
            _ROTATE_TEAMS_PG,
            {
                "teams": [team for team, _s, _v in stored],
                "reads": [version for _t, _s, version in stored],
                "last_reps": [state.last_rep for _t, state, _v in stored],
                "currents": [json.dumps(_stored_current(state)) for _t, state, _v in stored],
            },
        ).scalars()
        if len(set(rotated)) != len(stored):
            raise StateChanged("some team rotated meanwhile")
    new = [change for change in changes if change[2] is None]
    if new:
        created = session.execute(
            _CREATE_TEAMS_PG,
            {
                "teams": [team for team, _s, _v in new],
                "last_reps": [state.last_rep for _t, state, _v in new],
                "currents": [json.dumps(_stored_current(state)) for _t, state, _v in new],
            },
        ).scalars()
        if len(set(created)) != len(new):
            raise StateChanged("some team was created meanwhile")


def count_open_leads_many(
    *,
    session: Session,
    changes: Sequence[tuple[str, int, int]],
    now: datetime,
    away: Mapping[str, OutOfOffice] | None = None,
) -> None:
    """`count_open_leads` for each (rep id, read count, added): on PostgreSQL in one statement
    (two if some rep has no row yet), which also checks that each rep's absence is still as
    read (`away`: the reps read as away); elsewhere in one executemany for the reps whose row
    is known to exist, where the driver reports the rows an executemany changed (SQLite does,
    and its transactions never overlap), and one statement per rep otherwise. A batch of leads
    spread over a hundred reps would otherwise cost a hundred round trips."""
    if changes and _is_postgresql(session):
        _count_open_leads_pg(session, changes, now, away or {})
        return
    bulk = [change for change in changes if change[1] > 0]
    if len(bulk) > 1 and session.get_bind().dialect.supports_sane_multi_rowcount:
        result = session.execute(
            _COUNT_OPEN_LEADS,
            [
                {"b_rep": rep, "b_read": read, "b_count": read + added, "b_now": now}
                for rep, read, added in bulk
            ],
        )
        if result.rowcount != len(bulk):  # type: ignore[attr-defined]
            raise StateChanged("some rep's open leads changed meanwhile")
        done = {rep for rep, _read, _added in bulk}
        changes = [change for change in changes if change[0] not in done]
    for rep, read, added in changes:
        count_open_leads(session=session, rep_id=rep, read_count=read, added=added, now=now)


def _count_open_leads_pg(
    session: Session,
    changes: Sequence[tuple[str, int, int]],
    now: datetime,
    away: Mapping[str, OutOfOffice],
) -> None:
    untils = [
        _naive_utc(absence.until) if (absence := away.get(rep)) else None for rep, *_ in changes
    ]
    counted = set(
        session.execute(
            _COUNT_OPEN_LEADS_PG,
            {
                "reps": [rep for rep, _read, _added in changes],
                "reads": [read for _rep, read, _added in changes],
                "counts": [read + added for _rep, read, added in changes],
                "aways": [rep in away for rep, _read, _added in changes],
                "untils": [
                    until and until.astimezone(UTC).replace(tzinfo=None) for until in untils
                ],
                "now": now,
            },
        ).scalars()
    )
    missing = [change for change in changes if change[0] not in counted]
    if any(read != 0 or rep in away for rep, read, _added in missing):
        raise StateChanged("some rep's open leads or absence changed meanwhile")
    if not missing:
        return
    # Read as 0 and not counted: no row yet, or a row whose count is no longer 0 (then the
    # insert finds it and creates nothing).
    created = session.execute(
        _CREATE_REPS_PG,
        {
            "reps": [rep for rep, _read, _added in missing],
            "counts": [added for _rep, _read, added in missing],
            "now": now,
        },
    ).scalars()
    if len(set(created)) != len(missing):
        raise StateChanged("some rep's state was created or changed meanwhile")


def _naive_utc(moment: datetime | None) -> datetime | None:
    """As `UtcDateTime` stores a moment (naive UTC), for a statement that binds it itself."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment is not None else None


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def count_open_leads(
    *, session: Session, rep_id: str, read_count: int, added: int, now: datetime
) -> None:
    """`added` more open leads for `rep_id`, if its count is still `read_count`."""
    result = session.execute(
        _COUNT_OPEN_LEADS,
        {"b_rep": rep_id, "b_read": read_count, "b_count": read_count + added, "b_now": now},
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return
    if read_count != 0:
        raise StateChanged(f"{rep_id}'s open leads changed meanwhile")
    try:
        with session.begin_nested():
            session.execute(
                insert(RepStateRow).values(
                    rep_id=rep_id, open_count=added, away=False, updated_at=now
                )
            )
    except IntegrityError:
        raise StateChanged(f"{rep_id}'s state was created meanwhile") from None


def set_away(
    *,
    session: Session,
    rep_id: str,
    away: bool,
    since: datetime | None,
    until: datetime | None,
    reason: str | None,
    now: datetime,
) -> None:
    """Record the rep away (or back) as of `now`, which is kept as when the absence was
    recorded (`away_at`: what the sweep's `offers_of_absent_reps` reads)."""
    values: dict[str, Any] = {
        "away": away,
        "away_since": since,
        "away_until": until,
        "away_reason": reason,
        "away_at": now if away else None,
        "updated_at": now,
    }
    result = session.execute(
        update(RepStateRow).where(col(RepStateRow.rep_id) == rep_id).values(**values)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(RepStateRow(rep_id=rep_id, open_count=0, **values))
        session.flush()
