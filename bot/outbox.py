"""Carrying out the outbox: the loop every kind of side effect shares (Slack posts, CRM writes).

Each item is leased by compare-and-set before it is tried, so two workers (or two replicas) never
both try it, and finished or rescheduled afterwards. A worker says which kinds it carries out,
how (`carry_out`), and which of its callee's errors are worth another try (`failure`).

Items queued by this process while a worker of theirs runs here skip the polling: the service
commits them already leased to this process (`leased_at_birth`) and hands them over (`take`),
and each is carried out at once, on its own, without a read or a lease of its own. Should the
process die first, the lease runs out and any worker (or replica) polls the item up as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage import repository as repo
from storage.db import Database
from storage.direct import Tx
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
    running: bool = False  # in `run`: items may be handed over rather than polled
    _slots: asyncio.Semaphore | None = None
    _handed: deque[OutboxRow] = field(default_factory=deque)  # taken, not yet begun
    _takers: set[asyncio.Task[None]] = field(default_factory=set)  # at most `concurrency`

    def wake(self) -> None:
        """New items were committed: look at once rather than at the next poll."""
        self._wake.set()

    def take(self, items: Sequence[OutboxRow]) -> None:
        """Items just committed leased to this process (`leased_at_birth`): carry them out now,
        begun in order, `concurrency` at a time (a burst waits in a queue, not a task apiece)."""
        self._handed.extend(items)
        for _ in range(min(len(self._handed), self.concurrency - len(self._takers))):
            task = asyncio.create_task(self._carry_out_handed(), name="outbox:handed")
            self._takers.add(task)
            task.add_done_callback(self._takers.discard)

    async def _carry_out_handed(self) -> None:
        while self._handed:
            item = self._handed.popleft()
            try:
                async with self._slot():
                    await self._deliver(item, leased=True)
            except Exception:  # the database, say: the item stays leased, then is polled up
                log.exception("outbox: item %s (%s) failed; it is tried again", item.id, item.kind)

    def _slot(self) -> asyncio.Semaphore:
        # One semaphore for handed-over items and polled rounds alike: `concurrency` in all.
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots

    async def run(self) -> None:
        """Carry out items until cancelled."""
        self.running = True
        try:
            await self._poll()
        finally:
            self.running = False
            # Items handed over and not finished stay leased, and are polled up when that ends.
            self._handed.clear()
            for task in list(self._takers):
                task.cancel()

    async def _poll(self) -> None:
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
        slots = self._slot()

        async def one(item: OutboxRow) -> None:
            async with slots:
                await self._deliver(item)

        await asyncio.gather(*(one(item) for item in items))
        return len(items)

    async def carry_out(self, item: OutboxRow) -> None:
        raise NotImplementedError

    def failure(self, exc: Exception) -> Retry | GiveUp | None:
        """What an error from `carry_out` means: Retry, GiveUp, or None for a bug (logged, and
        the item is tried again a lease's length later)."""
        return None

    async def finished(
        self, session: AsyncSession, item: OutboxRow, *, error: str | None, gave_up: bool
    ) -> None:
        """Called in the transaction that closes an attempt (to record more than the item)."""

    async def _deliver(self, item: OutboxRow, *, leased: bool = False) -> None:
        """One attempt. `leased`: the item came leased (handed over), so it is not leased
        again, unless it waited so long for a slot that the lease might run out meanwhile."""
        assert item.id is not None
        if not leased or self.clock() >= item.next_attempt_at - LEASE / 2:
            async with self.db.transaction() as session:
                mine = await repo.lease_outbox(
                    session=session,
                    item_id=item.id,
                    seen_next_attempt=item.next_attempt_at,
                    until=self.clock() + LEASE,
                    counted=not leased,  # a lease at birth counted its attempt already
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
                # A bug: tried again when the lease would have run out, and the attempt still
                # closed properly (a card posted before the bug keeps its recorded ts).
                log.exception("outbox: item %s (%s) failed unexpectedly", item.id, item.kind)
                outcome = Retry(f"failed unexpectedly ({type(exc).__name__}); see the log")
                outcome.after = LEASE.total_seconds()
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


def leased_at_birth(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An outbox row to insert already leased to the process that queues it (see `take`): its
    first attempt is under way from the moment it is committed."""
    return {**row, "next_attempt_at": now + LEASE, "attempts": row["attempts"] + 1}


def as_taken(row: dict[str, Any], item_id: int) -> OutboxRow:
    """The item handed to `take` for a row inserted by `leased_at_birth`: as a poll would have
    read it just before leasing it (the lease's attempt not counted yet)."""
    return OutboxRow(**{**row, "id": item_id, "attempts": row["attempts"] - 1})


Taker = Callable[[Sequence[OutboxRow]], None]  # a running worker's `take`


@dataclass
class Queued:
    """The outbox items one transaction queues. Those of a kind a worker running in this
    process carries out (`takers`) are inserted leased to it and handed over once committed;
    the rest wait for a poll (`polled` counts them)."""

    takers: Mapping[str, Taker]
    clock: Callable[[], datetime]
    taken: list[tuple[Taker, OutboxRow]] = field(default_factory=list)
    polled: int = 0

    async def add(self, session: Tx, rows: Sequence[dict[str, Any]]) -> None:
        now = self.clock()
        leased: list[tuple[Taker, dict[str, Any]]] = []
        prepared: list[dict[str, Any]] = []
        for row in rows:
            taker = self.takers.get(row["kind"])
            if taker is not None and row["next_attempt_at"] <= now:
                row = leased_at_birth(row, now)
                leased.append((taker, row))
            else:
                self.polled += 1
            prepared.append(row)
        ids = await repo.insert_outbox(session=session, rows=prepared)
        self.taken += [(taker, as_taken(row, ids[row["dedupe_key"]])) for taker, row in leased]

    def hand_over(self) -> None:
        """After commit: each worker gets its items, in the order they were queued."""
        by_taker: dict[Taker, list[OutboxRow]] = {}
        for taker, item in self.taken:
            by_taker.setdefault(taker, []).append(item)
        for taker, items in by_taker.items():
            taker(items)


def backoff(attempts: int) -> float:
    """Seconds before the next try: doubling from one, at most five minutes, with jitter."""
    return min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)
