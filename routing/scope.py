"""The parts of the routing state a decision depends on, named, so that decisions touching
different parts can be made side by side and decisions touching the same part one after another.

A team's rotation belongs to the team. A rep's open-lead count and absence belong to the rep
and to every team the rep is in. So:

- deciding within a team reads the team's rotation and its members' state: holding the team's
  scope is enough, because whoever changes a member's state holds all of that member's scopes,
  this team's among them;
- giving a lead to a rep, taking one back or marking the rep away changes the rep's state:
  that needs every scope of the rep (`rep_scope`). The rep's own scope is among them even when
  their teams say enough: two replicas reading different versions of the policy (a rolling
  deploy that moves a rep between teams) still meet on it.

Names, not numbers: storage turns them into whatever its locks need.
"""

from __future__ import annotations

from collections.abc import Iterable

from routing.decision import Decision
from routing.policy import Policy


def rep_scope(policy: Policy, rep_id: str) -> frozenset[str]:
    """What must be held to change `rep_id`'s state: the rep's own scope and each team's."""
    teams = policy.teams_of_rep.get(rep_id, ())
    return frozenset((own_scope(rep_id), *(f"team:{team}" for team in teams)))


def own_scope(rep_id: str) -> str:
    return f"rep:{rep_id}"


def decision_scope(policy: Policy, decision: Decision) -> frozenset[str]:
    """What must be held for `decision` to stand: the scope of the rep it gives the lead to
    (which includes the team it was picked from). A lead queued or closed changes nobody."""
    if decision.rep is None:
        return frozenset()
    return rep_scope(policy, decision.rep)


def reps_scope(policy: Policy, rep_ids: Iterable[str]) -> frozenset[str]:
    return frozenset().union(*(rep_scope(policy, rep_id) for rep_id in rep_ids))
