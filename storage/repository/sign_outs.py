"""Dashboard sessions ended before they expired: one session by key (`session:<digest>`,
`bot.service.sign_outs` makes the keys), or all of someone's up to a generation."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import Insert, bindparam, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from storage.models import DashboardSessionGenerationRow, DashboardSignOutRow
from storage.repository.common import table_of


@cache
def _record_sign_out(dialect: str) -> Insert:
    """`record_sign_out`'s upsert for `dialect`, built once."""
    sign_outs = table_of(DashboardSignOutRow)
    insert = (sqlite_insert if dialect == "sqlite" else pg_insert)(sign_outs).values(
        key=bindparam("b_key"), at=bindparam("b_at"), expires_at=bindparam("b_expires_at")
    )
    # Signed out again: the later sign-out's times are kept.
    return insert.on_conflict_do_update(
        index_elements=[sign_outs.c.key],
        set_={"at": insert.excluded.at, "expires_at": insert.excluded.expires_at},
        where=sign_outs.c.at < insert.excluded.at,
    )


def record_sign_out(*, session: Session, key: str, at: datetime, expires_at: datetime) -> None:
    """Record that what `key` names was signed out at `at`, until `expires_at`; a sign-out
    recorded already keeps whichever is the later."""
    session.execute(
        _record_sign_out(session.get_bind().dialect.name),
        {"b_key": key, "b_at": at, "b_expires_at": expires_at},
    )


async def sign_out_of(*, session: AsyncSession, key: str, who: str) -> tuple[bool, int]:
    """Whether `key` was signed out, and `who`'s current session generation (0 before their first
    sign-out everywhere): one statement, each by primary key."""
    signed_out = exists().where(col(DashboardSignOutRow.key) == key)
    generation = (
        select(col(DashboardSessionGenerationRow.generation))
        .where(col(DashboardSessionGenerationRow.who) == who)
        .scalar_subquery()
    )
    found = (await session.execute(select(signed_out, generation))).one()
    return bool(found[0]), found[1] or 0


async def session_generation(*, session: AsyncSession, who: str) -> int:
    """`who`'s current session generation (0 before their first sign-out everywhere)."""
    found = await session.scalar(
        select(col(DashboardSessionGenerationRow.generation)).where(
            col(DashboardSessionGenerationRow.who) == who
        )
    )
    return found or 0


@cache
def _next_generation(dialect: str) -> Insert:
    """`next_generation`'s compare-and-set upsert for `dialect`, built once."""
    generations = table_of(DashboardSessionGenerationRow)
    insert = (sqlite_insert if dialect == "sqlite" else pg_insert)(generations).values(
        who=bindparam("b_who"), generation=bindparam("b_next")
    )
    return insert.on_conflict_do_update(
        index_elements=[generations.c.who],
        set_={"generation": insert.excluded.generation},
        where=generations.c.generation == bindparam("b_current"),
    ).returning(generations.c.generation)


def next_generation(*, session: Session, who: str, current: int) -> bool:
    """Move `who`'s session generation from `current` to the next; False, moving nothing, when
    it is no longer `current` (another sign-out everywhere moved it first)."""
    moved = session.execute(
        _next_generation(session.get_bind().dialect.name),
        {"b_who": who, "b_next": current + 1, "b_current": current},
    )
    return moved.first() is not None
