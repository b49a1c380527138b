"""Retention: the use case that deletes housekeeping rows past their age (`storage.retention`).

Run daily and once at start by the scheduler (`bot.jobs`), by every replica: deleting rows
another replica already deleted does nothing, and each run counts only the rows it deleted, so
the counts of all replicas add up to what was deleted. Each batch is its own transaction: a run
cut short leaves whole batches deleted and the rest for the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from storage.retention import Housekeeping, delete_old

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger(__name__)

PRUNE_BATCH = 5_000  # rows deleted per transaction at most


@dataclass(frozen=True, slots=True)
class Retention:
    """How many days each housekeeping table keeps its rows; None keeps them forever.
    From the settings (`Settings.retention`), where the defaults and their limits live."""

    request_keys: int | None
    outbox: int | None
    job_runs: int | None
    audit: int | None

    def days(self, what: Housekeeping) -> int | None:
        return {
            Housekeeping.REQUEST_KEYS: self.request_keys,
            Housekeeping.OUTBOX: self.outbox,
            Housekeeping.JOB_RUNS: self.job_runs,
            Housekeeping.AUDIT: self.audit,
        }[what]

    @property
    def prunes(self) -> bool:
        """Whether any table is pruned at all."""
        return any(self.days(what) is not None for what in Housekeeping)

    def describe(self) -> str:
        """One line for `leadrouter jobs`."""
        return "delete " + ", ".join(
            f"{what} after {days} days{_SPARED.get(what, '')}"
            if days is not None
            else f"{what}: kept forever"
            for what, days in ((what, self.days(what)) for what in Housekeeping)
        )


# What an admin could not guess from the ages alone.
_SPARED = {
    Housekeeping.JOB_RUNS: " (each job's latest kept)",
    Housekeeping.AUDIT: " (never those of a lead still open)",
}


async def prune(
    service: Service, retention: Retention, *, batch: int = PRUNE_BATCH
) -> dict[Housekeeping, int]:
    """Delete the rows of each housekeeping table older than its retention, `batch` rows per
    transaction; how many this run deleted, by table (tables kept forever left out)."""
    now = service.clock()
    deleted: dict[Housekeeping, int] = {}
    for what in Housekeeping:
        days = retention.days(what)
        if days is None:
            continue
        deleted[what] = await _prune(service, what, now - timedelta(days=days), batch)
    log.info("retention: %s", _counts(retention, deleted))
    return deleted


async def _prune(service: Service, what: Housekeeping, before: datetime, batch: int) -> int:
    """Delete `what`'s rows older than `before`, `batch` rows per transaction; how many."""

    def once(session: Session) -> int:
        return delete_old(
            session=session,
            what=what,
            before=before,
            limit=batch,
            skip_locked=not service.db.is_sqlite,
        )

    deleted = 0
    while True:
        done = await service.db.run(once)
        deleted += done
        if done < batch:
            return deleted


def _counts(retention: Retention, deleted: dict[Housekeeping, int]) -> str:
    parts = []
    for what in Housekeeping:
        days = retention.days(what)
        if days is None:
            parts.append(f"{what} kept forever")
        else:
            parts.append(f"deleted {deleted[what]:,} {what} older than {days} days")
    return "; ".join(parts)
