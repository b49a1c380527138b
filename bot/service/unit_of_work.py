"""The unit of work: every write of the service layer is one transaction run through it.

    view = await uow.write(work)                  # work(tx) loads, decides and saves
    move = await uow.routing(work, "lead L-1")    # the same, run again while it loses a race

`work` is synchronous (`Database.run`: the whole transaction in one go) and takes a
`Transaction`: the session that storage's functions take, the outbox items it queues (`queue`),
and, in a routing transaction, the routing state it decides on (`world`) with the routing scopes
it holds. What it queued goes to work once it commits: items of a kind a worker running here
carries out are handed to it, the others wake the workers' poll, and the offers intake made are
told to `on_new_offers`. Reads go through `read` or `reading`, beside the writer.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.outbox import Queued, Taker
from bot.service.group_commit import GroupCommit
from bot.service.views import NewOffer
from bot.service.world import NO_GUESS, Guess, World
from routing.model import Lead
from routing.performance import OutcomeCounts
from routing.policy import Policy
from routing.scope import reps_scope
from storage import repository as repo
from storage.db import Database, TransientDatabaseError
from storage.locks import ScopeBusy, ScopeLocks, scope_locks

T = TypeVar("T")

MAX_ATTEMPTS = 12  # tries of a transaction that keeps losing races, before it gives up


@dataclass
class Tally:
    """Counted for /metrics, tests and benchmarks: routing transactions committed, and rolled
    back to run again (`conflicts`); decisions committed, thrown away with a rolled-back
    transaction (`decisions_redone`), made again in their transaction after taking the scopes
    they landed in (`decisions_replanned`); scope locks found held elsewhere."""

    transactions: int = 0
    conflicts: int = 0
    decisions: int = 0
    decisions_redone: int = 0
    decisions_replanned: int = 0
    lock_waits: int = 0
    # Compare-and-sets of a rotation or a rep's count that found it changed: on PostgreSQL
    # the scopes make these impossible while every replica reads the same policy.
    state_conflicts: int = 0
    lock_wait_seconds: float = 0.0
    sla_misses: int = 0  # offers the sweep found past their SLA, unclaimed
    contact_misses: int = 0  # claimed leads the sweep found untouched by their contact SLA


@dataclass
class Transaction:
    """One try of one write transaction, as its synchronous `work` sees it."""

    session: Session
    queued: Queued
    # The offers made, for `on_new_offers`; None when nobody listens (then none is recorded).
    new_offers: list[NewOffer] | None
    guess: Guess | None = None  # the state as the last routing transaction left it
    first: frozenset[str] = frozenset()  # scopes a lost attempt found busy: taken first
    worlds: list[World] = field(default_factory=list)  # the routing state of each step
    outcomes: Mapping[int, OutcomeCounts] = field(default_factory=dict)  # by window (seconds)
    locks: ScopeLocks | None = field(init=False)  # None where transactions never overlap

    def __post_init__(self) -> None:
        self.locks = scope_locks(self.session)

    def queue(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue outbox items, committed with everything else the transaction writes."""
        self.queued.add(self.session, rows)

    def carried_out_here(self, kind: str) -> bool:
        """Whether a worker running in this process carries out outbox items of `kind`."""
        return kind in self.queued.takers

    def offered(self, offers: Sequence[NewOffer]) -> None:
        if self.new_offers is not None:
            self.new_offers.extend(offers)

    def hold_first(self, scopes: Iterable[str]) -> None:
        """Hold these routing scopes before anything else: decisions under way for them finish
        first, and none starts until this transaction ends."""
        if self.locks is not None:
            self.locks.take_first(scopes)

    def world(
        self,
        policy: Policy,
        leads: Sequence[Lead],
        *,
        now: datetime,
        plan: bool = False,
        reps: Iterable[str] = (),
    ) -> World:
        """The routing state to decide `leads` on, with the scopes of `reps` held first and, if
        `plan`, those `leads` are expected to need (see `bot.service.world`)."""
        world = World.load(
            self.session,
            policy,
            leads,
            self.locks,
            guess=self.guess if plan else None,
            now=now,
            first=reps_scope(policy, reps) | self.first,
            outcomes=self.outcomes,
        )
        self.worlds.append(world)
        return world


