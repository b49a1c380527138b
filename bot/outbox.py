# Over 400 lines on purpose: one loop (claim, lease, carry out, finish, retry) for every kind.
"""Carrying out the outbox: the loop every kind of side effect shares (Slack posts, CRM writes).

An attempt holds its item by a lease named by a token, for as long as it runs: claimed in
batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas take different items), renewed every
few seconds while the process lives, and ended only by the attempt that holds it (compare-and-set
on the token). A replica that dies lets its leases run out within `LEASE`, and any other takes
the items up. What an attempt learns (a message's ts, an owner written) lives on the attempt.

Items with a lane (a Slack channel, say) go out one after another in their lane, paced by
`pace_s`, lanes side by side: a backlog in one lane never delays another, and waiting for a
lane's turn takes none of the `concurrency` slots, which only calls in flight hold. A lane that
is told to wait (Slack's Retry-After) waits, with its next item at its head, and tells every
replica through the database.

(Over 400 lines as one piece on purpose: leases, lanes and the hand-over share one attempt's
life cycle, and splitting them would spread that life cycle over modules.)

A worker that keeps its lanes `in_order` (a lead's CRM writes) takes an item of a lane only
once every item queued before it in that lane has ended, whichever replica took it: the
condition is in the claim (`repo.claim_outbox`), so one lane's items never overlap across
replicas, and an earlier item under way on a replica that died holds its lane until its lease
runs out. Items of different lanes still go side by side, on any replica.

Items queued by this process while a worker of theirs runs here skip the polling: the service
commits them already leased to this worker (`leased_at_birth`) and hands them over (`take`);
not those of an `in_order` lane, which another replica may be carrying an earlier item of:
they wait for the claim, which the commit wakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from storage import repository as repo
from storage.db import Database
from storage.models import OutboxRow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=10)  # how long a dead worker's items wait before another takes them
RENEW_EVERY_S = 3.0  # a live worker renews its leases this often, well within LEASE
MAX_BACKOFF_S = 300.0
BATCH = 200  # items claimed per round
MAX_HELD = 2_000  # items one worker holds at once (queued in its lanes or under way)


class Retry(Exception):
    """Try this item again later (the message says why), not before `after` seconds if given.
    `unsure`: the call may have taken effect all the same (a timeout), so the next attempt
    looks before acting again."""

    def __init__(self, message: str, *, after: float | None = None, unsure: bool = False) -> None:
        super().__init__(message)
        self.after = after
        self.unsure = unsure


class Hold(Exception):
    """The destination asked to be left alone for `after` seconds (Slack's Retry-After): the
    attempt waits at the head of its lane and tries again, and nothing else goes to that lane
    meanwhile, from this replica or any other."""

    def __init__(self, message: str, *, after: float) -> None:
        super().__init__(message)
        self.after = after


class GiveUp(Exception):
    """This item cannot succeed as it stands (the message says why): record it, do not retry."""


@dataclass(eq=False)
class Attempt:
    """One try at one item, from its claim to its end. What the try learns along the way (a
    message posted, an owner written) is kept here, for `finished` to record."""

    item: OutboxRow
    token: str
    unsure: bool = False  # an earlier attempt may have acted already: look before acting
    notes: dict[str, Any] = field(default_factory=dict)
    lost: bool = False  # another worker took the item (its lease ran out): end it quietly
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> int:
        assert self.item.id is not None
        return self.item.id


@dataclass(eq=False)
class _Lane:
    name: str
    waiting: deque[Attempt] = field(default_factory=deque)
    free_at: float = 0.0  # time.monotonic() from which the next call may go
    task: asyncio.Task[None] | None = None


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(kw_only=True)
class OutboxWorker:
    db: Database
    clock: Callable[[], datetime]
    poll_every_s: float = 1.0
    concurrency: int = 32  # calls in flight at once
    pace_s: float = 0.0  # the least time between two calls of one lane
    # A lane's items one at a time across replicas, in the order they were queued (see above).
    in_order: bool = False
    # Transient failures are retried with backoff; after this many attempts the item is given up.
    max_attempts: int | None = None
    owner: str = field(default_factory=default_owner)
    delivered: int = 0
    # By kind, for /metrics: attempts that failed (given up or not), and items given up.
    failed: Counter[str] = field(default_factory=Counter)
    given_up: Counter[str] = field(default_factory=Counter)
    kinds: tuple[str, ...] = ()
    running: bool = False  # in `run`: items may be handed over rather than polled
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _slots: asyncio.Semaphore | None = None
    _held: dict[int, Attempt] = field(default_factory=dict)  # by item id, until ended
    _lanes: dict[str, _Lane] = field(default_factory=dict)
    _laneless: deque[Attempt] = field(default_factory=deque)  # waiting for a carrier
    _carriers: set[asyncio.Task[None]] = field(default_factory=set)  # at most `concurrency`
    _rounds: int = 0

    @property
    def birth_token(self) -> str:
        """The token of items this worker's process commits leased to it (`leased_at_birth`)."""
        return f"{self.owner}:born"

    @property
    def held(self) -> int:
        return len(self._held)

    def wake(self) -> None:
        """New items were committed: look at once rather than at the next poll."""
        self._wake.set()

    def take(self, items: Sequence[OutboxRow]) -> None:
        """Items just committed leased to this worker (`leased_at_birth`): carry them out now,
        each in its lane, in the order given."""
        for item in items:
            self._dispatch(Attempt(item, item.lease_token or self.birth_token))

    def lane_of(self, item: OutboxRow) -> str | None:
        return item.lane

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Carry out items until cancelled."""
        self.running = True
        renewing = asyncio.create_task(self._renew_forever(), name="outbox:renew")
        try:
            await self._poll()
        finally:
            self.running = False
            renewing.cancel()
            # Attempts not ended keep their leases, which run out: another worker takes them.
            for task in [*self._carriers, *(lane.task for lane in self._lanes.values())]:
                if task is not None:
                    task.cancel()
            self._held.clear()
            self._lanes.clear()
            self._laneless.clear()

    async def _poll(self) -> None:
        while True:
            try:
                claimed = await self._claim()
            except Exception:
                log.exception("outbox: a round of %s failed; trying again shortly", self.kinds)
                claimed = []
            for attempt in claimed:
                self._dispatch(attempt)
            if claimed and self.held < MAX_HELD:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_every_s)

    async def deliver_due(self) -> int:
        """One round: claim what is due now and carry it out. Returns how many were tried,
        once all of them have ended."""
        claimed = await self._claim()
        under_way = [self._dispatch(attempt) for attempt in claimed]
        for attempt in under_way:
            await attempt.ended.wait()
        return len(claimed)

    async def _claim(self) -> list[Attempt]:
        room = min(BATCH, MAX_HELD - self.held)
        if room <= 0:
            return []
        self._rounds += 1
        token = f"{self.owner}:{self._rounds}"
        now = self.clock()
        claimed = await self.db.run(
            lambda session: repo.claim_outbox(
                session=session,
                kinds=self.kinds,
                now=now,
                until=now + LEASE,
                token=token,
                limit=room,
                in_order=self.in_order,
            )
        )
        return [Attempt(c.item, token, unsure=c.unsure) for c in claimed]

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            try:
                await self.renew()
            except Exception:
                log.exception("outbox: leases of %s could not be renewed", self.kinds)

    async def renew(self) -> None:
        """Extend the lease of every attempt not ended; one another worker took is marked lost."""
        held = {item_id: attempt.token for item_id, attempt in self._held.items()}
        if not held:
            return
        until = self.clock() + LEASE
        kept = await self.db.run(
            lambda session: repo.renew_outbox(session=session, held=held, until=until)
        )
        for item_id in held.keys() - kept:
            attempt = self._held.get(item_id)
            if attempt is not None and attempt.token == held[item_id]:
                log.warning("outbox: item %s was taken by another worker", item_id)
                attempt.lost = True

    # --- lanes and carriers ----------------------------------------------------------------------

    def _dispatch(self, attempt: Attempt) -> Attempt:
        """Start `attempt` in its lane (or among the carriers); returns the attempt under way."""
        running = self._held.get(attempt.id)
        if running is not None:
            # Already under way here, and its lease ran out before it was renewed (a clock
            # that jumped, a stalled loop): this worker claimed it again, so the attempt under
            # way holds the new lease rather than a second attempt starting.
            running.token = attempt.token
            return running
        self._held[attempt.id] = attempt
        name = self.lane_of(attempt.item)
        if name is None:
            self._laneless.append(attempt)
            if len(self._carriers) < self.concurrency:
                task = asyncio.create_task(self._carry_laneless(), name="outbox:carrier")
                self._carriers.add(task)
                task.add_done_callback(self._carriers.discard)
            return attempt
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane(name)
        lane.waiting.append(attempt)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._carry_lane(lane), name=f"outbox:lane:{name}")
        return attempt

    async def _carry_laneless(self) -> None:
        while self._laneless:
            await self._attempt(self._laneless.popleft(), lane=None)

    async def _carry_lane(self, lane: _Lane) -> None:
        try:
            while lane.waiting:
                wait = lane.free_at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                attempt = lane.waiting[0]
                held = await self._attempt(attempt, lane=lane)
                if held is None:
                    lane.waiting.popleft()
        finally:
            if not lane.waiting and self._lanes.get(lane.name) is lane:
                del self._lanes[lane.name]

    def _slot(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots

    # --- one attempt ---------------------------------------------------------------------------

    async def carry_out(self, attempt: Attempt) -> None:
        raise NotImplementedError

    def describe(self, attempt: Attempt) -> str:
        """The item as the log names it: enough for a person to find what it was for."""
        return f"item {attempt.id} ({attempt.item.kind})"

    def failure(self, exc: Exception) -> Retry | Hold | GiveUp | None:
        """What an error from `carry_out` means: Retry, Hold, GiveUp, or None for a bug (logged,
        and the item is tried again a lease's length later)."""
        return None

    def finished(
        self, session: Session, attempt: Attempt, *, error: str | None, gave_up: bool
    ) -> None:
        """Called in the transaction that ends an attempt (to record more than the item)."""

    async def after_end(self, attempt: Attempt, *, error: str | None, gave_up: bool) -> None:
        """Called once the attempt's end is committed (for work of its own transaction), also
        when its item was taken by another attempt meanwhile (never `gave_up` then)."""

    async def _attempt(self, attempt: Attempt, *, lane: _Lane | None) -> float | None:
        """Carry out one attempt and end it. Returns the seconds its lane must wait before the
        attempt is tried again (a Hold), or None once it has ended."""
        if attempt.lost:
            self._end_quietly(attempt)
            return None
        error: str | None = None
        retry_at: datetime | None = None
        unsure = False
        try:
            async with self._slot():
                await self.carry_out(attempt)
        except Exception as exc:
            outcome = exc if isinstance(exc, Retry | Hold | GiveUp) else self.failure(exc)
            if isinstance(outcome, Hold) and lane is not None:
                await self._hold(lane, outcome)
                return outcome.after
            if isinstance(outcome, Hold):
                outcome = Retry(str(outcome), after=outcome.after)
            if outcome is None:
                log.exception(
                    "outbox: item %s (%s) failed unexpectedly", attempt.id, attempt.item.kind
                )
                outcome = Retry(
                    f"failed unexpectedly ({type(exc).__name__}); see the log",
                    after=LEASE.total_seconds(),
                    unsure=True,
                )
            error = str(outcome)
            # An earlier attempt's doubt stays until one succeeds: a refusal now does not say
            # that its call did not take effect then.
            unsure = isinstance(outcome, Retry) and (outcome.unsure or attempt.unsure)
            self.failed[attempt.item.kind] += 1
            tries = attempt.item.attempts
            if isinstance(outcome, Retry) and (
                self.max_attempts is None or tries < self.max_attempts
            ):
                wait = max(backoff(tries), outcome.after or 0.0)
                retry_at = self.clock() + timedelta(seconds=wait)
            else:
                if isinstance(outcome, Retry):
                    error = f"gave up after {tries} attempts; the last: {error}"
                log.warning("outbox: %s given up: %s", self.describe(attempt), error)
        finally:
            if lane is not None and "paced_at" in attempt.notes:
                lane.free_at = max(lane.free_at, time.monotonic() + self.pace_s)
        gave_up = error is not None and retry_at is None
        now = self.clock()
        paced_at = attempt.notes.get("paced_at")

        def end(session: Session) -> bool:
            mine = repo.finish_outbox(
                session=session,
                item_id=attempt.id,
                token=attempt.token,
                now=now,
                error=error,
                retry_at=retry_at,
                unsure=unsure,
            )
            self.finished(session, attempt, error=error, gave_up=gave_up and mine)
            if lane is not None and isinstance(paced_at, datetime):
                repo.pace_lane(
                    session=session,
                    lane=lane.name,
                    not_before=paced_at + timedelta(seconds=self.pace_s),
                )
            return mine

        try:
            mine = await self.db.run(end, quick=True)
            if not mine:
                log.warning("outbox: item %s was taken by another worker", attempt.id)
        except Exception:
            # The database, say: the lease runs out and the item is tried again.
            log.exception("outbox: item %s (%s) could not be ended", attempt.id, attempt.item.kind)
            self._end_quietly(attempt)
            return None
        try:
            if error is None and mine:
                self.delivered += 1
            if gave_up and mine:
                self.given_up[attempt.item.kind] += 1
            # Also for an attempt whose item was taken meanwhile: what it did is its to undo
            # (a second copy of a card), though the item is no longer its to give up.
            await self.after_end(attempt, error=error, gave_up=gave_up and mine)
        except Exception:
            log.exception("outbox: after item %s (%s) ended", attempt.id, attempt.item.kind)
        finally:
            self._end_quietly(attempt)
        return None

    def _end_quietly(self, attempt: Attempt) -> None:
        if self._held.get(attempt.id) is attempt:
            del self._held[attempt.id]
        attempt.ended.set()

    async def _hold(self, lane: _Lane, hold: Hold) -> None:
        """Slack said when to come back: nothing goes to this lane before then, from any
        replica (the lane's pace in the database) or from this one (its lane waits)."""
        lane.free_at = max(lane.free_at, time.monotonic() + hold.after)
        log.info("outbox: lane %s held for %.0f s: %s", lane.name, hold.after, hold)
        until = self.clock() + timedelta(seconds=hold.after)
        try:
            await self.db.run(
                lambda session: repo.pace_lane(session=session, lane=lane.name, not_before=until)
            )
        except Exception:
            log.exception("outbox: the hold on lane %s could not be shared", lane.name)


def leased_at_birth(row: dict[str, Any], now: datetime, token: str) -> dict[str, Any]:
    """An outbox row to insert already leased to the worker whose token this is (see `take`):
    its first attempt is under way from the moment it is committed."""
    return {
        **row,
        "next_attempt_at": now + LEASE,
        "attempts": row["attempts"] + 1,
        "lease_token": token,
    }


class Taker(Protocol):
    """A running worker, as the service sees it: what it takes over at commit."""

    @property
    def birth_token(self) -> str: ...

    @property
    def in_order(self) -> bool: ...

    def take(self, items: Sequence[OutboxRow]) -> None: ...


@dataclass
class Queued:
    """The outbox items one transaction queues. Those of a kind a worker running in this
    process carries out (`takers`) are inserted leased to it and handed over once committed;
    the rest wait for a poll (`polled` counts them), as do those of a lane kept in order (only
    the claim knows whether an earlier item of the lane is under way on another replica)."""

    takers: Mapping[str, Taker]
    clock: Callable[[], datetime]
    taken: list[tuple[Taker, OutboxRow]] = field(default_factory=list)
    polled: int = 0

    def add(self, session: Session, rows: Sequence[dict[str, Any]]) -> None:
        now = self.clock()
        leased: list[tuple[Taker, dict[str, Any]]] = []
        prepared: list[dict[str, Any]] = []
        for row in rows:
            taker = self.takers.get(row["kind"])
            ordered = taker is not None and taker.in_order and row.get("lane") is not None
            if taker is not None and not ordered and row["next_attempt_at"] <= now:
                row = leased_at_birth(row, now, taker.birth_token)
                leased.append((taker, row))
            else:
                self.polled += 1
            prepared.append(row)
        ids = repo.insert_outbox(session=session, rows=prepared)
        self.taken += [
            (taker, OutboxRow(**row, id=ids[row["dedupe_key"]])) for taker, row in leased
        ]

    def hand_over(self) -> None:
        """After commit: each worker gets its items, in the order they were queued."""
        by_taker: dict[int, tuple[Taker, list[OutboxRow]]] = {}
        for taker, item in self.taken:
            by_taker.setdefault(id(taker), (taker, []))[1].append(item)
        for taker, items in by_taker.values():
            taker.take(items)


def backoff(attempts: int) -> float:
    """Seconds before the next try: doubling from one, at most five minutes, with jitter."""
    return min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)
