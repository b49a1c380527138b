"""Carrying out the outbox: the loop every kind of side effect shares (Slack posts, CRM writes).

Each item is leased by compare-and-set before it is tried, so two workers (or two replicas) never
both try it, and finished or rescheduled afterwards. A worker says which kinds it carries out,
how (`carry_out`), and which of its callee's errors are worth another try (`failure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from storage import repository as repo
from storage.db import Database
from storage.models import OutboxRow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_BACKOFF_S = 300.0
BATCH = 200


class Retry(Exception):
    """Try this item again later (the message says why), not before `after` seconds if given."""

    def __init__(self, message: str, *, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


class GiveUp(Exception):
    """This item cannot succeed as it stands (the message says why): record it, do not retry."""


@dataclass(kw_only=True)
class OutboxWorker:
    db: Database
    clock: Callable[[], datetime]
    poll_every_s: float = 1.0
    concurrency: int = 32
    # Transient failures are retried with backoff; after this many attempts the item is given up.
    max_attempts: int | None = None
    delivered: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    kinds: tuple[str, ...] = ()

    def wake(self) -> None:
        """New items were committed: look at once rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Carry out items until cancelled."""
        while True:
            try:
                done = await self.deliver_due()
            except Exception:
                log.exception("outbox: a round of %s failed; trying again shortly", self.kinds)
                done = 0
            if done:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_every_s)

    async def deliver_due(self) -> int:
        """One round: every item due now, side by side. Returns how many were tried."""
        async with self.db.reading() as session:
            items = await repo.due_outbox(
                session=session, kinds=self.kinds, now=self.clock(), limit=BATCH
            )
        if not items:
            return 0
        slots = asyncio.Semaphore(self.concurrency)

        async def one(item: OutboxRow) -> None:
            async with slots:
                await self._deliver(item)

        await asyncio.gather(*(one(item) for item in items))
        return len(items)

    async def carry_out(self, item: OutboxRow) -> None:
        raise NotImplementedError

    def failure(self, exc: Exception) -> Retry | GiveUp | None:
        """What an error from `carry_out` means: Retry, GiveUp, or None for a bug (logged, and
        the item is tried again when its lease runs out)."""
        return None

    async def finished(
        self, session: AsyncSession, item: OutboxRow, *, error: str | None, gave_up: bool
    ) -> None:
        """Called in the transaction that closes an attempt (to record more than the item)."""

    async def _deliver(self, item: OutboxRow) -> None:
        assert item.id is not None
        async with self.db.transaction() as session:
            mine = await repo.lease_outbox(
                session=session,
                item_id=item.id,
                seen_next_attempt=item.next_attempt_at,
                until=self.clock() + LEASE,
            )
        if not mine:
            return
        error: str | None = None
        retry_at: datetime | None = None
        try:
            await self.carry_out(item)
        except Exception as exc:
            outcome = exc if isinstance(exc, Retry | GiveUp) else self.failure(exc)
            if outcome is None:
                raise
            error = str(outcome)
            attempt = item.attempts + 1
            if isinstance(outcome, Retry) and (
                self.max_attempts is None or attempt < self.max_attempts
            ):
                wait = max(backoff(item.attempts), outcome.after or 0.0)
                retry_at = self.clock() + timedelta(seconds=wait)
            else:
                if isinstance(outcome, Retry):
                    error = f"gave up after {attempt} attempts; the last: {error}"
                log.warning("outbox: item %s (%s) given up: %s", item.id, item.kind, error)
        async with self.db.transaction() as session:
            await repo.finish_outbox(
                session=session, item_id=item.id, now=self.clock(), error=error, retry_at=retry_at
            )
            await self.finished(
                session, item, error=error, gave_up=error is not None and retry_at is None
            )
        if error is None:
            self.delivered += 1


def backoff(attempts: int) -> float:
    """Seconds before the next try: doubling from one, at most five minutes, with jitter."""
    return min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)
