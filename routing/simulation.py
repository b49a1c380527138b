"""A dry run: route leads one after another, each routed lead staying open for the rest of the run.

This is the engine plus the bookkeeping a database would do live (open loads, rotation state,
which rep holds which account's and which person's leads), kept in memory, so capacity,
least-loaded, the same person and sticky accounts behave in `simulate` and `demo` as they would in
production. Nothing is written anywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from routing.accounts import AccountLookups
from routing.decision import Decision, RoutingState
from routing.distribution import Distribution, TeamState
from routing.engine import route
from routing.model import Lead, OpenLead, Outcome, OutOfOffice
from routing.policy import Policy


@dataclass
class Simulation:
    policy: Policy
    now: datetime
    accounts: AccountLookups | None = None
    out_of_office: Mapping[str, OutOfOffice] = field(default_factory=dict)
    loads: Counter[str] = field(default_factory=Counter)
    teams: dict[str, TeamState] = field(default_factory=dict)
    account_reps: dict[str, list[str]] = field(default_factory=dict)
    person_leads: dict[str, tuple[OpenLead, ...]] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    # False: `decisions` stays empty (a replay of 100,000 stored leads keeps none of their traces).
    keep_decisions: bool = True

    def route(self, lead: Lead, now: datetime | None = None) -> Decision:
        """Route `lead` at `now` (default: the simulation's own `now`) and carry the state on."""
        state = RoutingState(
            self.loads, self.out_of_office, self.teams, self.account_reps, self.person_leads
        )
        moment = self.now if now is None else now
        decision = route(lead, policy=self.policy, now=moment, accounts=self.accounts, state=state)
        self.apply(decision)
        return decision

    def apply(self, decision: Decision) -> None:
        if self.keep_decisions:
            self.decisions.append(decision)
        record(
            decision,
            loads=self.loads,
            teams=self.teams,
            account_reps=self.account_reps,
            person_leads=self.person_leads,
        )

    def run(self, leads: Iterable[Lead]) -> list[Decision]:
        return [self.route(lead) for lead in leads]


def record(
    decision: Decision,
    *,
    loads: Counter[str],
    teams: dict[str, TeamState],
    account_reps: dict[str, list[str]],
    person_leads: dict[str, tuple[OpenLead, ...]],
) -> bool:
    """What an assignment changes in the routing state, applied in place: the rep's load, the
    team's rotation and who holds the account's and the person's open leads. True when the
    team's rotation moved. The service layer does the same bookkeeping inside a transaction
    before saving it."""
    rep = decision.rep
    if decision.outcome is not _ASSIGNED or rep is None:
        return False
    loads[rep] += 1
    email = decision.facts.get("email")
    if email is not None:
        held = person_leads.get(email)
        this = OpenLead(rep, decision.lead_id)
        # Tuples, not lists: most people have one open lead, and a simulation keeps every one.
        if held is None:
            person_leads[email] = (this,)
        else:
            person_leads[email] = (this, *(other for other in held if other.rep != rep))
    if decision.account is not None:
        account_id = decision.account.account.id
        holders = account_reps.get(account_id)
        if holders is None:
            # Not setdefault(account_id, []): that would build a list for every assignment.
            account_reps[account_id] = [rep]
        else:
            if rep in holders:
                holders.remove(rep)
            holders.insert(0, rep)
    if decision.team is not None and decision.team_state is not None:
        teams[decision.team] = decision.team_state
        return True
    return False


_ASSIGNED = Outcome.ASSIGNED  # read for every decision; see targets._ASSIGNED


@dataclass(frozen=True, slots=True)
class Share:
    rep: str
    count: int
    expected: float


def team_shares(policy: Policy, decisions: Iterable[Decision]) -> dict[str, list[Share]]:
    """Per team: how many leads each member got through the team's distribution, against the
    share the distribution aims for (weights for `weighted`, equal otherwise)."""
    counts: dict[str, Counter[str]] = {}
    for decision in decisions:
        if (
            decision.outcome is Outcome.ASSIGNED
            and decision.team_state is not None
            and decision.team
        ):
            counts.setdefault(decision.team, Counter())[decision.rep or ""] += 1
    shares: dict[str, list[Share]] = {}
    for name, counter in counts.items():
        team = policy.teams[name]
        total = sum(counter.values())
        if team.distribution is Distribution.WEIGHTED:
            weights = {m: policy.reps[m].weight for m in team.members}
        else:
            weights = dict.fromkeys(team.members, 1)
        weight_sum = sum(weights.values())
        shares[name] = [
            Share(m, counter.get(m, 0), total * weights[m] / weight_sum) for m in team.members
        ]
    return shares