@dataclass
class UnitOfWork:
    db: Database
    policy: Callable[[], Policy]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Cards are posted (by this process or, once Slack is configured, by another): an offer's SLA
    # runs from its card's post, not from the decision, so nobody is charged for a card they
    # could not see. `bootstrap` always sets it; False is for tests of the SLA alone.
    cards: bool = False
    # The CRMs whose credentials are configured: owner write-backs are queued for these only
    # (one for any other could never be carried out, and would sit in the outbox for ever).
    crms: Collection[str] = frozenset()
    # What amounts are in (`LEADROUTER_CURRENCY`): a reported amount in another is left out of
    # what is stored, and noted (`bot.service.outcomes`). None: all in one, unnamed.
    currency: str | None = None
    # Called after each commit that queued outbox items left for a poll, so the workers look
    # at once instead of at their next poll.
    on_outbox: Callable[[], None] | None = None
    # The workers running in this process, by the kinds they carry out: items of those kinds
    # skip the poll (see `bot.outbox.Queued`).
    takers: Callable[[], Mapping[str, Taker]] = dict
    # Told of each offer intake made, once committed (and before its card is handed over).
    on_new_offers: Callable[[Sequence[NewOffer]], None] | None = None
    tally: Tally = field(default_factory=Tally)
    group_commit: GroupCommit = field(default_factory=GroupCommit)
    # The routing state as the last routing transaction read it: what the next one guesses its
    # scopes from (see `bot.service.world`).
    guess: Guess = field(default=NO_GUESS, repr=False)
    # Outcome counts by window (seconds) for `distribution: performance`, kept up to date by
    # `bot.service.performance.refresh_outcomes`: read beside the writer, never per decision.
    outcomes: Mapping[int, OutcomeCounts] = field(default_factory=dict, repr=False)

    async def write(self, work: Callable[[Transaction], T], *, quick: bool = False) -> T:
        """`work` in one write transaction. `quick`: a few statements over a few rows, which
        SQLite may run on the event loop's thread (`Database.run`)."""
        return await self._write(work, quick=quick, began=None)

    async def routing(
        self, work: Callable[[Transaction], T], what: str, *, quick: bool = False
    ) -> T:
        """`work` in a transaction that routes, again with fresh state for as long as it loses a
        race (up to MAX_ATTEMPTS). On PostgreSQL its decisions hold their scopes, so a race is
        lost only to a scope found busy out of order; the next attempt then takes every scope it
        wanted first and waits for them instead. First, but after any row `work` locks before it
        loads its state: every transaction takes rows before scopes, so none waits for a row
        while holding a scope another waits for."""
        first: frozenset[str] = frozenset()
        for attempt in range(MAX_ATTEMPTS):
            tried: list[Transaction] = []
            try:
                result = await self._write(work, quick=quick, began=tried.append, first=first)
                worlds = tried[-1].worlds
                self.tally.transactions += 1
                self.tally.decisions += sum(world.decided for world in worlds)
                self.tally.decisions_replanned += sum(world.replanned for world in worlds)
                if worlds and worlds[-1].locks is not None:
                    self.guess = worlds[-1].guess
                return result
            except ScopeBusy as busy:
                self._lost(tried)
                first = busy.wanted
            except IntegrityError as exc:
                # A concurrent request stored one of these leads first: the next attempt finds
                # it stored and answers with it. Any other violation would only repeat.
                if not repo.repeated_external_id(exc):
                    raise
                self._lost(tried)
                await _backoff(attempt)
            except (repo.Conflict, TransientDatabaseError) as exc:
                if isinstance(exc, repo.StateChanged):
                    self.tally.state_conflicts += 1
                self._lost(tried)
                await _backoff(attempt)
            finally:
                for tx in tried:
                    if tx.locks is not None:
                        self.tally.lock_waits += tx.locks.waits
                        self.tally.lock_wait_seconds += tx.locks.waited_s
        raise RuntimeError(f"{what}: could not save a decision after {MAX_ATTEMPTS} tries")

    async def retrying(self, work: Callable[[Transaction], T]) -> T:
        """`work` in one write transaction, run again if the database rolls it back on its own
        (a deadlock, say), up to MAX_ATTEMPTS."""
        for attempt in range(MAX_ATTEMPTS - 1):
            try:
                return await self.write(work)
            except TransientDatabaseError:
                await _backoff(attempt)
        return await self.write(work)

    async def read(self, work: Callable[[Session], T]) -> T:
        """`work` (storage's synchronous reads) on a reading session, beside the writer."""
        async with self.db.reading() as session:
            return await session.run_sync(work)

    def reading(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session for storage's reads that are coroutines."""
        return self.db.reading()

    def outbox_written(self) -> None:
        """Outbox items were committed outside `write` (queued once by key): look at once."""
        if self.on_outbox is not None:
            self.on_outbox()

    async def aclose(self) -> None:
        """Let leads already waiting for the group commit be routed, then stop."""
        await self.group_commit.aclose()

    async def _write(
        self,
        work: Callable[[Transaction], T],
        *,
        quick: bool,
        began: Callable[[Transaction], None] | None,
        first: frozenset[str] = frozenset(),
    ) -> T:
        queued = Queued(self.takers(), self.clock)
        made: list[NewOffer] | None = [] if self.on_new_offers is not None else None

        def transaction(session: Session) -> T:
            tx = Transaction(
                session, queued, made, guess=self.guess, first=first, outcomes=self.outcomes
            )
            if began is not None:
                began(tx)
            return work(tx)

        result = await self.db.run(transaction, quick=quick)
        if made and self.on_new_offers is not None:
            self.on_new_offers(made)
        queued.hand_over()
        if queued.polled:
            self.outbox_written()
        return result

    def _lost(self, tried: Sequence[Transaction]) -> None:
        self.tally.conflicts += 1
        self.tally.decisions_redone += sum(w.decided for tx in tried for w in tx.worlds)


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
