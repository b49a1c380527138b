"""Policy versions: their texts, by the hash of each, and the chain of activations whose latest is
the version every replica serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import Insert, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from storage.models import PolicyActivationRow, PolicyVersionRow
from storage.repository.common import Conflict, insert_into, table_of


class ActivatedMeanwhile(Conflict):
    """Another transaction activated a version on the one this one read as active."""


@cache
def _store_version(dialect: str) -> Insert:
    """`store_policy_version`'s insert for `dialect`, built once: a version stored is left."""
    versions = table_of(PolicyVersionRow)
    insert_once = (sqlite_insert if dialect == "sqlite" else pg_insert)(versions).values(
        version=bindparam("b_version"),
        text=bindparam("b_text"),
        source=bindparam("b_source"),
        stored_at=bindparam("b_at"),
    )
    return insert_once.on_conflict_do_nothing(index_elements=[versions.c.version])


def store_policy_version(
    *, session: Session, version: str, text: str, source: str, now: datetime
) -> None:
    """Keep a policy's text under its version (once: the same text is the same version)."""
    session.execute(
        _store_version(session.get_bind().dialect.name),
        {"b_version": version, "b_text": text, "b_source": source[:1000], "b_at": now},
    )


def latest_activation(*, session: Session) -> PolicyActivationRow | None:
    """The activation in force: its version is the one to serve."""
    return session.execute(_LATEST).scalars().first()


def record_activation(
    *,
    session: Session,
    version: str,
    replaces: int,
    at: datetime,
    how: str,
    by: str | None,
    source: str,
) -> None:
    """Make `version` the active one, in place of the activation `replaces` (0: none yet).
    ActivatedMeanwhile when another transaction replaced that one first."""
    try:
        with session.begin_nested():
            session.execute(
                insert_into(PolicyActivationRow),
                {
                    "version": version,
                    "replaces": replaces,
                    "at": at,
                    "how": how,
                    "by": by,
                    "source": source[:1000],
                },
            )
    except IntegrityError as exc:
        raise ActivatedMeanwhile(f"activation {replaces} was replaced meanwhile") from exc


_LATEST = select(PolicyActivationRow).order_by(col(PolicyActivationRow.id).desc()).limit(1)


async def active_policy_version(*, session: AsyncSession) -> str | None:
    """The version every replica is to serve; None before any was activated. One row by its
    primary key: cheap enough for each replica to ask every few seconds."""
    result = await session.execute(
        select(col(PolicyActivationRow.version))
        .order_by(col(PolicyActivationRow.id).desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def policy_version(*, session: AsyncSession, version: str) -> PolicyVersionRow | None:
    return await session.get(PolicyVersionRow, version)


async def policy_versions_starting(
    *, session: AsyncSession, prefix: str, limit: int = 10
) -> Sequence[PolicyVersionRow]:
    """The stored versions whose hash starts with `prefix` (lowercase hex digits)."""
    result = await session.execute(
        select(PolicyVersionRow)
        .where(col(PolicyVersionRow.version).startswith(prefix, autoescape=True))
        .order_by(col(PolicyVersionRow.version))
        .limit(limit)
    )
    return result.scalars().all()


async def policy_activations(
    *, session: AsyncSession, limit: int | None = None, version: str | None = None
) -> Sequence[tuple[PolicyActivationRow, PolicyVersionRow]]:
    """Activations, newest first, each with its version (only `version`'s, if given)."""
    query = (
        select(PolicyActivationRow, PolicyVersionRow)
        .join(PolicyVersionRow, col(PolicyVersionRow.version) == col(PolicyActivationRow.version))
        .order_by(col(PolicyActivationRow.id).desc())
    )
    if version is not None:
        query = query.where(col(PolicyActivationRow.version) == version)
    if limit is not None:
        query = query.limit(limit)
    result = await session.execute(query)
    return [(activation, stored) for activation, stored in result.all()]
