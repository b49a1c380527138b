"""Replay: what a policy would have done with leads already routed, lead by lead.

    replay = Replay(policy, accounts=index, opening=opening, start=since)
    for stored in leads:                    # in the order they arrived
        replayed = replay.route(stored)     # before (as stored) and after (under `policy`)

Each lead is routed as `simulate` routes a file (`routing.simulation`: the same engine and the
same bookkeeping of loads, rotations and who holds which account's and which person's leads), at
the moment it arrived, on the state as the replayed policy's own decisions left it. What no
policy changes is taken from history instead:

- how long a lead stays with the rep it went to: as long as it stayed open in history, until its
  last offer closed (rejected, lapsed, taken back) with none open after it (`released_at`); a
  lead still open, or never offered (queued, nurture, disqualified), stays to the end;
- who was out of office when: the absences the audit trail recorded (`Absence`);
- the world at the window's start (`Opening`): the leads then open count toward their reps'
  loads and keep their accounts and people with them until they closed, and each team's rotation
  goes on after the rep who took its last lead before the window. A weighted team's counters
  start at zero: where they stood is not stored.

What is not replayed is what the reps did with their new leads (claims, rejects, SLA lapses and
the reassignments they caused): nobody knows what a rep would have done with a lead they never
had. So a lead is routed once, at its arrival, and compared with the first decision history made
for it. Nothing here reads a clock or a database: storage hands the leads in (`StoredLead`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from routing.accounts import AccountLookups
from routing.contact_sla import contact_sla_seconds
from routing.decision import Decision
from routing.distribution import TeamState
from routing.model import Lead, OpenLead, Outcome, OutOfOffice
from routing.policy import Policy
from routing.report.story import is_unmatched
from routing.simulation import Simulation


@dataclass(frozen=True, slots=True)
class Routed:
    """Where a decision sent a lead, as a replay compares it: `unmatched` when no rule matched
    it (the fallback queue, as the routing report counts it)."""

    outcome: Outcome
    rep: str | None = None
    team: str | None = None
    rule: str | None = None
    reason: str = ""
    sla_seconds: int | None = None
    unmatched: bool = False
    policy_version: str | None = None  # the version of the policy that decided (None: unknown)

    @classmethod
    def of(cls, decision: Decision, policy_version: str | None = None) -> Routed:
        return cls(
            decision.outcome,
            decision.rep,
            decision.team,
            decision.rule,
            decision.reason,
            decision.sla_seconds,
            is_unmatched(decision),
            policy_version,
        )

    @property
    def where(self) -> str:
        """The rep, or the outcome in brackets for a lead no rep got: "(queued)"."""
        rep = self.rep
        return rep if rep is not None else _BRACKETED[self.outcome]


_BRACKETED = {outcome: f"({outcome.value})" for outcome in Outcome}


@dataclass(frozen=True, slots=True)
class StoredLead:
    """A lead as history has it: as it arrived, when, what the serving policy decided then, and
    when it stopped being open (None: open still, or never held by a rep)."""

    lead: Lead
    arrived_at: datetime
    before: Routed
    released_at: datetime | None = None


class HeldLead(NamedTuple):
    """A lead a rep held when the window started: since when, its account and its person (the
    `email` fact), and when it closed (None: not before the window's end)."""

    rep: str
    lead_id: str
    since: datetime
    account_id: str | None = None
    email: str | None = None
    released_at: datetime | None = None


class Absence(NamedTuple):
    """From `at` on, `rep` is away as `away` says, or back (None)."""

    at: datetime
    rep: str
    away: OutOfOffice | None


@dataclass(frozen=True, slots=True)
class Opening:
    """The state at the window's start, as history left it (see the module's docstring).
    `absences` in time order, those before the start included: they say who is away at it."""

    held: Sequence[HeldLead] = ()
    last_reps: Mapping[str, str] = field(default_factory=dict)
    absences: Sequence[Absence] = ()


@dataclass(frozen=True, slots=True)
class Replayed:
    """One lead replayed: what history decided, what the policy would have, the deadline of
    the SLA it would have had (from its arrival, on the policy's clock), and the contact SLA
    its rep would have had from claiming it to the first touch."""

    lead_id: str
    arrived_at: datetime
    before: Routed
    after: Routed
    sla_due_at: datetime | None = None
    contact_sla_seconds: int | None = None

    @property
    def moved(self) -> bool:
        """Whether the lead would have gone elsewhere: to another rep, or to no rep with
        another outcome (a lead going to the same rep through another team has not moved)."""
        return self.before.where != self.after.where


class _Holding(NamedTuple):
    """An open lead in the replay's books: its rep, its place in time (when it was given, then
    the order it was given in), its account and person."""

    rep: str
    order: tuple[datetime, int]
    account_id: str | None
    email: str | None


class Replay:
    """Routes stored leads one after another under `policy` (see the module's docstring)."""

    def __init__(
        self,
        policy: Policy,
        *,
        start: datetime,
        accounts: AccountLookups | None = None,
        opening: Opening | None = None,
    ) -> None:
        opening = opening or Opening()
        self.away: dict[str, OutOfOffice] = {}
        self.simulation = Simulation(
            policy,
            start,
            accounts,
            self.away,
            teams={team: TeamState(rep) for team, rep in opening.last_reps.items()},
            keep_decisions=False,
        )
        self._absences = sorted(opening.absences, key=lambda absence: absence.at)
        self._next_absence = 0
        self._releases: list[tuple[datetime, int, str]] = []
        self._holding: dict[str, _Holding] = {}
        # Open leads by account and by person, lead id -> holding: the state's holders of an
        # account or a person are made again from these when one of their leads closes.
        self._of_account: dict[str, dict[str, _Holding]] = {}
        self._of_person: dict[str, dict[str, _Holding]] = {}
        self._given = 0  # leads given to reps so far: the order of those given at one moment
        touched_accounts: set[str] = set()
        touched_people: set[str] = set()
        for held in sorted(opening.held, key=lambda held: (held.since, held.lead_id)):
            self.simulation.loads[held.rep] += 1
            self._hold(
                held.lead_id, held.rep, held.since, held.account_id, held.email, held.released_at
            )
            if held.account_id is not None:
                touched_accounts.add(held.account_id)
            if held.email is not None:
                touched_people.add(held.email)
        for account_id in touched_accounts:
            self._account_holders_again(account_id)
        for email in touched_people:
            self._person_holders_again(email)

    def route(self, stored: StoredLead) -> Replayed:
        """Route one stored lead, at its arrival, after everything history did before it."""
        at = stored.arrived_at
        self._catch_up(at)
        decision = self.simulation.route(stored.lead, at)
        policy = self.simulation.policy
        contact = None
        if decision.outcome is Outcome.ASSIGNED and decision.rep is not None:
            account = decision.account.account.id if decision.account is not None else None
            email = decision.facts.get("email")
            self._hold(decision.lead_id, decision.rep, at, account, email, stored.released_at)
            contact = contact_sla_seconds(policy, rule=decision.rule, source=stored.lead.source)
        after = Routed.of(decision, policy.version or None)
        return Replayed(stored.lead.id, at, stored.before, after, decision.sla_due_at, contact)

    def run(self, leads: Iterable[StoredLead]) -> Iterator[Replayed]:
        for stored in leads:
            yield self.route(stored)

    def _catch_up(self, now: datetime) -> None:
        """Absences and closings from before `now`, in time order. One recorded at the very
        moment a lead arrived is taken to have come after it: the lead was in the database
        first, as far as anyone can tell. At a tie between the two, the absence comes first."""
        absences = self._absences
        releases = self._releases
        while True:
            next_absence = (
                absences[self._next_absence].at if self._next_absence < len(absences) else None
            )
            next_release = releases[0][0] if releases else None
            if (
                next_absence is not None
                and next_absence < now
                and (next_release is None or next_absence <= next_release)
            ):
                absence = absences[self._next_absence]
                self._next_absence += 1
                if absence.away is None:
                    self.away.pop(absence.rep, None)
                else:
                    self.away[absence.rep] = absence.away
            elif next_release is not None and next_release < now:
                _at, _order, lead_id = heapq.heappop(releases)
                self._release(lead_id)
            else:
                return

    def _hold(
        self,
        lead_id: str,
        rep: str,
        since: datetime,
        account: str | None,
        email: str | None,
        released_at: datetime | None,
    ) -> None:
        """Book an open lead of `rep`'s (its load is the simulation's to count), to be closed at
        `released_at`. Only what a closing must undo is kept."""
        self._given += 1
        holding = _Holding(rep, (since, self._given), account, email)
        if released_at is not None:
            self._holding[lead_id] = holding
            heapq.heappush(self._releases, (released_at, self._given, lead_id))
        if account is not None:
            self._of_account.setdefault(account, {})[lead_id] = holding
        if email is not None:
            self._of_person.setdefault(email, {})[lead_id] = holding

    def _release(self, lead_id: str) -> None:
        """The lead closed: one open lead fewer for its rep, who may no longer hold its account
        or its person."""
        holding = self._holding.pop(lead_id, None)
        loads = self.simulation.loads
        if holding is None:
            return
        loads[holding.rep] = max(0, loads[holding.rep] - 1)
        if holding.account_id is not None:
            del self._of_account[holding.account_id][lead_id]
            self._account_holders_again(holding.account_id)
        if holding.email is not None:
            del self._of_person[holding.email][lead_id]
            self._person_holders_again(holding.email)

    def _account_holders_again(self, account_id: str) -> None:
        """The reps holding the account's open leads, the latest to get one first, as storage
        reads them live (`repository.reps_holding_accounts`)."""
        open_leads = self._of_account.get(account_id)
        holders = self.simulation.account_reps
        if not open_leads:
            self._of_account.pop(account_id, None)
            holders.pop(account_id, None)
            return
        latest: dict[str, tuple[datetime, int]] = {}
        for holding in open_leads.values():
            if holding.rep not in latest or holding.order > latest[holding.rep]:
                latest[holding.rep] = holding.order
        holders[account_id] = sorted(latest, key=lambda rep: latest[rep], reverse=True)

    def _person_holders_again(self, email: str) -> None:
        """The person's open leads, one for each rep holding any (their latest), the latest
        first, as storage reads them live (`repository.open_leads_of_people`)."""
        open_leads = self._of_person.get(email)
        people = self.simulation.person_leads
        if not open_leads:
            self._of_person.pop(email, None)
            people.pop(email, None)
            return
        newest = sorted(open_leads.items(), key=lambda item: item[1].order, reverse=True)
        found: list[OpenLead] = []
        for lead_id, holding in newest:
            if all(other.rep != holding.rep for other in found):
                found.append(OpenLead(holding.rep, lead_id))
        people[email] = tuple(found)
