# Just over 400 lines: the compiled policy and the parsing that makes it read best as one module.
"""The admin's policy: the compiled form the engine reads, and `parse_policy`, which makes one.

Parsing goes in three passes over one YAML tree that remembers where each key stood:
1. pydantic checks the shape and the values (`routing.policy_schema`);
2. our own pass checks what pydantic cannot see: references between reps, teams and managers,
   duplicate ids, the `when:` conditions, rules that can never be reached (`routing.policy_checks`);
3. only a policy with no errors is compiled into the plain, fast structures below.
Every problem carries file:line:column and the key path (`routing.policy_problems`), so an admin
can fix all of them in one go. The core takes the policy's text: reading the file is the bot's
(`bot.policy_file`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import time
from enum import StrEnum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from routing.calendar import OffHoursMemo, WorkingHours, parse_days, parse_hours
from routing.conditions import Condition
from routing.distribution import Distribution
from routing.experiments import Experiment
from routing.performance import DEFAULT_PRIOR, DEFAULT_WINDOW_DAYS, Fairness
from routing.policy_bundle import Candidate
from routing.policy_bundle import split as split_bundle
from routing.policy_checks import ReferenceChecker
from routing.policy_problems import Locator, Problem, schema_problems, yaml_problem
from routing.policy_schema import (
    CARD_ALWAYS,
    DEFAULT_CARD_FIELDS,
    DEFAULT_SEGMENTS,
    CrmSpec,
    FallbackSpec,
    PolicySpec,
    QueueTarget,
    RepTarget,
    TeamTarget,
)
from routing.policy_version import version_of

# ---------------------------------------------------------------------------------------------
# The compiled policy the engine reads


@dataclass(frozen=True, slots=True)
class Rep:
    id: str
    name: str
    tz: ZoneInfo
    weight: int = 1
    capacity: int | None = None
    skills: frozenset[str] = frozenset()
    hours: WorkingHours | None = None
    slack: str | None = None
    email: str | None = None
    salesforce_user_id: str | None = None
    hubspot_owner_id: str | None = None


@dataclass(frozen=True, slots=True)
class Manager:
    id: str
    name: str
    tz: ZoneInfo
    slack: str | None = None
    email: str | None = None
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    members: tuple[str, ...]
    distribution: Distribution
    manager: str | None = None
    channel: str | None = None
    # `distribution: performance`: the prior's strength in leads, how far back outcomes are
    # read, and the fairness bounds (`routing.performance`).
    prior: float = DEFAULT_PRIOR
    window_seconds: int = DEFAULT_WINDOW_DAYS * 86_400
    fairness: Fairness | None = None


class TargetKind(StrEnum):
    ACCOUNT_OWNER = "account_owner"
    REP = "rep"
    TEAM = "team"
    QUEUE = "queue"


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    name: str | None = None  # the rep id, team name or queue name
    skill: str | None = None
    channel: str | None = None

    def describe(self) -> str:
        if self.kind is TargetKind.ACCOUNT_OWNER:
            return "the account owner"
        if self.kind is TargetKind.TEAM and self.skill:
            return f"team {self.name} with skill {self.skill}"
        return f"{self.kind.value} {self.name}"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: Condition
    assign: Target
    sla_seconds: int | None = None
    contact_sla_seconds: int | None = None
    fallback: Target | None = None


@dataclass(frozen=True, slots=True)
class QualifyRule:
    name: str
    when: Condition
    outcome: str


@dataclass(frozen=True, slots=True)
class Sla:
    default: int
    by_source: Mapping[str, int]
    max_reassignments: int
    check_every: int
    remind_at_half: bool
    clock: str
    contact: int | None = None  # the contact SLA, from claim to first touch (routing.contact_sla)
    contact_by_source: Mapping[str, int] = field(default_factory=dict)
    reassign_on_contact_miss: bool = False

    def seconds_for(self, source: str | None) -> int:
        """The SLA of a lead from `source` (`by_source`, matched as conditions match: trimmed,
        any case), else the default. Read from the lead's own value, not from the facts the
        conditions fold, which hold `source` only when some condition names it."""
        if source:
            seconds = self.by_source.get(source.strip().casefold())
            if seconds is not None:
                return seconds
        return self.default


@dataclass(frozen=True, slots=True)
class Policy:
    timezone: ZoneInfo
    region_overrides: Mapping[str, str]  # alpha-2 -> region, from the policy's `regions`
    segments: tuple[tuple[int, str], ...]  # (lower bound, name), highest bound first
    reps: Mapping[str, Rep]
    managers: Mapping[str, Manager]
    teams: Mapping[str, Team]
    qualify: tuple[QualifyRule, ...]
    rules: tuple[Rule, ...]
    sla: Sla
    fuzzy_threshold: float
    sticky_accounts: bool
    fallback: Target
    crm: CrmSpec = field(default_factory=CrmSpec)
    on_ambiguous: str = "rules"  # `accounts.on_ambiguous`
    # the lead's facts a card shows, in order (`card.fields`, less those it always shows)
    card_fields: tuple[str, ...] = DEFAULT_CARD_FIELDS
    warnings: tuple[Problem, ...] = ()
    source: str = "<policy>"
    version: str = ""  # the hash of the text it was parsed from (`routing.policy_version`)
    # every field some condition reads: only these are casefolded for each lead
    condition_fields: frozenset[str] = frozenset()
    teams_of_rep: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # who is off working hours this minute, filled in by the engine as it looks (a memo of a
    # pure function of the policy and the minute; see calendar.OffHoursMemo)
    off_hours: OffHoursMemo = field(default_factory=OffHoursMemo, compare=False, repr=False)
    # candidates tried on a share of the leads (`routing.experiments`), in the policy's order
    experiments: tuple[Experiment, ...] = ()

    def first_team_of(self, rep_id: str) -> str | None:
        teams = self.teams_of_rep.get(rep_id)
        return teams[0] if teams else None

    def rep_name(self, rep_id: str | None) -> str:
        if rep_id is None:
            return "nobody"
        rep = self.reps.get(rep_id)
        return rep.name if rep else rep_id

    def rep_of_slack(self, user_id: str) -> str | None:
        """The rep whose `slack` id this is."""
        return next((rep.id for rep in self.reps.values() if rep.slack == user_id), None)

    def manager_of_slack(self, user_id: str) -> str | None:
        """The manager whose `slack` id this is."""
        return next((m.id for m in self.managers.values() if m.slack == user_id), None)

    def slack_of(self, person_id: str | None) -> str | None:
        """The Slack id of a rep or manager, if the policy names one."""
        if person_id is None:
            return None
        person = self.reps.get(person_id) or self.managers.get(person_id)
        return person.slack if person else None


# ---------------------------------------------------------------------------------------------
# Parsing


class PolicyError(Exception):
    """The policy could not be loaded; `problems` lists every error (and warning) found."""

    def __init__(self, filename: str, problems: Sequence[Problem]) -> None:
        self.filename = filename
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        super().__init__(f"{filename}: {len(errors)} error(s) in the policy")

    def report(self) -> str:
        return "\n".join(p.format(self.filename) for p in self.problems)


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """The policy written in `text` (YAML), compiled. `source` names it in problems: the file
    it came from, for one. Raises PolicyError with every problem found.

    `text` may bundle the candidate policies its experiments name (`routing.policy_bundle`);
    the version is the hash of all of it."""
    own, bundled = split_bundle(text)
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(own)
    except MarkedYAMLError as exc:
        raise PolicyError(source, [yaml_problem(exc, own)]) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (bad encodings, tabs)
        raise PolicyError(source, [Problem((), f"not valid YAML: {exc}")]) from None
    if tree is None or tree == {}:
        raise PolicyError(
            source,
            [Problem((), "the policy is empty: it needs its reps, teams and rules at least")],
        )
    if not isinstance(tree, Mapping):
        raise PolicyError(source, [Problem((), "the policy must be a YAML mapping of keys")])

    locate = Locator(tree)
    problems: list[Problem] = []
    spec: PolicySpec | None = None
    try:
        spec = PolicySpec.model_validate(_plain(tree))
    except ValidationError as exc:
        problems.extend(schema_problems(exc, tree))
    checker = ReferenceChecker(tree)
    problems.extend(checker.run())
    candidates: dict[int, Policy] = {}
    if spec is not None:
        candidates = _candidate_policies(spec, bundled, problems)
    problems = [locate(p) for p in problems]
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    if any(p.severity == "error" for p in problems) or spec is None:
        raise PolicyError(source, problems)
    # Only for a policy that loads: beside errors to fix they would be noise.
    problems.extend(locate(p) for p in checker.check_slack_reach())
    problems.extend(locate(p) for p in checker.check_has_rules())
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    policy = _compile(spec, checker, warnings=tuple(problems), source=source)
    policy = replace(policy, experiments=_experiments(spec, checker, policy, candidates))
    version = version_of(text)
    experiments = tuple(
        replace(e, candidate=replace(e.candidate, version=version)) for e in policy.experiments
    )
    return replace(policy, version=version, experiments=experiments)


def _candidate_policies(
    spec: PolicySpec, bundled: Mapping[str, Candidate], problems: list[Problem]
) -> dict[int, Policy]:
    """Each experiment's candidate policy (`policy:`) by the experiment's index, parsed from the
    bundle; what is wrong with one is a problem of the experiment's `policy` key. A candidate
    routes to the policy's own reps and teams (the cards, SLAs and digests of its leads read
    them there) and has no experiments of its own."""
    candidates: dict[int, Policy] = {}
    for index, experiment in enumerate(spec.experiments):
        name = experiment.policy
        if name is None:
            continue
        path: tuple[str | int, ...] = ("experiments", index, "policy")
        found = bundled.get(name)
        if found is None:
            problems.append(Problem(path, f"the candidate policy `{name}` was not read with it"))
            continue
        try:
            candidate = parse_policy(found.text, source=name)
        except PolicyError as exc:
            problems.extend(
                Problem(path, f"the candidate policy has a problem: {p.format(name)}")
                for p in exc.problems
                if p.severity == "error"
            )
            continue
        # A team's rotation is locked by the team's scope, which its members' scopes in this
        # policy include (`routing.scope`): a candidate team may only drop members, not add any.
        strangers = [
            f"rep `{rep}`" for rep in candidate.reps if rep not in {r.id for r in spec.reps}
        ] + [
            f"team `{name}`" if name not in spec.teams else f"`{rep}` in team `{name}`"
            for name, team in candidate.teams.items()
            for rep in (team.members if name in spec.teams else (None,))
            if name not in spec.teams or rep not in spec.teams[name].members
        ]
        if strangers:
            problems.append(
                Problem(
                    path,
                    f"{name} names {', '.join(strangers)}, which this policy does not have: "
                    "a candidate routes to this policy's reps and teams (a team's members or "
                    "fewer)",
                )
            )
        if candidate.experiments:
            problems.append(Problem(path, f"{name} has experiments of its own: take them out"))
        if candidate.fuzzy_threshold != spec.accounts.fuzzy_threshold:
            # A lead's account is matched once, before its arm is known (`engine._arm_of`).
            problems.append(
                Problem(
                    path,
                    f"{name} has accounts.fuzzy_threshold {candidate.fuzzy_threshold:g}, this "
                    f"policy {spec.accounts.fuzzy_threshold:g}: a lead's account is matched "
                    "once, so both must be the same",
                )
            )
        candidates[index] = candidate
    return candidates


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers as plain dicts and lists (pydantic wants plain data)."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


# ---------------------------------------------------------------------------------------------
# Compilation


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _target(spec: Any, fallback: FallbackSpec) -> Target:
    if spec == "account_owner":
        return Target(TargetKind.ACCOUNT_OWNER)
    if spec == "queue":
        return Target(TargetKind.QUEUE, fallback.queue, channel=fallback.channel)
    if isinstance(spec, RepTarget):
        return Target(TargetKind.REP, spec.rep)
    if isinstance(spec, TeamTarget):
        skill = spec.skill.casefold() if spec.skill else None
        return Target(TargetKind.TEAM, spec.team, skill=skill)
    if isinstance(spec, QueueTarget):
        channel = spec.channel or (fallback.channel if spec.queue == fallback.queue else None)
        return Target(TargetKind.QUEUE, spec.queue, channel=channel)
    raise AssertionError(f"unexpected target {spec!r}")


def _by_source(durations: Mapping[str, int]) -> dict[str, int]:
    """Durations by source, keyed as a lead's source is looked up: trimmed, any case."""
    return {source.strip().casefold(): seconds for source, seconds in durations.items()}


