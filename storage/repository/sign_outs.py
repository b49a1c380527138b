"""Dashboard sessions ended before they expired, by key: `session:<id>` or `everywhere:<who>`
(`bot.service.sign_outs` makes the keys)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import cache

from sqlalchemy import Insert, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from storage.models import DashboardSignOutRow
from storage.repository.common import table_of


@cache
def _record_sign_out(dialect: str) -> Insert:
    """`record_sign_out`'s upsert for `dialect`, built once."""
    sign_outs = table_of(DashboardSignOutRow)
    insert = (sqlite_insert if dialect == "sqlite" else pg_insert)(sign_outs).values(
        key=bindparam("b_key"), at=bindparam("b_at"), expires_at=bindparam("b_expires_at")
    )
    # Signed out again (everywhere, later): the later time ends the sessions issued since too.
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


async def sign_outs(*, session: AsyncSession, keys: Collection[str]) -> dict[str, datetime]:
    """When each of `keys` recorded was signed out (by primary key)."""
    result = await session.execute(
        select(col(DashboardSignOutRow.key), col(DashboardSignOutRow.at)).where(
            col(DashboardSignOutRow.key).in_(keys)
        )
    )
    return {key: at for key, at in result.all()}
