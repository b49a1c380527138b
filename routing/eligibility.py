"""Which reps can take the lead in hand, now: one routing run's context and its checks.

A rep is passed over for a lead they were excluded from (rejected it, let its SLA lapse), for
being out of office, off their working hours, without the skill a rule asks for, or at capacity.
Each skip goes into the trace, and most into the one-line reason too, in the order met.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from routing.decision import RoutingState, Stage, Step
from routing.model import Account, AccountMatch, OutOfOffice
from routing.normalize import Facts
from routing.plan import Member, OffHours, Plan, member_at
from routing.policy import Policy, Rep

_REP = Stage.REP  # an enum member as a module constant, for the hot path (see `routing.engine`)
_step = tuple.__new__  # steps built in one C call (see `Step`)


class Context:
    """One routing run: the inputs, the trace being written, and the eligibility checks."""

    __slots__ = (
        "ambiguous",
        "away",
        "excluded",
        "facts",
        "loads",
        "match",
        "now",
        "off_hours",
        "plan",
        "policy",
        "reps",
        "skips",
        "state",
        "steps",
    )

    def __init__(
        self,
        policy: Policy,
        state: RoutingState,
        now: datetime,
        excluded: Mapping[str, str],
        facts: Facts,
        plan: Plan,
    ) -> None:
        self.policy = policy
        self.plan = plan
        self.state = state
        self.now = now
        # Held directly: `eligible` reads them for every team member considered.
        self.reps = policy.reps
        self.away = state.out_of_office
        self.loads = state.open_loads
        self.off_hours: dict[str, OffHours | None] | None = None  # looked up when first needed
        self.excluded = excluded
        self.facts = facts
        self.match: AccountMatch | None = None
        # The accounts of an ambiguous match (`engine._ambiguous`), when there was one.
        self.ambiguous: tuple[Account, ...] = ()
        self.steps: list[Step] = []
        # (rep id, why) in the order met; `why` follows the rep's name: "is outside working hours".
        # Reps passed over only for lacking the rule's skill are traced but left out of the
        # one-line reason: that is the rule working, not news for the rep.
        self.skips: list[tuple[str, str]] = []

    def eligible(self, rep_id: str, skill: str | None = None) -> bool:
        """Whether `rep_id` can take this lead now; if not, the skip goes into the trace."""
        return bool(self.eligible_among((rep_id,), skill, first=True))

    def eligible_among(
        self, rep_ids: Iterable[str], skill: str | None = None, *, first: bool = False
    ) -> list[str]:
        """Those of `rep_ids` who can take this lead now, in order; each skip goes into the trace.

        With `first`, the checks stop at the first eligible rep (a round robin's pick).
        """
        reasons = self.off_hours_now()
        members = _members_at(rep_ids, self.reps, skill, reasons, self.now)
        return self.eligible_members(members, first=first)

    def off_hours_now(self) -> dict[str, OffHours | None]:
        memo = self.off_hours
        if memo is None:
            memo = self.off_hours = self.policy.off_hours.at(self.now)
        return memo

    def eligible_members(self, members: Iterable[Member], *, first: bool = False) -> list[str]:
        """`eligible_among` for members whose skill and working hours are already checked.

        The hottest code of a decision: a weighted or least-loaded team checks every member.
        Hence one loop over the members rather than a call each, with what it reads held in
        locals, and strings built only for a skip. What holds for the whole minute (skills,
        working hours) comes with the member (`Plan.team_members`), and the checks that
        depend on the lead and the state are made first, so that the skips are the same as
        checking everything in turn.
        """
        away_of = self.away
        loads = self.loads
        excluded = self.excluded or None  # tested once a member, and mostly empty
        now = self.now
        steps = self.steps
        skips = self.skips
        eligible: list[str] = []
        for rep_id, rep, step, skip, capacity in members:
            if excluded is not None:
                why = excluded.get(rep_id)
                if why is not None:
                    self.skip(rep_id, why)
                    continue
            away = away_of.get(rep_id)
            if away is not None and away.covers(now):
                short, note = away_reason(away, rep)
                self.skip(rep_id, short, note)
                continue
            if step is not None:
                steps.append(step)
                if skip is not None:
                    skips.append(skip)
                continue
            if capacity is not None:
                load = loads.get(rep_id, 0)
                if load >= capacity:
                    self.skip(rep_id, f"is at capacity ({load}/{capacity} open leads)")
                    continue
            eligible.append(rep_id)
            if first:
                break
        return eligible

    def skip(
        self, rep_id: str, why: str, note: str | None = None, *, in_reason: bool = True
    ) -> bool:
        self.steps.append(_step(Step, (_REP, rep_id, False, why, None, None, note)))
        if in_reason:
            self.skips.append((rep_id, why))
        return False

    def chose(self, rep_id: str, how: str) -> None:
        self.steps.append(_step(Step, (_REP, rep_id, True, how, None, None, None)))


def _members_at(
    rep_ids: Iterable[str],
    reps: Mapping[str, Rep],
    skill: str | None,
    reasons: dict[str, OffHours | None],
    now: datetime,
) -> Iterator[Member]:
    """`member_at` for each of `rep_ids`, one at a time: with `first`, `eligible_members` stops
    at the first eligible rep, and the reps after it are not looked at (a generator function,
    where a generator expression would be worked out whole when compiled, `ops/native.py`)."""
    for rep_id in rep_ids:
        yield member_at(rep_id, reps[rep_id], skill, reasons, now)


def away_reason(away: OutOfOffice, rep: Rep) -> tuple[str, str | None]:
    return _away_text(away.until, rep.tz), away.reason


@lru_cache(maxsize=4096)
def _away_text(until: datetime | None, tz: ZoneInfo) -> str:
    # Cached: an absent rep is skipped, and this formatted, for every lead of their teams.
    if until is None:
        return "is out of office"
    return f"is out of office until {until.astimezone(tz):%a %d %b %H:%M %Z}"