def _compile(
    spec: PolicySpec, checker: ReferenceChecker, *, warnings: tuple[Problem, ...], source: str
) -> Policy:
    default_tz = spec.timezone
    reps: dict[str, Rep] = {}
    for r in spec.reps:
        tz = _zone(r.timezone or default_tz)
        hours = None
        if r.hours:
            start, end = parse_hours(r.hours)
            days = parse_days(r.days) if r.days is not None else parse_days("mon-fri")
            hours = WorkingHours(
                start=start, end=end, days=days, tz=tz, holidays_country=r.holidays
            )
        elif r.holidays:
            # Holidays without hours: available all day on every day but the country's holidays.
            hours = WorkingHours(
                start=time.min,
                end=time.max,
                days=frozenset(range(7)),
                tz=tz,
                holidays_country=r.holidays,
            )
        reps[r.id] = Rep(
            id=r.id,
            name=r.name or r.id,
            tz=tz,
            weight=r.weight,
            capacity=r.capacity,
            skills=frozenset(s.casefold() for s in r.skills),
            hours=hours,
            slack=r.slack,
            email=r.email,
            salesforce_user_id=r.salesforce_user_id,
            hubspot_owner_id=r.hubspot_owner_id,
        )
    managers = {
        m.id: Manager(
            m.id, m.name or m.id, _zone(m.timezone or default_tz), m.slack, m.email, m.digest
        )
        for m in spec.managers
    }
    teams = {
        name: Team(
            name,
            tuple(t.members),
            t.distribution,
            t.manager,
            t.channel,
            prior=t.performance.prior if t.performance else DEFAULT_PRIOR,
            window_seconds=(
                t.performance.window if t.performance else DEFAULT_WINDOW_DAYS * 86_400
            ),
            fairness=Fairness(t.fairness.floor, t.fairness.ceiling) if t.fairness else None,
        )
        for name, t in spec.teams.items()
    }
    teams_of_rep: dict[str, list[str]] = {}
    for team in teams.values():
        for member in team.members:
            teams_of_rep.setdefault(member, []).append(team.name)
    region_overrides = {
        code: region for region, codes in (spec.regions or {}).items() for code in codes
    }
    segment_bands = spec.segments if spec.segments is not None else DEFAULT_SEGMENTS
    segments = tuple(sorted(((b, n) for n, b in segment_bands.items()), reverse=True))
    qualify = tuple(
        QualifyRule(q.name, checker.conditions[("qualify", i, "when")], q.outcome)
        for i, q in enumerate(spec.qualify)
    )
    rules = tuple(
        Rule(
            name=r.name,
            when=checker.conditions[("rules", i, "when")],
            assign=_target(r.assign, spec.fallback),
            sla_seconds=r.sla,
            contact_sla_seconds=r.contact_sla,
            fallback=_target(r.fallback, spec.fallback) if r.fallback is not None else None,
        )
        for i, r in enumerate(spec.rules)
    )
    policy = Policy(
        timezone=_zone(default_tz),
        region_overrides=region_overrides,
        segments=segments,
        reps=reps,
        managers=managers,
        teams=teams,
        qualify=qualify,
        rules=rules,
        sla=Sla(
            default=spec.sla.default,
            by_source=_by_source(spec.sla.by_source),
            max_reassignments=spec.sla.max_reassignments,
            check_every=spec.sla.check_every,
            remind_at_half=spec.sla.remind_at_half,
            clock=spec.sla.clock,
            contact=spec.sla.contact,
            contact_by_source=_by_source(spec.sla.contact_by_source),
            reassign_on_contact_miss=spec.sla.reassign_on_contact_miss,
        ),
        fuzzy_threshold=spec.accounts.fuzzy_threshold,
        sticky_accounts=spec.accounts.sticky,
        on_ambiguous=spec.accounts.on_ambiguous,
        fallback=Target(TargetKind.QUEUE, spec.fallback.queue, channel=spec.fallback.channel),
        crm=spec.crm,
        card_fields=tuple(dict.fromkeys(f for f in spec.card.fields if f not in CARD_ALWAYS)),
        warnings=warnings,
        source=source,
        condition_fields=frozenset().union(
            *(q.when.fields for q in qualify),
            *(r.when.fields for r in rules),
            *(checker.conditions[w].fields for w in _experiment_whens(spec, checker)),
        ),
        teams_of_rep={k: tuple(v) for k, v in teams_of_rep.items()},
    )
    return policy


