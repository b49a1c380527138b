"""Retention: deleting housekeeping rows past their age (`storage.retention`).

Run daily and once at start by the scheduler (`bot.jobs`), by every replica: deleting rows
another replica already deleted does nothing, and each run counts only the rows it deleted, so
the counts of all replicas add up to what was deleted. Each batch is its own transaction: a run
cut short leaves whole batches deleted and the rest for the next run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.retention import ONCE_EXPIRED, Retention
from bot.service.unit_of_work import UnitOfWork
from storage.retention import Housekeeping, delete_old

log = logging.getLogger("bot.retention")  # the name its lines have always had in the log

PRUNE_BATCH = 5_000  # rows deleted per transaction at most


async def prune(
    uow: UnitOfWork, retention: Retention, *, batch: int = PRUNE_BATCH
) -> dict[Housekeeping, int]:
    """Delete the rows of each housekeeping table older than its retention, `batch` rows per
    transaction; how many this run deleted, by table (tables kept forever left out)."""
    now = uow.clock()
    deleted: dict[Housekeeping, int] = {}
    for what in Housekeeping:
        days = retention.days(what)
        if days is None:
            continue
        deleted[what] = await _prune(uow, what, now - timedelta(days=days), batch)
    log.info("retention: %s", _counts(retention, deleted))
    return deleted


async def _prune(uow: UnitOfWork, what: Housekeeping, before: datetime, batch: int) -> int:
    """Delete `what`'s rows older than `before`, `batch` rows per transaction; how many."""
    deleted = 0
    while True:
        done = await uow.write(
            lambda tx: delete_old(session=tx.session, what=what, before=before, limit=batch)
        )
        deleted += done
        if done < batch:
            return deleted


def _counts(retention: Retention, deleted: dict[Housekeeping, int]) -> str:
    parts = []
    for what in Housekeeping:
        days = retention.days(what)
        if what in ONCE_EXPIRED:
            parts.append(f"deleted {deleted[what]:,} {what} of expired sessions")
        elif days is None:
            parts.append(f"{what} kept forever")
        else:
            parts.append(f"deleted {deleted[what]:,} {what} older than {days} days")
    return "; ".join(parts)
