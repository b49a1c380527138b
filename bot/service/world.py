"""The routing state inside one routing transaction: loaded once, carried from decision to
decision in memory, saved at the end with compare-and-set against what was read.

On PostgreSQL several replicas route at once. Each decision holds the scopes it depends on
(`routing.scope`: the team it picked from and every team of the rep it chose) from before the
state it was made on was read until the transaction ends, so a decision that would have
conflicted waits for the other to commit instead of being made, thrown away and made again.
Which scopes a batch of new leads will need is guessed before the state is read, by routing it
on the state as the last transaction read it (`Guess`); those are taken in one ordered pass. A
decision that still lands outside what is held takes its scopes and is made again on state
read under them (`replanned`), before anything of it is saved. Nothing is held on SQLite, where
transactions never overlap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from routing.accounts import AccountIndex
from routing.decision import Decision, RoutingState
from routing.distribution import Distribution, TeamState
from routing.engine import route
from routing.experiments import with_candidates
from routing.model import Lead, OpenLead
from routing.normalize import normalize
from routing.performance import OutcomeCounts
from routing.policy import Policy
from routing.scope import decision_scope, own_scope, rep_scope
from routing.simulation import record
from storage import repository as repo
from storage.locks import ScopeLocks


class World:
    def __init__(
        self,
        policy: Policy,
        reps: repo.RepStates,
        teams: repo.TeamStates,
        index: AccountIndex | None,
        account_reps: dict[str, list[str]],
        person_leads: dict[str, tuple[OpenLead, ...]],
        locks: ScopeLocks | None,
        outcomes: Mapping[str, OutcomeCounts] | None = None,
    ) -> None:
        self.policy = policy
        self.outcomes: Mapping[str, OutcomeCounts] = outcomes or {}
        self.read_loads = dict(reps.open_loads)
        self.loads = Counter(reps.open_loads)
        self.away = dict(reps.out_of_office)
        self.read_versions = dict(teams.versions)
        self.teams: dict[str, TeamState] = dict(teams.states)
        self.index = index
        self.account_reps = account_reps
        self.person_leads = person_leads
        self.touched_teams: set[str] = set()
        self.locks = locks
        self.decided = 0  # decisions that will be saved if the transaction commits
        self.replanned = 0  # decisions made again after taking the scopes they landed in
        self.unsettled: set[str] = set()  # reps' own scopes still to take (`hold`, `settle`)

    @classmethod
    def load(
        cls,
        session: Session,
        policy: Policy,
        leads: Sequence[Lead],
        locks: ScopeLocks | None,
        *,
        guess: Guess | None = None,
        now: datetime | None = None,
        first: Iterable[str] = (),
        outcomes: Mapping[int, OutcomeCounts] | None = None,
    ) -> World:
        """The state for routing `leads`. With `locks` (PostgreSQL), the scopes `first` and
        those the leads are expected to need are held before the state is read: expected from
        routing them on `guess` (the state as last read: only a guess, but nearly always the
        right team), so their decisions need neither another read nor another lock.
        `outcomes` are the performance teams' counts by window, as last refreshed."""
        by_team = teams_outcomes(policy, outcomes or {})
        facts = [normalize(lead, policy) for lead in leads]
        lookups = [(f.get("domain"), f.get("company")) for f in facts]
        candidates = repo.candidate_accounts(session=session, lookups=lookups)
        index = None
        account_reps: dict[str, list[str]] = {}
        if candidates.accounts:
            index = AccountIndex(candidates.accounts, key_sizes=candidates.key_sizes)
            if policy.sticky_accounts:
                matched = {
                    match.account.id
                    for domain, company in lookups
                    if (
                        match := index.match(
                            domain=domain, company=company, threshold=policy.fuzzy_threshold
                        )
                    )
                    is not None
                }
                account_reps = repo.reps_holding_accounts(session=session, account_ids=matched)
        emails = {email for f in facts if (email := f.get("email")) is not None}
        person_leads = repo.open_leads_of_people(session=session, emails=emails)
        if locks is not None:
            needed = set(first)
            if guess is not None and now is not None:
                needed |= _expected_scopes(
                    policy, leads, now, index, account_reps, person_leads, guess, by_team
                )
            locks.take(needed)
        reps = repo.load_rep_states(session=session)
        teams = repo.load_team_states(session=session)
        return cls(policy, reps, teams, index, account_reps, person_leads, locks, by_team)

    @property
    def guess(self) -> Guess:
        """The state as this transaction leaves it, to guess the next one's scopes from."""
        return Guess(
            repo.RepStates(dict(self.loads), dict(self.away)),
            repo.TeamStates(dict(self.teams), dict(self.read_versions)),
        )

    def route(self, lead: Lead, now: datetime, *, excluded: dict[str, str]) -> Decision:
        while True:
            state = RoutingState(
                self.loads,
                self.away,
                self.teams,
                self.account_reps,
                self.person_leads,
                self.outcomes,
            )
            decision = route(
                lead,
                policy=self.policy,
                now=now,
                accounts=self.index,
                state=state,
                excluded=excluded,
            )
            if not self.hold(decision_scope(self.policy, decision), settle_later=True):
                break
            self.replanned += 1
        rotated = record(
            decision,
            loads=self.loads,
            teams=self.teams,
            account_reps=self.account_reps,
            person_leads=self.person_leads,
        )
        if rotated and decision.team is not None:
            self.touched_teams.add(decision.team)
        self.decided += 1
        return decision

    def release(self, rep: str) -> None:
        """One open lead fewer for `rep` (its offer was just closed in this transaction)."""
        self.hold(rep_scope(self.policy, rep))
        self.loads[rep] = max(0, self.loads[rep] - 1)

    def take(self, rep: str) -> None:
        """One open lead more for `rep` (offered outside the engine, by hand)."""
        self.hold(rep_scope(self.policy, rep))
        self.loads[rep] += 1
        self.decided += 1

    def hold(self, scopes: frozenset[str] | set[str], *, settle_later: bool = False) -> bool:
        """Hold `scopes` too; True if any was newly taken (its state has just been read again,
        and what was decided on the old state must be decided again).

        A rep's own scope, wanted while every team of the rep is held, is taken without reading
        the rep again: under one version of the policy whoever changes the rep holds those teams
        too, so what this transaction read is current. The own scope is there for replicas on
        two versions (a rolling change that moves a rep between teams, `routing.scope`); what
        one of those may change meanwhile, the rep's open leads and absence, is checked by the
        compare-and-set that saves the rep's count (`repository.count_open_leads_many`), and a
        change found there routes the transaction again. With `settle_later` such scopes wait
        for `settle`, which takes all of a batch's in one trip."""
        if self.locks is None:
            return False
        missing = set(scopes) - self.locks.held
        covered = {scope for scope in missing if self._covered(scope)}
        if settle_later:
            self.unsettled |= covered
            missing -= covered
        if not missing:
            return False
        before = frozenset(self.locks.held)
        taken = self.locks.take(missing)
        if not taken - covered:
            return False
        self._read_again(before, taken)
        return True

    def settle(self) -> None:
        """Take the reps' own scopes `hold` left for later. Intake calls it before it writes
        anything; `commit` calls it for the rest, whose rows were locked first anyway."""
        if self.locks is not None and self.unsettled - self.locks.held:
            self.locks.take(self.unsettled)
        self.unsettled.clear()

    def _covered(self, scope: str) -> bool:
        """Whether `scope` is a rep's own scope with every team of the rep held."""
        kind, _, rep_id = scope.partition(":")
        teams = self.policy.teams_of_rep.get(rep_id, ()) if kind == "rep" else ()
        assert self.locks is not None
        return bool(teams) and all(f"team:{team}" in self.locks.held for team in teams)

    def _read_again(self, before: frozenset[str], taken: frozenset[str]) -> None:
        """The state of what `taken` covers, as committed now. Whoever changes a rep's state
        holds all of the rep's scopes, their own among them, so it was current here once one of
        them was held: a rep is read again when their own scope was just taken, or when none of
        their scopes was held `before` and one was just taken (a team's members, whose state its
        decisions read). Either way nothing of theirs was changed here: that needs their own
        scope, which was not held."""
        assert self.locks is not None
        session = self.locks.session
        reps = repo.load_rep_states(session=session)
        teams = repo.load_team_states(session=session)
        for taken_scope in taken:
            kind, _, name = taken_scope.partition(":")
            if kind == "team" and name not in self.touched_teams:
                state = teams.states.get(name)
                if state is None:
                    self.teams.pop(name, None)
                    self.read_versions.pop(name, None)
                else:
                    self.teams[name] = state
                    self.read_versions[name] = teams.versions[name]
        for rep_id in self.policy.reps:
            scope = rep_scope(self.policy, rep_id)
            if own_scope(rep_id) not in taken and (scope & before or not scope & taken):
                continue
            load = reps.open_loads.get(rep_id, 0)
            self.loads[rep_id] = load
            self.read_loads[rep_id] = load
            if rep_id in reps.out_of_office:
                self.away[rep_id] = reps.out_of_office[rep_id]
            else:
                self.away.pop(rep_id, None)

    def commit(self, session: Session, now: datetime) -> None:
        """Save rotations and loads, if nobody else changed them meanwhile (else Conflict).

        Rows are written in one order (teams, then reps, each sorted), so two transactions never
        wait on each other's rows the other way round."""
        self.settle()
        repo.save_team_states(
            session=session,
            changes=[
                (team, self.teams[team], self.read_versions.get(team))
                for team in sorted(self.touched_teams)
            ],
        )
        changes = [
            (rep, self.read_loads.get(rep, 0), self.loads[rep] - self.read_loads.get(rep, 0))
            for rep in sorted(set(self.loads) | set(self.read_loads))
        ]
        repo.count_open_leads_many(
            session=session,
            changes=[change for change in changes if change[2]],
            now=now,
            away=self.away,
        )