def _experiment_whens(spec: PolicySpec, checker: ReferenceChecker) -> list[tuple[str, int, str]]:
    return [
        ("experiments", i, "when")
        for i, e in enumerate(spec.experiments)
        if e.when is not None and ("experiments", i, "when") in checker.conditions
    ]


def _experiments(
    spec: PolicySpec, checker: ReferenceChecker, policy: Policy, candidates: Mapping[int, Policy]
) -> tuple[Experiment, ...]:
    """Each experiment with the policy its candidate arm routes by: its candidate policy, or
    this one with the team's distribution the experiment tries."""
    experiments = []
    for i, e in enumerate(spec.experiments):
        when = checker.conditions.get(("experiments", i, "when"))
        if e.policy is not None:
            candidate = replace(candidates[i], experiments=())
            arm = Experiment(e.name, e.share, e.by, when, candidate, policy_file=e.policy)
        else:
            assert e.team is not None and e.distribution is not None  # policy_checks saw to it
            teams = dict(policy.teams)
            teams[e.team] = replace(teams[e.team], distribution=e.distribution)
            candidate = replace(policy, teams=teams)
            arm = Experiment(
                e.name, e.share, e.by, when, candidate, team=e.team, distribution=e.distribution
            )
        experiments.append(arm)
    return tuple(experiments)
