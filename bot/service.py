"""The service layer: one method per use case, each one transaction.

Every entry point (HTTP, Slack, jobs, the CLI) calls these and nothing below them. A use case
loads the state the pure router needs, calls it, and saves the outcome, the audit trail and the
side effects to carry out (the outbox) in the same transaction, so a lead is never half-routed.
Slack and the CRMs are never called from here: they are reached through the outbox, after commit.

Still one class of 1,400 lines: splitting it into use-case modules over a unit of work is the
next piece of work planned for it, not done piecemeal here.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import (
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.logs import about
from bot.outbox import Queued, Taker
from bot.world import NO_GUESS, Guess, World
from routing.decision import Decision
from routing.durations import format_duration
from routing.model import Account, Lead, Outcome
from routing.overrides import assigned_by_hand, queued_after_misses
from routing.policy import Policy
from routing.scope import rep_scope, reps_scope
from routing.working_time import sla_deadline
from storage import repository as repo
from storage.db import Database, TransientDatabaseError
from storage.locks import ScopeBusy, ScopeLocks, scope_locks
from storage.models import (
    AuditEventRow,
    DecisionRow,
    LeadRow,
    LeadStatus,
    OfferRow,
    OfferStatus,
    ProcessedRequestRow,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
T = TypeVar("T")
GROUP_COMMIT_MAX = 200  # leads routed in one group-commit transaction at most
QUICK_LEADS = 10  # leads routed in a transaction quick enough for the event loop's thread
SWEEP_BATCH = 500  # overdue offers reassigned per transaction

_STATUS_OF_OUTCOME = {
    Outcome.ASSIGNED: LeadStatus.OFFERED,
    Outcome.QUEUED: LeadStatus.QUEUED,
    Outcome.NURTURE: LeadStatus.NURTURE,
    Outcome.DISQUALIFIED: LeadStatus.DISQUALIFIED,
}


class ServiceError(Exception):
    """A request the service refuses, with a sentence for the person who made it."""


class UnknownLead(ServiceError):
    pass


class NotAllowed(ServiceError):
    pass


@dataclass(frozen=True, slots=True)
class LeadView:
    """What callers see of a lead: the decision as `POST /leads` returns it."""

    id: str
    status: str
    rep: str | None
    team: str | None
    rule: str | None
    reason: str
    sla_due_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "rep": self.rep,
            "team": self.team,
            "rule": self.rule,
            "reason": self.reason,
            "sla_due_at": self.sla_due_at.isoformat() if self.sla_due_at else None,
        }


@dataclass(frozen=True, slots=True)
class IntakeResult:
    created: bool
    lead: LeadView


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claimed: bool  # True for the one click that claimed it
    holder: str | None  # who holds the lead now
    lead: LeadView


@dataclass(frozen=True, slots=True)
class Move:
    """A lead that moved from one rep to another (or to the queue) after a reject, OOO or SLA."""

    lead_id: str
    from_rep: str
    to: LeadView


@dataclass
class _Attempt(Generic[T]):
    """One try of a routing transaction (`Service._routing`): the scopes it takes first, and
    what it held and decided, for the counts."""

    work: Callable[[Session], T]
    first: frozenset[str]
    worlds: list[World] = field(default_factory=list)
    locks: ScopeLocks | None = None

    def __call__(self, session: Session) -> T:
        self.locks = scope_locks(session)
        session.info[_LOCKS] = self.locks
        session.info[_FIRST] = self.first
        session.info[_WORLDS] = self.worlds
        return self.work(session)


@dataclass
class Service:
    db: Database
    policy: Callable[[], Policy]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Counted for /metrics, tests and benchmarks: routing transactions committed, and rolled
    # back to run again (`conflicts`); decisions committed, thrown away with a rolled-back
    # transaction (`decisions_redone`), made again in their transaction after taking the
    # scopes they landed in (`decisions_replanned`); scope locks found held elsewhere.
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
    # The routing state as the last transaction read it: what the next one guesses its scopes
    # from (see `bot.world`).
    _guess: Guess = field(default=NO_GUESS, repr=False)
    # Called after each commit that queued outbox items left for a poll, so the workers look
    # at once instead of at their next poll.
    on_outbox: Callable[[], None] | None = None
    # The workers running in this process, by the kinds they carry out: items of those kinds
    # skip the poll (see `bot.outbox.Queued`).
    takers: Callable[[], Mapping[str, Taker]] = dict
    # Told of each offer intake made, once committed (and before its card is handed over).
    on_new_offers: Callable[[Sequence[NewOffer]], None] | None = None
    # Cards are posted (by this process or, once Slack is configured, by another): an offer's SLA
    # runs from its card's post, not from the decision, so nobody is charged for a card they
    # could not see. `bootstrap` always sets it; False is for tests of the SLA alone.
    cards: bool = False
    # The CRMs whose credentials are configured: owner write-backs are queued for these only
    # (one for any other could never be carried out, and would sit in the outbox for ever).
    crms: Collection[str] = frozenset()
    _waiting: list[tuple[Lead, asyncio.Future[IntakeResult]]] = field(default_factory=list)
    _committer: asyncio.Task[None] | None = None

    # --- intake ------------------------------------------------------------------------------

    async def intake(self, lead: Lead) -> IntakeResult:
        """Route a new lead, exactly once per external id.

        Group commit: leads arriving while a routing transaction is under way wait for it to
        end and are then routed together, in arrival order, in the next one. A transaction
        costs about the same for one lead or fifty (it is mostly round trips to the database),
        so under load each lead waits at most about one transaction instead of queueing
        behind every earlier one.
        """
        future: asyncio.Future[IntakeResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((lead, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
            # Also when it is cancelled before it ever ran (its own handler never starts). Only
            # then: after a normal end, leads queued meanwhile belong to the next committer.
            self._committer.add_done_callback(_fail_if_cancelled(self))
        return await asyncio.shield(future)

    async def _commit_waiting(self) -> None:
        group: list[tuple[Lead, asyncio.Future[IntakeResult]]] = []
        try:
            while self._waiting:
                group = self._waiting[:GROUP_COMMIT_MAX]
                self._waiting = self._waiting[GROUP_COMMIT_MAX:]
                try:
                    results = await self.intake_many([lead for lead, _ in group])
                except Exception:
                    # One lead must not fail the others: route each of the group on its own.
                    for lead, future in group:
                        try:
                            _settle(future, (await self.intake_many([lead]))[0])
                        except Exception as exc:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for (_lead, future), result in zip(group, results, strict=True):
                    _settle(future, result)
        except BaseException:
            # Cancelled (shutdown) or failed outright: nobody may wait for an answer forever.
            self._waiting = [*group, *self._waiting]
            self._fail_waiting()
            raise

    def _fail_waiting(self) -> None:
        stranded, self._waiting = self._waiting, []
        for _lead, future in stranded:
            if not future.done():
                future.set_exception(ServiceError("leadrouter is shutting down; send it again"))

    async def aclose(self) -> None:
        """Let leads already waiting for the group commit be routed, then stop."""
        if self._committer is not None and not self._committer.done():
            await self._committer

    async def intake_many(self, leads: Sequence[Lead]) -> list[IntakeResult]:
        """Route a batch of leads in one transaction, in order, exactly once per external id.

        The state is loaded once and carried from lead to lead in memory, as `simulate` does, so
        a batch costs a handful of queries rather than a dozen per lead. An id already stored,
        or repeated within the batch, answers with the stored (or first) decision.
        """
        results = await self._routing(
            lambda session: self._intake_in(session, leads),
            f"{len(leads)} new leads",
            quick=len(leads) <= QUICK_LEADS,
        )
        if log.isEnabledFor(logging.INFO):
            for result in results:
                if result.created:
                    view = result.lead
                    log.info("lead %s routed: %s", view.id, _routed(view), extra=about(view.id))
        return results

    async def _write(self, work: Callable[[Session], T], *, quick: bool = False) -> T:
        """`work` in one write transaction (`Database.run`). The outbox items it queues
        (`_queue`) go to work once it commits, and the offers it made to `on_new_offers`."""
        queued = Queued(self.takers(), self.clock)
        made: list[NewOffer] = []

        def queueing(session: Session) -> T:
            session.info[_QUEUED] = queued
            session.info[_NEW_OFFERS] = made
            return work(session)

        result = await self.db.run(queueing, quick=quick)
        if made and self.on_new_offers is not None:
            self.on_new_offers(made)
        queued.hand_over()
        if queued.polled:
            self._outbox_written()
        return result

    async def _routing(self, work: Callable[[Session], T], what: str, *, quick: bool = False) -> T:
        """Run `work` in a transaction that routes, again with fresh state for as long as it
        loses a race (up to MAX_ATTEMPTS). On PostgreSQL its decisions hold their scopes
        (`bot.world`), so a race is lost only to a scope found busy out of order; the next
        attempt then takes every scope it wanted first and waits for them instead. First, but
        after any row `work` locks before it loads its state: every transaction takes rows
        before scopes, so none waits for a row while holding a scope another waits for."""
        first: frozenset[str] = frozenset()
        for attempt in range(MAX_ATTEMPTS):
            tried = _Attempt(work, first)
            try:
                result = await self._write(tried, quick=quick)
                self.transactions += 1
                self.decisions += sum(world.decided for world in tried.worlds)
                self.decisions_replanned += sum(world.replanned for world in tried.worlds)
                if tried.worlds and tried.worlds[-1].locks is not None:
                    self._guess = tried.worlds[-1].guess
                return result
            except ScopeBusy as busy:
                self._lost(tried.worlds)
                first = busy.wanted
            except IntegrityError as exc:
                # A concurrent request committed one of these ids first: the next attempt finds
                # it stored and answers with it. Any other violation would only repeat.
                if "external_id" not in str(exc.orig):
                    raise
                self._lost(tried.worlds)
                await self._backoff(attempt)
            except (repo.Conflict, TransientDatabaseError) as exc:
                if isinstance(exc, repo.StateChanged):
                    self.state_conflicts += 1
                self._lost(tried.worlds)
                await self._backoff(attempt)
            finally:
                if tried.locks is not None:
                    self.lock_waits += tried.locks.waits
                    self.lock_wait_seconds += tried.locks.waited_s
        raise RuntimeError(f"{what}: could not save a decision after {MAX_ATTEMPTS} tries")

    def _lost(self, worlds: list[World]) -> None:
        self.conflicts += 1
        self.decisions_redone += sum(world.decided for world in worlds)

    def _world(
        self,
        session: Session,
        policy: Policy,
        leads: Sequence[Lead],
        *,
        plan: bool = False,
        reps: Iterable[str] = (),
    ) -> World:
        """The routing state for this routing transaction (see `_routing`), with the scopes
        of `reps` held first and, if `plan`, those `leads` are expected to need."""
        world = World.load(
            session,
            policy,
            leads,
            session.info.get(_LOCKS),
            guess=self._guess if plan else None,
            now=self.clock(),
            first=reps_scope(policy, reps) | session.info.get(_FIRST, frozenset()),
        )
        session.info.setdefault(_WORLDS, []).append(world)
        return world

    def _intake_in(self, session: Session, leads: Sequence[Lead]) -> list[IntakeResult]:
        stored = repo.find_leads(session=session, external_ids=[lead.id for lead in leads])
        fresh: dict[str, Lead] = {}
        for lead in leads:
            if lead.id not in stored and lead.id not in fresh:
                fresh[lead.id] = lead
        views: dict[str, LeadView] = {}
        if fresh:
            policy = self.policy()
            now = self.clock()
            world = self._world(session, policy, list(fresh.values()), plan=True)
            decided = [(lead, world.route(lead, now, excluded={})) for lead in fresh.values()]
            rows = [_lead_values(lead, decision, now) for lead, decision in decided]
            ids = repo.insert_leads(session=session, rows=rows)
            saved = _save(
                session,
                [(ids[lead.id], lead.id, decision, 0) for lead, decision in decided],
                now,
                kind="routed",
                actor=None,
                policy=policy,
                cards=self.cards,
                crms=self.crms,
            )
            world.commit(session, now)
            if self.on_new_offers is not None:
                stored_due = {} if self.cards else saved.deadlines
                session.info[_NEW_OFFERS] += _new_offers(
                    rows, ids, saved.offer_ids, decided, now, stored_due
                )
            views = {
                lead.id: _view_of_decision(lead.id, decision, saved.deadlines.get(lead.id))
                for lead, decision in decided
            }
        results = []
        answered: set[str] = set()
        for lead in leads:
            if lead.id in stored:
                results.append(IntakeResult(False, self._view(session, stored[lead.id])))
            else:
                results.append(IntakeResult(lead.id not in answered, views[lead.id]))
                answered.add(lead.id)
        return results

    def _outbox_written(self) -> None:
        if self.on_outbox is not None:
            self.on_outbox()

    async def _backoff(self, attempt: int) -> None:
        await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))

    async def first_time(self, key: str) -> bool:
        """Remember a request's key; False if it was already seen (Slack retried it)."""
        row = ProcessedRequestRow(key=key[:255], at=self.clock())

        def remember(session: Session) -> None:
            session.add(row)
            session.flush()

        try:
            await self.db.run(remember)
        except IntegrityError:
            return False
        return True

    # --- reading ---------------------------------------------------------------------------

    def _view(self, session: Session, row: LeadRow) -> LeadView:
        offer = repo.current_offer(session=session, lead_id=row.id or 0)
        if offer is None or offer.status != OfferStatus.OFFERED:
            return _view_of(row, None)
        return _view_of(row, offer.sla_due_at or self._due_once_carded(offer))

    def _due_once_carded(self, offer: OfferRow) -> datetime | None:
        """The deadline an offer whose card is not out yet was answered with when it was made:
        the one it has if the card goes out at once (see `_save`)."""
        rep = self.policy().reps.get(offer.rep_id)
        if offer.card_posted_at is not None or not offer.sla_seconds or rep is None:
            return None
        return sla_deadline(self.policy().sla, rep, offer.offered_at, offer.sla_seconds)

    async def find(self, external_id: str) -> LeadView:
        async with self.db.reading() as session:
            return await session.run_sync(
                lambda sync: self._view(sync, self._lead(sync, external_id))
            )

    # --- claim, reject, out of office, reassign -----------------------------------------------

    async def claim(self, external_id: str, *, by: str) -> ClaimResult:
        """Claim the lead's open offer. Exactly one of any number of concurrent claims wins."""
        policy = self.policy()

        def work(session: Session) -> ClaimResult:
            row = self._lead(session, external_id)
            offer = repo.current_offer(session=session, lead_id=row.id or 0)
            if offer is None:
                raise NotAllowed(f"lead {external_id} is not offered to anyone ({row.status})")
            if offer.status == OfferStatus.CLAIMED:
                return ClaimResult(False, offer.rep_id, self._view(session, row))
            if offer.status != OfferStatus.OFFERED:
                raise NotAllowed(f"lead {external_id} is no longer offered ({row.status})")
            if by != offer.rep_id and by not in policy.managers:
                raise NotAllowed(
                    f"lead {external_id} is offered to {policy.rep_name(offer.rep_id)}, not to you"
                )
            now = self.clock()
            won = repo.change_offer_status(
                session=session,
                offer_id=offer.id or 0,
                from_status=OfferStatus.OFFERED.value,
                to_status=OfferStatus.CLAIMED.value,
                now=now,
            )
            if not won:
                # Someone else changed the offer first. Read what is there now (a new statement
                # sees their commit) rather than answer from the stale rows read above.
                session.refresh(row)
                current = repo.current_offer(session=session, lead_id=row.id or 0)
                if current is not None:
                    session.refresh(current)
                if current is not None and current.status == OfferStatus.CLAIMED:
                    return ClaimResult(False, current.rep_id, self._view(session, row))
                holder = policy.rep_name(current.rep_id) if current is not None else "nobody"
                raise NotAllowed(f"lead {external_id} was moved meanwhile; it is with {holder} now")
            row.status, row.updated_at = LeadStatus.CLAIMED.value, now
            repo.add_audit(
                session=session,
                lead_id=row.id,
                at=now,
                kind="claimed",
                actor=by,
                data={"rep": offer.rep_id},
            )
            side_effects = [_settle_card(offer.id or 0, now)]
            writes = row.crm_system in self.crms and row.crm_id
            if policy.crm.write_on == "claim" and row.crm_system and writes:
                side_effects.append(
                    owner_write(row.crm_system, row.id or 0, offer.rep_id, offer.id or 0, now)
                )
            _queue(session, side_effects)
            session.flush()
            return ClaimResult(True, offer.rep_id, _view_of(row, None))

        return await self._write(work)

    async def reject(self, external_id: str, *, by: str, reason: str) -> Move:
        """The offered rep declines: route the lead again without everyone who declined it."""

        def work(session: Session) -> Move:
            row = self._lead(session, external_id)
            offer = repo.current_offer(session=session, lead_id=row.id or 0)
            if offer is None or offer.status != OfferStatus.OFFERED or offer.rep_id != by:
                raise NotAllowed(f"lead {external_id} is not offered to you")
            return self._move(
                session,
                row,
                offer,
                to_status=OfferStatus.REJECTED,
                kind="rejected",
                actor=by,
                reason=reason,
            )

        return await self._routing(work, f"lead {external_id}")

    async def set_out_of_office(
        self, rep_id: str, *, until: datetime | None, reason: str | None, by: str | None = None
    ) -> list[Move]:
        """Mark a rep away (until None: until further notice); re-route their unclaimed offers."""
        policy = self.policy()
        if rep_id not in policy.reps:
            raise ServiceError(f"no rep with id {rep_id} in the policy")
        now = self.clock()
        if until is not None and until <= now:
            raise ServiceError("the end of an absence must be in the future")
        data = {"rep": rep_id, "until": until.isoformat() if until else None}
        await self._record_away(
            rep_id,
            away=True,
            since=now,
            until=until,
            reason=reason,
            actor=by or rep_id,
            kind="out_of_office",
            data=data,
        )
        return await self._move_all_of(rep_id, reason="out of office", kind="rep_out_of_office")

    async def import_accounts(
        self, accounts: Sequence[Account], *, crm_system: str | None = None
    ) -> tuple[int, int]:
        """Insert or replace accounts (and their name-matching keys). Returns (created, updated).

        Owners must be rep ids of the policy; an unknown owner is an error for the whole batch,
        so a typo never leaves accounts silently unowned."""
        policy = self.policy()
        unknown = sorted({a.owner for a in accounts if a.owner and a.owner not in policy.reps})
        if unknown:
            raise ServiceError(f"account owners not in the policy: {', '.join(unknown[:10])}")
        duplicates = len(accounts) - len({a.id for a in accounts})
        if duplicates:
            raise ServiceError(f"{duplicates} account ids appear more than once")
        now = self.clock()
        return await self.db.run(
            lambda session: repo.upsert_accounts(
                session=session, accounts=accounts, now=now, crm_system=crm_system
            )
        )

    # --- CRM intake and sync ----------------------------------------------------------------

    async def queue_crm_contacts(self, contact_ids: Sequence[str]) -> int:
        """Contacts HubSpot announced: queue each once to be fetched and routed (the webhook's
        answer must not wait on HubSpot's API). Returns how many were new."""
        now = self.clock()
        rows = [
            repo.outbox_values(
                kind=OutboxKind.HUBSPOT_CONTACT,
                dedupe_key=f"hubspot-contact:{contact_id}",
                payload={"contact_id": contact_id},
                now=now,
            )
            for contact_id in dict.fromkeys(contact_ids)
        ]
        queued = await self.db.run(
            lambda session: repo.queue_outbox_once(session=session, rows=rows)
        )
        self._outbox_written()
        return queued

    async def intake_from_crm(self, leads: Sequence[Lead]) -> tuple[int, int]:
        """Route leads read from a CRM, each record once even if it also came in another way
        (POST /leads with its crm_id; both the webhook and the poll). Returns (created,
        repeated)."""
        by_system: dict[str, list[str]] = {}
        for lead in leads:
            if lead.crm_system is not None and lead.crm_id:
                by_system.setdefault(lead.crm_system.value, []).append(lead.crm_id)
        async with self.db.reading() as session:
            stored = {
                (system, crm_id)
                for system, ids in by_system.items()
                for crm_id in await repo.stored_crm_ids(
                    session=session, crm_system=system, crm_ids=ids
                )
            }
        fresh = [
            lead
            for lead in leads
            if (lead.crm_system.value if lead.crm_system else None, lead.crm_id) not in stored
        ]
        results = await self.intake_many(fresh) if fresh else []
        created = sum(1 for result in results if result.created)
        return created, len(leads) - created

    async def crm_cursor(self, name: str) -> datetime | None:
        async with self.db.reading() as session:
            return await repo.crm_cursor(session=session, name=name)

    async def move_crm_cursor(self, name: str, watermark: datetime) -> None:
        now = self.clock()
        await self.db.run(
            lambda session: repo.move_crm_cursor(
                session=session, name=name, watermark=watermark, now=now
            )
        )

    async def set_back(self, rep_id: str, *, by: str | None = None) -> None:
        await self._record_away(
            rep_id,
            away=False,
            since=None,
            until=None,
            reason=None,
            actor=by or rep_id,
            kind="back",
            data={"rep": rep_id},
        )

    async def _record_away(
        self,
        rep_id: str,
        *,
        away: bool,
        since: datetime | None,
        until: datetime | None,
        reason: str | None,
        actor: str,
        kind: str,
        data: dict[str, Any],
    ) -> None:
        now = self.clock()

        def save(session: Session) -> None:
            # Holding the rep's scopes: a decision for any of their teams already under way
            # finishes first (so its offer is found and moved below) and none starts until
            # this commits (so none sees the rep as present).
            locks = scope_locks(session)
            if locks is not None:
                locks.take_first(rep_scope(self.policy(), rep_id))
            repo.set_away(
                session=session,
                rep_id=rep_id,
                away=away,
                since=since,
                until=until,
                reason=reason,
                now=now,
            )
            repo.add_audit(
                session=session,
                lead_id=None,
                at=now,
                kind=kind,
                actor=actor,
                reason=reason,
                data=data,
            )

        for attempt in range(MAX_ATTEMPTS):
            try:
                return await self.db.run(save)
            except TransientDatabaseError:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                await self._backoff(attempt)

    async def _move_all_of(self, rep_id: str, *, reason: str, kind: str) -> list[Move]:
        async with self.db.reading() as session:
            offers = await repo.unclaimed_offers_of_rep(session=session, rep_id=rep_id)
            ids = [offer.id for offer in offers if offer.id is not None]
        moves = []
        for offer_id in ids:
            move = await self.reassign(
                offer_id, reason=reason, kind=kind, expected_status=OfferStatus.OFFERED
            )
            if move is not None:
                moves.append(move)
        return moves

    async def reassign(
        self,
        offer_id: int,
        *,
        reason: str,
        kind: str = "reassigned",
        expected_status: OfferStatus = OfferStatus.OFFERED,
    ) -> Move | None:
        """Take an unclaimed offer away from its rep and route the lead again.

        Returns None when the offer was no longer open (claimed or moved meanwhile): the one
        caller that changes an offer's status is the one that moves it.
        """

        def work(session: Session) -> Move | None:
            offer = session.get(OfferRow, offer_id)
            if offer is None or offer.status != expected_status:
                return None
            row = session.get(LeadRow, offer.lead_id)
            assert row is not None
            return self._move(
                session,
                row,
                offer,
                to_status=OfferStatus.REASSIGNED,
                kind=kind,
                actor=None,
                reason=reason,
            )

        return await self._routing(work, f"offer {offer_id}")

    async def card_undeliverable(self, offer_id: int, why: str) -> Move | None:
        """The rep's card could not be delivered (Slack refused it for good): the lead moves on
        to the next rep who can take it (or the queue), and the rep is not charged a miss."""
        return await self.reassign(
            offer_id,
            reason=f"the card could not be delivered in Slack: {why}",
            kind=CARD_UNDELIVERABLE,
        )

    async def summarise_backlog(self) -> int:
        """At start, before any card goes out: tell each manager once, in one message, of the
        leads that arrived while no Slack app ran (imported, or routed by a server without
        Slack), whose cards are about to go out all at once. Returns the summaries queued.

        The backlog is the rep cards queued where no card delivery ran (see `card_items`), still
        to post or posted within BACKLOG_RECENT: a replica starting beside another one, or just
        after it, finds the same oldest card and so the same summary, queued once."""
        policy = self.policy()
        now = self.clock()
        async with self.db.reading() as session:
            items = await repo.outbox_items_since(
                session=session, kind=OutboxKind.OFFER_CARD, done_since=now - BACKLOG_RECENT
            )
            backlog = [item for item in items if item.payload.get(BACKLOG)]
            offers = await repo.offers_by_id(
                session=session, ids=[int(item.payload["offer_id"]) for item in backlog]
            )
        if not backlog:
            return 0
        reps: dict[str, Counter[str]] = {}
        for offer in offers.values():
            for manager in _managers_of(policy, offer.team):
                reps.setdefault(manager, Counter())[offer.rep_id] += 1
        oldest = backlog[0]
        rows = [
            repo.outbox_values(
                kind=OutboxKind.BACKLOG,
                dedupe_key=f"backlog:{manager}:{oldest.id}",
                payload={
                    "manager": manager,
                    "leads": sum(counts.values()),
                    "reps": dict(sorted(counts.items())),
                    "since": oldest.created_at.isoformat(),
                },
                now=now,
                lane=policy.slack_of(manager),
            )
            for manager, counts in sorted(reps.items())
        ]
        try:
            queued = await self.db.run(
                lambda session: repo.queue_outbox_once(session=session, rows=rows)
            )
        except IntegrityError:
            return 0  # a replica starting at the same moment queued them first
        if queued:
            log.info(
                "%d leads arrived while no Slack app ran; told %d managers", len(backlog), queued
            )
            self._outbox_written()
        return queued

    # --- the SLA watchdog ----------------------------------------------------------------------

    async def sweep(self, *, batch: int = SWEEP_BATCH) -> SweepResult:
        """Reassign every offer past its deadline and still unclaimed, then queue the reminders
        that are due. Batch by batch, each its own transaction: a sweep cut short (a restart)
        leaves whole batches done and the rest for the next sweep, never half a reassignment."""
        total = SweepResult()
        while True:
            done = await self._routing(
                lambda session: self._sweep_batch(session, batch), "the SLA sweep"
            )
            total = total + done
            self.sla_misses += done.expired
            if done.expired < batch:
                break
        total = total + SweepResult(reminded=await self._queue_reminders(batch))
        return total

    def _sweep_batch(self, session: Session, batch: int) -> SweepResult:
        now = self.clock()
        overdue = repo.overdue_offers(
            session=session, now=now, limit=batch, skip_locked=not self.db.is_sqlite
        )
        if not overdue:
            return SweepResult()
        offer_ids = [offer.id or 0 for offer in overdue]
        closed = repo.close_offers(
            session=session, offer_ids=offer_ids, to_status=OfferStatus.EXPIRED.value, now=now
        )
        if closed != len(overdue):
            raise repo.Conflict("an overdue offer was claimed or moved meanwhile")
        policy = self.policy()
        rows = repo.leads_by_id(session=session, ids=[o.lead_id for o in overdue])
        history = repo.offers_of_leads(session=session, lead_ids=list(rows))
        leads = {lead_id: _lead_of(row) for lead_id, row in rows.items()}
        world = self._world(
            session, policy, list(leads.values()), reps=[offer.rep_id for offer in overdue]
        )
        decided: list[tuple[int, str, Decision, int]] = []
        audits: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        result = SweepResult(expired=len(overdue))
        for offer in overdue:
            row, lead = rows[offer.lead_id], leads[offer.lead_id]
            world.release(offer.rep_id)
            earlier = [o for o in history.get(offer.lead_id, []) if o.id != offer.id]
            missed_by = [o.rep_id for o in earlier if o.status == OfferStatus.EXPIRED.value]
            missed_by.append(offer.rep_id)
            allowed = offer.sla_seconds or int(
                ((offer.sla_due_at or now) - offer.offered_at).total_seconds()
            )
            waited = format_duration(allowed)
            audits.append(
                {
                    "lead_id": row.id,
                    "at": now,
                    "kind": SLA_MISSED,
                    "actor": None,
                    "rule": None,
                    "reason": f"not claimed within {waited}",
                    "data": {"rep": offer.rep_id, "offer_id": offer.id},
                }
            )
            if len(missed_by) > policy.sla.max_reassignments:
                decision = queued_after_misses(lead, policy=policy, missed_by=missed_by)
            else:
                excluded = _excluded_reps([*earlier, offer], expired=offer.id)
                decision = world.route(lead, now, excluded=excluded)
            if decision.outcome is Outcome.QUEUED:
                result = result + SweepResult(queued=1)
                alerts.extend(_manager_alerts(policy, offer, row, now))
            else:
                result = result + SweepResult(reassigned=1)
            _redecide(row, lead, decision, now)
            decided.append((row.id or 0, row.external_id, decision, offer.reassignments + 1))
        settle = [_settle_card(offer_id, now) for offer_id in offer_ids]
        repo.insert_rows(session=session, table=AuditEventRow, rows=audits)
        _queue(session, [*settle, *alerts])
        _save(
            session,
            decided,
            now,
            kind="rerouted",
            actor=None,
            policy=policy,
            cards=self.cards,
            crms=self.crms,
        )
        world.commit(session, now)
        return result

    async def _queue_reminders(self, batch: int) -> int:
        """Queue a reminder for every open offer at half its SLA (when the policy asks)."""
        queued = 0
        while True:
            due, taken = await self._write(lambda session: self._remind(session, batch))
            queued += taken
            if due < batch:
                return queued

    def _remind(self, session: Session, batch: int) -> tuple[int, int]:
        """One batch of reminders: how many were due, and how many of those this queued."""
        now = self.clock()
        due = repo.due_reminders(
            session=session, now=now, limit=batch, skip_locked=not self.db.is_sqlite
        )
        taken = repo.clear_reminders(session=session, offer_ids=due)
        _queue(
            session,
            [
                repo.outbox_values(
                    kind=OutboxKind.REMINDER,
                    dedupe_key=f"reminder:{offer_id}",
                    payload={"offer_id": offer_id},
                    now=now,
                    lane=self.policy().slack_of(rep_id),
                )
                for offer_id, rep_id in taken
            ],
        )
        return len(due), len(taken)

    # --- manager digests -----------------------------------------------------------------------

    async def queue_digest(self, manager_id: str, *, due_at: datetime, runner: str) -> bool:
        """Queue `manager_id`'s digest for the tick at `due_at`, once however many replicas
        try: the first to record the tick queues it. False if another already had. The digest
        covers the time since the manager's previous tick (none before: the last day)."""
        if manager_id not in self.policy().managers:
            raise ServiceError(f"no manager with id {manager_id} in the policy")
        job = f"digest:{manager_id}"
        now = self.clock()

        def work(session: Session) -> bool:
            if not repo.take_job_run(
                session=session, job=job, due_at=due_at, runner=runner, now=now
            ):
                return False
            since = repo.previous_job_run(session=session, job=job, before=due_at)
            _queue(
                session,
                [
                    repo.outbox_values(
                        kind=OutboxKind.DIGEST,
                        dedupe_key=f"{job}:{due_at.isoformat()}",
                        payload={
                            "manager": manager_id,
                            "since": (since or due_at - timedelta(days=1)).isoformat(),
                            "until": due_at.isoformat(),
                        },
                        now=now,
                        lane=self.policy().slack_of(manager_id),
                    )
                ],
            )
            return True

        return await self._write(work)

    # --- the unmatched queue -------------------------------------------------------------------

    async def assign(self, external_id: str, *, rep_id: str, by: str) -> LeadView:
        """A manager offers a lead waiting in a queue to the rep of their choosing; from there
        it is an offer like any other (card, Claim, SLA)."""
        policy = self.policy()
        if by not in policy.managers:
            raise NotAllowed("only managers named in the policy may assign leads from the queue")
        if rep_id not in policy.reps:
            raise ServiceError(f"{rep_id} is not a rep in the policy")

        def work(session: Session) -> LeadView:
            # Locked, so that of two assigns at once (a double click, two managers) the second
            # finds the lead offered already.
            row = self._lead(session, external_id, lock=True)
            if row.status != LeadStatus.QUEUED.value:
                holder = f" ({policy.rep_name(row.rep_id)})" if row.rep_id else ""
                raise NotAllowed(
                    f"lead {external_id} is not in a queue: it is {row.status}{holder}"
                )
            now = self.clock()
            lead = _lead_of(row)
            decision = assigned_by_hand(lead, policy=policy, rep=rep_id, by=by, now=now)
            world = self._world(session, policy, [lead], reps=[rep_id])
            world.take(rep_id)
            _redecide(row, lead, decision, now)
            offers = repo.offers_of_lead(session=session, lead_id=row.id or 0)
            reassignments = offers[-1].reassignments + 1 if offers else 0
            repo.add_audit(
                session=session,
                lead_id=row.id,
                at=now,
                kind="assigned",
                actor=by,
                reason=f"to {policy.rep_name(rep_id)}",
                data={"rep": rep_id},
            )
            saved = _save(
                session,
                [(row.id or 0, row.external_id, decision, reassignments)],
                now,
                kind="rerouted",
                actor=by,
                policy=policy,
                cards=self.cards,
                crms=self.crms,
            )
            world.commit(session, now)
            due = saved.deadlines.get(row.external_id)
            return _view_of_decision(row.external_id, decision, due)

        return await self._routing(work, f"lead {external_id}")

    def _move(
        self,
        session: Session,
        row: LeadRow,
        offer: OfferRow,
        *,
        to_status: OfferStatus,
        kind: str,
        actor: str | None,
        reason: str,
    ) -> Move:
        now = self.clock()
        changed = repo.change_offer_status(
            session=session,
            offer_id=offer.id or 0,
            from_status=OfferStatus.OFFERED.value,
            to_status=to_status.value,
            now=now,
        )
        if not changed:
            raise repo.Conflict(f"offer {offer.id} changed meanwhile")
        excluded = self._excluded(session, row.id or 0)
        _queue(session, [_settle_card(offer.id or 0, now)])
        repo.add_audit(
            session=session,
            lead_id=row.id,
            at=now,
            kind=kind,
            actor=actor,
            reason=reason,
            data={"rep": offer.rep_id},
        )
        policy = self.policy()
        lead = _lead_of(row)
        world = self._world(session, policy, [lead], reps=[offer.rep_id])
        world.release(offer.rep_id)
        decision = world.route(lead, now, excluded=excluded)
        reassignments = offer.reassignments + (1 if to_status is OfferStatus.REASSIGNED else 0)
        _redecide(row, lead, decision, now)
        assert row.id is not None
        saved = _save(
            session,
            [(row.id, row.external_id, decision, reassignments)],
            now,
            kind="rerouted",
            actor=actor,
            policy=policy,
            cards=self.cards,
            crms=self.crms,
        )
        world.commit(session, now)
        view = _view_of_decision(row.external_id, decision, saved.deadlines.get(row.external_id))
        return Move(row.external_id, offer.rep_id, view)

    def _excluded(self, session: Session, lead_id: int) -> dict[str, str]:
        offers = repo.offers_of_lead(session=session, lead_id=lead_id)
        return _excluded_reps(offers, expired=None)

    def _lead(self, session: Session, external_id: str, *, lock: bool = False) -> LeadRow:
        row = repo.find_lead(session=session, external_id=external_id, lock=lock)
        if row is None:
            raise UnknownLead(f"no lead with id {external_id}")
        return row