def teams_outcomes(
    policy: Policy, by_window: Mapping[int, OutcomeCounts]
) -> dict[str, OutcomeCounts]:
    """Each performance team's members' outcome counts, from the counts of its window (a team
    an experiment's candidate makes a performance team too: the policy's own first)."""
    counted: dict[str, OutcomeCounts] = {}
    for served in with_candidates(policy):
        for team in served.teams.values():
            if team.distribution is not Distribution.PERFORMANCE or team.name in counted:
                continue
            counts = by_window.get(team.window_seconds)
            if counts is not None:
                counted[team.name] = counts.restricted_to(team.members)
    return counted


@dataclass(frozen=True, slots=True)
class Guess:
    reps: repo.RepStates
    teams: repo.TeamStates


NO_GUESS = Guess(repo.RepStates({}, {}), repo.TeamStates({}, {}))


def _expected_scopes(
    policy: Policy,
    leads: Iterable[Lead],
    now: datetime,
    index: AccountIndex | None,
    account_reps: dict[str, list[str]],
    person_leads: dict[str, tuple[OpenLead, ...]],
    guess: Guess,
    outcomes: Mapping[str, OutcomeCounts],
) -> set[str]:
    """The scopes `leads` would need if the state were `guess`: routed one after another on
    a copy of it, as the transaction will route them."""
    loads = Counter(guess.reps.open_loads)
    teams = dict(guess.teams.states)
    holders = {account: list(reps) for account, reps in account_reps.items()}
    people = dict(person_leads)
    state = RoutingState(loads, guess.reps.out_of_office, teams, holders, people, outcomes)
    needed: set[str] = set()
    for lead in leads:
        decision = route(lead, policy=policy, now=now, accounts=index, state=state)
        record(decision, loads=loads, teams=teams, account_reps=holders, person_leads=people)
        needed |= decision_scope(policy, decision)
    return needed
