"""The service layer: one method per use case, each one transaction.

Every entry point (HTTP, Slack, jobs, the CLI) calls these and nothing below them. A use case
loads the state the pure router needs, calls it, and saves the outcome, the audit trail and the
side effects to carry out (the outbox) in the same transaction, so a lead is never half-routed.
Slack and the CRMs are never called from here: they are reached through the outbox, after commit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from routing.accounts import AccountIndex
from routing.engine import Decision, RoutingState, route
from routing.model import Lead, Outcome
from routing.normalize import normalize
from routing.policy import Policy
from storage import repository as repo
from storage.db import Database
from storage.models import DecisionRow, LeadRow, LeadStatus, OfferRow, OfferStatus

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12

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
class Service:
    db: Database
    policy: Callable[[], Policy]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Counted for /metrics and tests: how often a decision had to be routed again.
    conflicts: int = 0

    # --- intake ------------------------------------------------------------------------------

    async def intake(self, lead: Lead) -> IntakeResult:
        """Route a new lead, exactly once per external id."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with self.db.transaction() as session:
                    existing = await repo.find_lead(session=session, external_id=lead.id)
                    if existing is not None:
                        return IntakeResult(False, await self._view(session, existing))
                    await self._routing_lock(session, attempt)
                    row = LeadRow(
                        external_id=lead.id,
                        status=LeadStatus.NEW.value,
                        raw=_raw(lead),
                        created_at=self.clock(),
                        updated_at=self.clock(),
                    )
                    _copy_lead_fields(row, lead)
                    session.add(row)
                    await session.flush()
                    view = await self._route_and_save(
                        session, row, lead, excluded={}, kind="routed"
                    )
                    return IntakeResult(True, view)
            except repo.Conflict:
                await self._backoff(attempt)
            except IntegrityError:
                # The same external id committed by a concurrent request: answer with that one.
                async with self.db.reading() as session:
                    existing = await repo.find_lead(session=session, external_id=lead.id)
                    if existing is None:
                        raise
                    return IntakeResult(False, await self._view(session, existing))
        raise RuntimeError(f"lead {lead.id}: could not save a decision after {MAX_ATTEMPTS} tries")

    async def _routing_lock(self, session: AsyncSession, attempt: int) -> None:
        """PostgreSQL: every routing transaction holds the routing lock shared, so they run side
        by side and rely on compare-and-set; after a few conflicts an attempt takes it
        exclusively, waits for the others to finish, and runs alone, so it cannot lose again.
        SQLite needs none: its transactions never overlap."""
        if self.db.is_sqlite:
            return
        function = "pg_advisory_xact_lock" if attempt >= 3 else "pg_advisory_xact_lock_shared"
        await session.execute(text(f"SELECT {function}(:key)"), {"key": ROUTING_LOCK_KEY})

    async def _backoff(self, attempt: int) -> None:
        self.conflicts += 1
        await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))

    async def _route_and_save(
        self,
        session: AsyncSession,
        row: LeadRow,
        lead: Lead,
        *,
        excluded: dict[str, str],
        kind: str,
        actor: str | None = None,
        reassignments: int = 0,
    ) -> LeadView:
        """Route `lead` (stored as `row`) with fresh state and save everything it decides."""
        policy = self.policy()
        now = self.clock()
        decision, versions = await self._decide(session, lead, policy, now, excluded)
        assert row.id is not None
        row.status = _STATUS_OF_OUTCOME[decision.outcome].value
        row.rep_id, row.team, row.rule = decision.rep, decision.team, decision.rule
        row.queue, row.reason, row.updated_at = decision.queue, decision.reason, now
        row.facts = _jsonable(dict(decision.facts))
        row.account_id = decision.account.account.id if decision.account else None
        repo.add_decision(
            session=session,
            row=DecisionRow(
                lead_id=row.id,
                at=now,
                outcome=decision.outcome.value,
                rep_id=decision.rep,
                team=decision.team,
                rule=decision.rule,
                reason=decision.reason,
                sla_seconds=decision.sla_seconds,
                trace=[_jsonable(step._asdict()) for step in decision.trace],
            ),
        )
        repo.add_audit(
            session=session,
            lead_id=row.id,
            at=now,
            kind=kind,
            actor=actor,
            rule=decision.rule,
            reason=decision.reason,
            data={"outcome": decision.outcome.value, "rep": decision.rep, "team": decision.team},
        )
        sla_due_at = None
        if decision.outcome is Outcome.ASSIGNED and decision.rep is not None:
            if decision.team is not None and decision.team_state is not None:
                await repo.save_team_state(
                    session=session,
                    team=decision.team,
                    state=decision.team_state,
                    read_version=versions.get(decision.team),
                )
            await repo.count_open_lead(
                session=session,
                rep_id=decision.rep,
                read_count=_load_of(decision.rep, versions),
                now=now,
            )
            sla_due_at = now + timedelta(seconds=decision.sla_seconds or 0)
            offer = OfferRow(
                lead_id=row.id,
                rep_id=decision.rep,
                team=decision.team,
                status=OfferStatus.OFFERED.value,
                offered_at=now,
                sla_due_at=sla_due_at,
                reassignments=reassignments,
            )
            session.add(offer)
            await session.flush()
            repo.add_outbox(
                session=session,
                kind="slack.offer_card",
                dedupe_key=f"offer-card:{offer.id}",
                payload={"offer_id": offer.id, "lead_id": row.id},
                now=now,
            )
        elif decision.outcome is Outcome.QUEUED:
            repo.add_outbox(
                session=session,
                kind="slack.queue_post",
                dedupe_key=f"queue-post:{row.id}:{reassignments}",
                payload={"lead_id": row.id, "queue": decision.queue, "channel": decision.channel},
                now=now,
            )
        await session.flush()
        return _view_of(row, sla_due_at)

    async def _decide(
        self,
        session: AsyncSession,
        lead: Lead,
        policy: Policy,
        now: datetime,
        excluded: dict[str, str],
    ) -> tuple[Decision, dict[str, int]]:
        """Load the state the engine needs for this lead, and route it.

        Returns the decision and the versions it was made with: each team's rotation version
        under the team's name, each rep's open-lead count under "load:<rep>".
        """
        facts = normalize(lead, policy)
        accounts = await repo.candidate_accounts(
            session=session, domain=facts.get("domain"), company=facts.get("company")
        )
        index = AccountIndex(accounts) if accounts else None
        account_reps: dict[str, list[str]] = {}
        if index is not None and policy.sticky_accounts:
            match = index.match(
                domain=facts.get("domain"),
                company=facts.get("company"),
                threshold=policy.fuzzy_threshold,
            )
            if match is not None:
                holders = await repo.reps_holding_account(
                    session=session, account_id=match.account.id
                )
                account_reps[match.account.id] = holders
        reps = await repo.load_rep_states(session=session)
        teams = await repo.load_team_states(session=session)
        state = RoutingState(reps.open_loads, reps.out_of_office, teams.states, account_reps)
        decision = route(
            lead, policy=policy, now=now, accounts=index, state=state, excluded=excluded
        )
        versions = dict(teams.versions)
        versions.update({f"load:{rep}": count for rep, count in reps.open_loads.items()})
        return decision, versions

    # --- reading ---------------------------------------------------------------------------

    async def _view(self, session: AsyncSession, row: LeadRow) -> LeadView:
        offer = await repo.current_offer(session=session, lead_id=row.id or 0)
        due = (
            offer.sla_due_at if offer is not None and offer.status == OfferStatus.OFFERED else None
        )
        return _view_of(row, due)

    async def find(self, external_id: str) -> LeadView:
        async with self.db.reading() as session:
            row = await repo.find_lead(session=session, external_id=external_id)
            if row is None:
                raise UnknownLead(f"no lead with id {external_id}")
            return await self._view(session, row)

    # --- claim, reject, out of office, reassign -----------------------------------------------

    async def claim(self, external_id: str, *, by: str) -> ClaimResult:
        """Claim the lead's open offer. Exactly one of any number of concurrent claims wins."""
        policy = self.policy()
        async with self.db.transaction() as session:
            row = await self._lead(session, external_id)
            offer = await repo.current_offer(session=session, lead_id=row.id or 0)
            if offer is None:
                raise NotAllowed(f"lead {external_id} is not offered to anyone ({row.status})")
            if offer.status == OfferStatus.CLAIMED:
                return ClaimResult(False, offer.rep_id, await self._view(session, row))
            if offer.status != OfferStatus.OFFERED:
                raise NotAllowed(f"lead {external_id} is no longer offered ({row.status})")
            if by != offer.rep_id and by not in policy.managers:
                raise NotAllowed(
                    f"lead {external_id} is offered to {policy.rep_name(offer.rep_id)}, not to you"
                )
            now = self.clock()
            won = await repo.change_offer_status(
                session=session,
                offer_id=offer.id or 0,
                from_status=OfferStatus.OFFERED.value,
                to_status=OfferStatus.CLAIMED.value,
                now=now,
            )
            if not won:
                await session.refresh(offer)
                return ClaimResult(False, offer.rep_id, await self._view(session, row))
            row.status, row.updated_at = LeadStatus.CLAIMED.value, now
            repo.add_audit(
                session=session,
                lead_id=row.id,
                at=now,
                kind="claimed",
                actor=by,
                data={"rep": offer.rep_id},
            )
            await session.flush()
            return ClaimResult(True, offer.rep_id, _view_of(row, None))

    async def reject(self, external_id: str, *, by: str, reason: str) -> Move:
        """The offered rep declines: route the lead again without everyone who declined it."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with self.db.transaction() as session:
                    await self._routing_lock(session, attempt)
                    row = await self._lead(session, external_id)
                    offer = await repo.current_offer(session=session, lead_id=row.id or 0)
                    if offer is None or offer.status != OfferStatus.OFFERED or offer.rep_id != by:
                        raise NotAllowed(f"lead {external_id} is not offered to you")
                    return await self._move(
                        session,
                        row,
                        offer,
                        to_status=OfferStatus.REJECTED,
                        kind="rejected",
                        actor=by,
                        reason=reason,
                    )
            except repo.Conflict:
                await self._backoff(attempt)
        raise RuntimeError(f"lead {external_id}: could not re-route after {MAX_ATTEMPTS} tries")

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
        async with self.db.transaction() as session:
            await repo.set_away(
                session=session,
                rep_id=rep_id,
                away=True,
                since=now,
                until=until,
                reason=reason,
                now=now,
            )
            repo.add_audit(
                session=session,
                lead_id=None,
                at=now,
                kind="out_of_office",
                actor=by or rep_id,
                reason=reason,
                data={"rep": rep_id, "until": until.isoformat() if until else None},
            )
        return await self._move_all_of(rep_id, reason="out of office", kind="rep_out_of_office")

    async def set_back(self, rep_id: str, *, by: str | None = None) -> None:
        now = self.clock()
        async with self.db.transaction() as session:
            await repo.set_away(
                session=session,
                rep_id=rep_id,
                away=False,
                since=None,
                until=None,
                reason=None,
                now=now,
            )
            repo.add_audit(
                session=session,
                lead_id=None,
                at=now,
                kind="back",
                actor=by or rep_id,
                data={"rep": rep_id},
            )

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
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with self.db.transaction() as session:
                    await self._routing_lock(session, attempt)
                    offer = await session.get(OfferRow, offer_id)
                    if offer is None or offer.status != expected_status:
                        return None
                    row = await session.get(LeadRow, offer.lead_id)
                    assert row is not None
                    return await self._move(
                        session,
                        row,
                        offer,
                        to_status=OfferStatus.REASSIGNED,
                        kind=kind,
                        actor=None,
                        reason=reason,
                    )
            except repo.Conflict:
                await self._backoff(attempt)
        raise RuntimeError(f"offer {offer_id}: could not re-route after {MAX_ATTEMPTS} tries")

    async def _move(
        self,
        session: AsyncSession,
        row: LeadRow,
        offer: OfferRow,
        *,
        to_status: OfferStatus,
        kind: str,
        actor: str | None,
        reason: str,
    ) -> Move:
        now = self.clock()
        changed = await repo.change_offer_status(
            session=session,
            offer_id=offer.id or 0,
            from_status=OfferStatus.OFFERED.value,
            to_status=to_status.value,
            now=now,
        )
        if not changed:
            raise repo.Conflict(f"offer {offer.id} changed meanwhile")
        await repo.release_open_lead(session=session, rep_id=offer.rep_id, now=now)
        excluded = await self._excluded(session, row.id or 0)
        repo.add_audit(
            session=session,
            lead_id=row.id,
            at=now,
            kind=kind,
            actor=actor,
            reason=reason,
            data={"rep": offer.rep_id},
        )
        view = await self._route_and_save(
            session,
            row,
            _lead_of(row),
            excluded=excluded,
            kind="rerouted",
            actor=actor,
            reassignments=offer.reassignments + (1 if to_status is OfferStatus.REASSIGNED else 0),
        )
        return Move(row.external_id, offer.rep_id, view)

    async def _excluded(self, session: AsyncSession, lead_id: int) -> dict[str, str]:
        """Reps who must not get this lead again, and why (phrased to follow their name)."""
        why = {
            OfferStatus.REJECTED.value: "rejected this lead",
            OfferStatus.REASSIGNED.value: "already had this lead",
            OfferStatus.EXPIRED.value: "let this lead's SLA lapse",
        }
        excluded: dict[str, str] = {}
        for offer in await repo.offers_of_lead(session=session, lead_id=lead_id):
            if offer.status in why:
                excluded[offer.rep_id] = why[offer.status]
        return excluded

    async def _lead(self, session: AsyncSession, external_id: str) -> LeadRow:
        row = await repo.find_lead(session=session, external_id=external_id)
        if row is None:
            raise UnknownLead(f"no lead with id {external_id}")
        return row


ROUTING_LOCK_KEY = 0x1EAD_0001


def _load_of(rep: str, versions: dict[str, int]) -> int:
    return versions.get(f"load:{rep}", 0)


def _view_of(row: LeadRow, sla_due_at: datetime | None) -> LeadView:
    return LeadView(
        row.external_id, row.status, row.rep_id, row.team, row.rule, row.reason, sla_due_at
    )


_LEAD_COLUMNS = ("email", "company", "source", "crm_id")


def _copy_lead_fields(row: LeadRow, lead: Lead) -> None:
    for name in _LEAD_COLUMNS:
        setattr(row, name, getattr(lead, name))
    row.crm_system = lead.crm_system.value if lead.crm_system else None


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