def _save(
    session: Session,
    decided: Sequence[tuple[int, str, Decision, int]],
    now: datetime,
    *,
    kind: str,
    actor: str | None,
    policy: Policy,
    cards: bool,
    crms: Collection[str],
) -> _Saved:
    """Write what each decision (lead id, external id, decision, reassignments so far) says:
    the decision with its trace, the audit event, the offer and the outbox item, each table in
    one bulk insert. `cards`: the offer's SLA waits for its card (the deadline returned is the
    one it will have if the card goes out at once). `crms`: the CRMs owners are written to."""
    decisions: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    offers: list[dict[str, Any]] = []
    queued: list[dict[str, Any]] = []
    deadlines: list[tuple[int, datetime]] = []
    for lead_id, _external_id, decision, reassignments in decided:
        decisions.append(
            {
                "lead_id": lead_id,
                "at": now,
                "outcome": decision.outcome.value,
                "rep_id": decision.rep,
                "team": decision.team,
                "rule": decision.rule,
                "reason": decision.reason,
                "sla_seconds": decision.sla_seconds,
                "trace": [step._asdict() for step in decision.trace],
            }
        )
        audits.append(
            {
                "lead_id": lead_id,
                "at": now,
                "kind": kind,
                "actor": actor,
                "rule": decision.rule,
                "reason": decision.reason,
                "data": {
                    "outcome": decision.outcome.value,
                    "rep": decision.rep,
                    "team": decision.team,
                },
            }
        )
        if decision.outcome is Outcome.ASSIGNED and decision.rep is not None:
            seconds = decision.sla_seconds or 0
            rep = policy.reps[decision.rep]
            due = decision.sla_due_at or sla_deadline(policy.sla, rep, now, seconds)
            deadlines.append((lead_id, due))
            remind_at = None
            if policy.sla.remind_at_half and seconds >= 2:
                remind_at = sla_deadline(policy.sla, rep, now, seconds // 2)
            offers.append(
                {
                    "lead_id": lead_id,
                    "rep_id": decision.rep,
                    "team": decision.team,
                    "status": OfferStatus.OFFERED.value,
                    "offered_at": now,
                    "sla_due_at": None if cards else due,
                    "sla_seconds": seconds,
                    "reassignments": reassignments,
                    "remind_at": None if cards else remind_at,
                }
            )
        elif decision.outcome is Outcome.QUEUED:
            queued.append(
                repo.outbox_values(
                    kind=OutboxKind.QUEUE_POST,
                    dedupe_key=f"queue-post:{lead_id}:{reassignments}",
                    payload={
                        "lead_id": lead_id,
                        "queue": decision.queue,
                        "channel": decision.channel,
                    },
                    now=now,
                    lane=decision.channel,
                )
            )
    repo.insert_rows(session=session, table=DecisionRow, rows=decisions)
    repo.insert_rows(session=session, table=AuditEventRow, rows=audits)
    offer_ids = repo.insert_offers(session=session, rows=offers)
    decision_of = {lead_id: decision for lead_id, _e, decision, _r in decided}
    # No card delivery runs here (an import, a server without Slack): these cards will go out
    # later, all at once, and `Service.summarise_backlog` tells the managers of them.
    backlog = OutboxKind.OFFER_CARD not in session.info[_QUEUED].takers
    posts = []
    for lead_id, offer_id in sorted(offer_ids.items()):
        posts += card_items(policy, decision_of[lead_id], lead_id, offer_id, now, backlog=backlog)
    writes: list[dict[str, Any]] = []
    if policy.crm.write_on == "assign" and offer_ids:
        leads = repo.leads_by_id(session=session, ids=offer_ids)
        writes = [
            owner_write(
                lead.crm_system, lead_id, decision_of[lead_id].rep or "", offer_ids[lead_id], now
            )
            for lead_id, lead in sorted(leads.items())
            if lead.crm_system and lead.crm_system in crms and lead.crm_id
        ]
    _queue(session, [*posts, *queued, *writes])
    by_lead = {lead_id: external_id for lead_id, external_id, _d, _r in decided}
    return _Saved({by_lead[lead_id]: due for lead_id, due in deadlines}, offer_ids)


@dataclass(frozen=True, slots=True)
class _Saved:
    deadlines: dict[str, datetime]  # external id -> SLA deadline, for each lead offered
    offer_ids: dict[int, int]  # lead id -> the offer made


@dataclass(frozen=True, slots=True)
class NewOffer:
    """An offer intake just made, with what its card shows, so that the card can go out
    without reading back what this process has just written (see `on_new_offers`)."""

    offer_id: int
    external_id: str
    rep: str
    team: str | None
    facts: dict[str, Any]
    reason: str
    sla_seconds: int | None
    sla_due_at: datetime | None  # None while it waits for the card (see `Service.cards`)
    offered_at: datetime
    crm_system: str | None
    crm_id: str | None


def _new_offers(
    rows: Sequence[dict[str, Any]],
    ids: Mapping[str, int],
    offer_ids: Mapping[int, int],
    decided: Sequence[tuple[Lead, Decision]],
    now: datetime,
    deadlines: Mapping[str, datetime],
) -> list[NewOffer]:
    made = []
    for row, (lead, decision) in zip(rows, decided, strict=True):
        offer_id = offer_ids.get(ids[lead.id])
        if offer_id is None or decision.rep is None:
            continue
        made.append(
            NewOffer(
                offer_id=offer_id,
                external_id=lead.id,
                rep=decision.rep,
                team=decision.team,
                facts=row["facts"],
                reason=decision.reason,
                sla_seconds=decision.sla_seconds,
                sla_due_at=deadlines.get(lead.id),
                offered_at=now,
                crm_system=row["crm_system"],
                crm_id=row["crm_id"],
            )
        )
    return made


BACKLOG = "backlog"  # in a rep card's payload: queued where no card delivery ran
BACKLOG_RECENT = timedelta(minutes=5)  # see `Service.summarise_backlog`
SLA_MISSED = "sla_missed"  # audit kind: a rep let an offer's SLA lapse (data: rep, offer_id)
CARD_UNDELIVERABLE = "card_undeliverable"  # audit kind: the rep's card could not be posted


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int = 0  # offers found past their deadline
    reassigned: int = 0  # of those, leads offered to another rep
    queued: int = 0  # of those, leads sent to the queue (no rep left, or too many misses)
    reminded: int = 0  # reminders queued at half the SLA

    def __add__(self, other: SweepResult) -> SweepResult:
        return SweepResult(
            self.expired + other.expired,
            self.reassigned + other.reassigned,
            self.queued + other.queued,
            self.reminded + other.reminded,
        )


def _excluded_reps(offers: Sequence[OfferRow], *, expired: int | None) -> dict[str, str]:
    """Reps who must not get the lead again, and why (phrased to follow their name)."""
    why = {
        OfferStatus.REJECTED.value: "rejected this lead",
        OfferStatus.REASSIGNED.value: "already had this lead",
        OfferStatus.EXPIRED.value: "let this lead's SLA lapse",
    }
    excluded: dict[str, str] = {}
    for offer in offers:
        status = OfferStatus.EXPIRED.value if offer.id == expired else offer.status
        if status in why:
            excluded[offer.rep_id] = why[status]
    return excluded


def _manager_alerts(
    policy: Policy, offer: OfferRow, row: LeadRow, now: datetime
) -> list[dict[str, Any]]:
    """Outbox items telling the managers of the offer's team that its lead went to the queue;
    a team without a manager tells every manager in the policy, so nobody misses it."""
    return [
        repo.outbox_values(
            kind=OutboxKind.MANAGER_ALERT,
            dedupe_key=f"manager-alert:{offer.id}:{manager}",
            payload={"lead_id": row.id, "manager": manager, "offer_id": offer.id},
            now=now,
            lane=policy.slack_of(manager),
        )
        for manager in _managers_of(policy, offer.team)
    ]


def _managers_of(policy: Policy, team_name: str | None) -> list[str]:
    """Who hears of a team's leads: its manager; for a team without one (or a lead of no
    team), every manager in the policy, so that nobody misses it."""
    team = policy.teams.get(team_name) if team_name else None
    return [team.manager] if team is not None and team.manager else sorted(policy.managers)


class OutboxKind(StrEnum):
    OFFER_CARD = "slack.offer_card"  # post the card for a new offer, in the rep's DM
    TEAM_CARD = "slack.team_card"  # post its copy in the team's channel
    SETTLE_CARD = "slack.settle_card"  # the offer was claimed or moved: update its card
    QUEUE_POST = "slack.queue_post"  # a lead went to a queue: post it to the queue's channel
    SALESFORCE_OWNER = "crm.set_owner.salesforce"  # write the owner back to the CRM record
    HUBSPOT_OWNER = "crm.set_owner.hubspot"
    HUBSPOT_CONTACT = "crm.take_contact.hubspot"  # a contact HubSpot announced: fetch and route
    REMINDER = "slack.reminder"  # half the SLA has passed: nudge the rep
    MANAGER_ALERT = "slack.manager_alert"  # the watchdog gave up on a lead: tell its manager
    DIGEST = "slack.digest"  # a manager's scheduled digest
    BACKLOG = "slack.backlog"  # leads arrived while no Slack app ran: one word to a manager


OWNER_WRITE_KINDS = {"salesforce": OutboxKind.SALESFORCE_OWNER, "hubspot": OutboxKind.HUBSPOT_OWNER}
CRM_OWNER_SET = "crm_owner_set"  # audit: the CRM record's owner is now the rep
CRM_WRITE_FAILED = "crm_write_failed"  # audit: the owner could not be written, and will not be


def owner_write(
    crm_system: str, lead_id: int, rep_id: str, offer_id: int, now: datetime
) -> dict[str, Any]:
    """The outbox item that sets the lead's CRM record owner to the rep of this offer."""
    return repo.outbox_values(
        kind=OWNER_WRITE_KINDS[crm_system],
        dedupe_key=f"crm-owner:{offer_id}",
        payload={"lead_id": lead_id, "rep": rep_id, "offer_id": offer_id},
        now=now,
    )


# What a Service transaction keeps in session.info: its `Queued`, and the offers intake made.
_QUEUED = "leadrouter.outbox"
_NEW_OFFERS = "leadrouter.new_offers"
_FIRST = "leadrouter.first_scopes"  # session.info: scopes a lost attempt found busy
_LOCKS = "leadrouter.scope_locks"  # session.info: the transaction's ScopeLocks (None: SQLite)
_WORLDS = "leadrouter.worlds"  # session.info: the World of each routing step, for the counts


def _queue(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Queue outbox items in this transaction (run by `Service._write`)."""
    session.info[_QUEUED].add(session, rows)


def card_items(
    policy: Policy,
    decision: Decision,
    lead_id: int,
    offer_id: int,
    now: datetime,
    *,
    backlog: bool = False,
) -> list[dict[str, Any]]:
    """The outbox items that post a new offer's card: in the rep's DM, and a copy in the team's
    channel if it has one. Two items, each in its own lane and each posted at most once.
    `backlog`: queued where no card delivery runs (marked on the DM card's item)."""
    payload = {"offer_id": offer_id, "lead_id": lead_id}
    items = [
        repo.outbox_values(
            kind=OutboxKind.OFFER_CARD,
            dedupe_key=f"offer-card:{offer_id}",
            payload={**payload, BACKLOG: True} if backlog else payload,
            now=now,
            lane=policy.slack_of(decision.rep),
        )
    ]
    team = policy.teams.get(decision.team) if decision.team else None
    if team is not None and team.channel:
        items.append(
            repo.outbox_values(
                kind=OutboxKind.TEAM_CARD,
                dedupe_key=f"team-card:{offer_id}",
                payload=payload,
                now=now,
                lane=team.channel,
            )
        )
    return items


def _settle_card(offer_id: int, now: datetime) -> dict[str, Any]:
    return repo.outbox_values(
        kind=OutboxKind.SETTLE_CARD,
        dedupe_key=f"settle-card:{offer_id}",
        payload={"offer_id": offer_id},
        now=now,
    )


def _lead_values(lead: Lead, decision: Decision, now: datetime) -> dict[str, Any]:
    return {
        "external_id": lead.id,
        "status": _STATUS_OF_OUTCOME[decision.outcome].value,
        "rep_id": decision.rep,
        "team": decision.team,
        "rule": decision.rule,
        "queue": decision.queue,
        "reason": decision.reason,
        "account_id": decision.account.account.id if decision.account else None,
        "email": lead.email,
        "company": lead.company,
        "crm_system": lead.crm_system.value if lead.crm_system else None,
        "crm_id": lead.crm_id,
        "source": lead.source,
        "raw": _raw(lead),
        "facts": dict(decision.facts),
        "created_at": now,
        "updated_at": now,
    }


def _redecide(row: LeadRow, lead: Lead, decision: Decision, now: datetime) -> None:
    """A stored lead takes a new decision (its identity and arrival stay as they were)."""
    for name, value in _lead_values(lead, decision, now).items():
        if name not in ("external_id", "raw", "created_at"):
            setattr(row, name, value)


def _routed(view: LeadView) -> str:
    """Where a new lead went, for the log: ids and names of the policy, nothing of the lead."""
    where = f"offered to {view.rep}" if view.status == LeadStatus.OFFERED.value else view.status
    context = [f"team {view.team}" if view.team else "", f"rule {view.rule}" if view.rule else ""]
    details = ", ".join(part for part in context if part)
    return f"{where} ({details})" if details else where


def _view_of_decision(external_id: str, decision: Decision, due: datetime | None) -> LeadView:
    status = _STATUS_OF_OUTCOME[decision.outcome].value
    return LeadView(
        external_id, status, decision.rep, decision.team, decision.rule, decision.reason, due
    )


def _fail_if_cancelled(service: Service) -> Callable[[asyncio.Task[None]], None]:
    def check(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            service._fail_waiting()

    return check


def _settle(future: asyncio.Future[IntakeResult], result: IntakeResult) -> None:
    if not future.done():  # a caller that went away (cancelled) no longer waits for it
        future.set_result(result)


def _view_of(row: LeadRow, sla_due_at: datetime | None) -> LeadView:
    return LeadView(
        row.external_id, row.status, row.rep_id, row.team, row.rule, row.reason, sla_due_at
    )


def _raw(lead: Lead) -> dict[str, Any]:
    data = {name: getattr(lead, name) for name in Lead.__dataclass_fields__ if name != "fields"}
    data["crm_system"] = lead.crm_system.value if lead.crm_system else None
    data = {k: v for k, v in data.items() if v is not None}
    if lead.fields:
        data["fields"] = dict(lead.fields)
    jsonable: dict[str, Any] = _jsonable(data)
    return jsonable


def _lead_of(row: LeadRow) -> Lead:
    from routing.leads import parse_lead

    return parse_lead(row.raw)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
