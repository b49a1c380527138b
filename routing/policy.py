"""The admin's policy file: schema, every error at once with its line, and the compiled policy.

Loading goes in three passes over one YAML tree that remembers where each key stood:
1. pydantic checks the shape and the values (unknown keys, durations, time zones, cron...);
2. our own pass checks what pydantic cannot see: references between reps, teams and managers,
   duplicate ids, the `when:` conditions, rules that can never be reached;
3. only a policy with no errors is compiled into the plain, fast structures the engine reads.
Every problem carries file:line:column and the key path, so an admin can fix all of them in one go.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from routing.calendar import CalendarError, OffHoursMemo, WorkingHours, parse_days, parse_hours
from routing.calendar import validate_holidays_country as holidays_problem
from routing.conditions import ACCOUNT_FIELDS, LEAD_FIELDS, Condition, compile_condition
from routing.durations import DurationError, parse_duration
from routing.geo import normalize_country

KeyPath = tuple[str | int, ...]
# A Slack member id as the profile's "Copy member ID" gives it (U…, or W… on Enterprise Grid).
SLACK_MEMBER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


class Distribution(StrEnum):
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    LEAST_LOADED = "least_loaded"


# ---------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True, slots=True)
class Problem:
    path: KeyPath
    message: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    severity: Literal["error", "warning"] = "error"

    def format(self, filename: str) -> str:
        where = filename
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        label = "warning: " if self.severity == "warning" else ""
        key = dotted(self.path)
        return f"{where}: {label}{key + ': ' if key else ''}{self.message}"


class PolicyError(Exception):
    """The policy could not be loaded; `problems` lists every error (and warning) found."""

    def __init__(self, filename: str, problems: Sequence[Problem]) -> None:
        self.filename = filename
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        super().__init__(f"{filename}: {len(errors)} error(s) in the policy")

    def report(self) -> str:
        return "\n".join(p.format(self.filename) for p in self.problems)


class PolicyFileMissing(PolicyError):
    """There is no file at the policy's path."""


def dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# ---------------------------------------------------------------------------------------------
# The schema (shape and single values)


def _duration(value: Any) -> int:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(str(exc)) from None


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown time zone '{value}'{hint}") from None
    return value


def _hours(value: str) -> str:
    try:
        parse_hours(value)
    except CalendarError as exc:
        raise ValueError(str(exc)) from None
    return value


def _days(value: str | list[str]) -> str | list[str]:
    try:
        parse_days(value)
    except CalendarError as exc:
        raise ValueError(str(exc)) from None
    return value


def _holidays(value: str) -> str:
    problem = holidays_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _country(value: str) -> str:
    code = normalize_country(value)
    if code is None:
        raise ValueError(f"'{value}' is not a country name or ISO code")
    return code


def _cron(value: str) -> str:
    # Validated by the parser the scheduler will run it with, so the two can never disagree.
    from routing.cron import crontab_trigger

    try:
        crontab_trigger(value, timezone="UTC")
    except ValueError as exc:
        raise ValueError(
            f"'{value}' is not a cron expression ({exc}); write five fields like '0 9 * * mon-fri'"
        ) from None
    return value


Duration = Annotated[int, BeforeValidator(_duration)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
Country = Annotated[str, AfterValidator(_country)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepSpec(_Strict):
    id: Identifier
    name: str | None = None
    slack: str | None = None
    email: str | None = None
    timezone: TimeZoneName | None = None
    hours: Annotated[str, AfterValidator(_hours)] | None = None
    days: Annotated[str | list[str], AfterValidator(_days)] | None = None
    capacity: Annotated[int, Field(ge=0)] | None = None
    weight: Annotated[int, Field(ge=1, le=1000)] = 1
    skills: list[str] = []
    holidays: Annotated[str, AfterValidator(_holidays)] | None = None
    salesforce_user_id: str | None = None
    hubspot_owner_id: str | None = None


class ManagerSpec(_Strict):
    id: Identifier
    name: str | None = None
    slack: str | None = None
    email: str | None = None
    timezone: TimeZoneName | None = None
    digest: Annotated[str, AfterValidator(_cron)] | None = None


class TeamSpec(_Strict):
    members: Annotated[list[str], Field(min_length=1)]
    distribution: Distribution = Distribution.ROUND_ROBIN
    manager: str | None = None
    channel: str | None = None


class QualifySpec(_Strict):
    name: str
    when: Any
    outcome: Literal["nurture", "disqualified"]


class SlaSpec(_Strict):
    default: Duration = 15 * 60
    by_source: dict[str, Duration] = {}
    max_reassignments: Annotated[int, Field(ge=0)] = 2
    check_every: Duration = 10
    remind_at_half: bool = False
    clock: Literal["wall", "business"] = "wall"


class AccountsSpec(_Strict):
    fuzzy_threshold: Annotated[float, Field(ge=0, le=100)] = 90
    sticky: bool = False
    # Two accounts nearly as likely for a lead's company name: route by the rules as if no
    # account matched, or send the lead to the fallback queue for a person to pick.
    on_ambiguous: Literal["rules", "queue"] = "rules"


SalesforceQueueId = Annotated[str, Field(pattern=r"^00G[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")]
ApiFieldName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")]


class SalesforceSpec(_Strict):
    poll_leads_every: Duration | None = None  # take new Leads this often; off when absent
    intake_queue: SalesforceQueueId | None = None  # only Leads owned by this queue
    sync_accounts_every: Duration | None = None
    tier_field: ApiFieldName | None = None  # the Account field holding the tier


class HubSpotSpec(_Strict):
    sync_accounts_every: Duration | None = None
    tier_property: ApiFieldName | None = None  # the company property holding the tier


class CrmSpec(_Strict):
    write_on: Literal["claim", "assign"] = "claim"  # when the owner goes to the CRM record
    salesforce: SalesforceSpec = SalesforceSpec()
    hubspot: HubSpotSpec = HubSpotSpec()


# What a card shows under the lead's name and contact details, unless the policy says.
DEFAULT_CARD_FIELDS = ("title", "industry", "employees", "country", "state", "source")
# Always on the card, whatever `card.fields` says: the header names the person, the contact
# details give the e-mail, phone and website, the footer the lead's id.
CARD_ALWAYS = ("id", "name", "first_name", "last_name", "email", "phone", "website")
MAX_CARD_FIELDS = 10  # Slack's limit on the fields of one section
CUSTOM_FIELD_PREFIX = "fields."


class CardSpec(_Strict):
    # Checked name by name by `_ReferenceChecker.check_card`, which knows where each stands.
    fields: list[str] = list(DEFAULT_CARD_FIELDS)


class RepTarget(_Strict):
    rep: str


class TeamTarget(_Strict):
    team: str
    skill: str | None = None


class QueueTarget(_Strict):
    queue: str
    channel: str | None = None


TargetSpec = Literal["account_owner", "queue"] | RepTarget | TeamTarget | QueueTarget
FallbackTargetSpec = Literal["queue"] | RepTarget | TeamTarget | QueueTarget


class RuleSpec(_Strict):
    name: str
    when: Any = None
    assign: TargetSpec
    sla: Duration | None = None
    fallback: FallbackTargetSpec | None = None


class FallbackSpec(_Strict):
    queue: str = "unmatched"
    channel: str | None = None


class PolicySpec(_Strict):
    timezone: TimeZoneName = "UTC"
    regions: dict[str, list[Country]] | None = None
    segments: dict[str, Annotated[int, Field(ge=0)]] | None = None
    reps: list[RepSpec] = []
    managers: list[ManagerSpec] = []
    teams: dict[str, TeamSpec] = {}
    qualify: list[QualifySpec] = []
    sla: SlaSpec = SlaSpec()
    accounts: AccountsSpec = AccountsSpec()
    rules: list[RuleSpec] = []
    fallback: FallbackSpec = FallbackSpec()
    crm: CrmSpec = CrmSpec()
    card: CardSpec = CardSpec()


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
    # every field some condition reads: only these are casefolded for each lead
    condition_fields: frozenset[str] = frozenset()
    teams_of_rep: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # who is off working hours this minute, filled in by the engine as it looks (a memo of a
    # pure function of the policy and the minute; see engine.OffHoursMemo)
    off_hours: OffHoursMemo = field(default_factory=OffHoursMemo, compare=False, repr=False)

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


DEFAULT_SEGMENTS = {"SMB": 0, "MidMarket": 200, "Enterprise": 1000}


# ---------------------------------------------------------------------------------------------
# Loading


def default_policy_path() -> Path:
    return Path(os.environ.get("LEADROUTER_RULES") or "routing.yml")


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Load and compile a policy file. Raises PolicyError with every problem found."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyFileMissing(str(file), [Problem((), "no such policy file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(file), [Problem((), f"cannot read the policy file: {exc}")]) from None
    return parse_policy(text, source=str(file))


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise PolicyError(
            source, [Problem((), f"not valid YAML: {message}", line, column)]
        ) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (bad encodings, tabs)
        raise PolicyError(source, [Problem((), f"not valid YAML: {exc}")]) from None
    if tree is None or tree == {}:
        raise PolicyError(
            source,
            [Problem((), "the policy is empty: it needs its reps, teams and rules at least")],
        )
    if not isinstance(tree, Mapping):
        raise PolicyError(source, [Problem((), "the policy must be a YAML mapping of keys")])

    locate = _Locator(tree)
    problems: list[Problem] = []
    spec: PolicySpec | None = None
    try:
        spec = PolicySpec.model_validate(_plain(tree))
    except ValidationError as exc:
        problems.extend(_schema_problems(exc, tree))
    checker = _ReferenceChecker(tree)
    problems.extend(checker.run())
    problems = [locate(p) for p in problems]
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    if any(p.severity == "error" for p in problems) or spec is None:
        raise PolicyError(source, problems)
    # Only for a policy that loads: beside errors to fix they would be noise.
    problems.extend(locate(p) for p in checker.check_slack_reach())
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return _compile(spec, checker, warnings=tuple(problems), source=source)


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers as plain dicts and lists (pydantic wants plain data)."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def _schema_problems(exc: ValidationError, tree: Mapping[str, Any]) -> Iterator[Problem]:
    for error in exc.errors(include_url=False):
        path = _clean_loc(error["loc"])
        kind = error["type"]
        message = str(error["msg"])
        if kind == "extra_forbidden":
            key = str(path[-1])
            known = _known_keys(path[:-1])
            hint = difflib.get_close_matches(key, known, n=1)
            message = f"unknown key `{key}`" + (f" (did you mean `{hint[0]}`?)" if hint else "")
            if known:
                message += f"; expected one of {', '.join(known)}"
        elif kind == "missing":
            message = f"`{path[-1]}` is required"
        elif kind == "too_short" and path[-1] == "members":
            message = "a team needs at least one member"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        elif message.startswith("Input should be"):
            message = message.replace("Input should be", "must be").split(", unable to")[0]
            value = error.get("input")
            if isinstance(value, str | int | float | bool):
                message += f"; got {value!r}"
        yield Problem(path, message)


def _clean_loc(loc: tuple[int | str, ...]) -> KeyPath:
    """Drop pydantic's union-member tags ("RepTarget", "literal['queue']") from a location."""
    cleaned: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and (
            part[:1].isupper() or part.startswith(("literal[", "str", "list[", "function-"))
        ):
            continue
        cleaned.append(part)
    return tuple(cleaned)


_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "reps": RepSpec,
    "managers": ManagerSpec,
    "teams": TeamSpec,
    "qualify": QualifySpec,
    "sla": SlaSpec,
    "accounts": AccountsSpec,
    "rules": RuleSpec,
    "fallback": FallbackSpec,
    "card": CardSpec,
}


def _known_keys(parent: KeyPath) -> list[str]:
    names = [p for p in parent if isinstance(p, str)]
    if not names:
        return list(PolicySpec.model_fields)
    if names[0] == "teams":
        return list(TeamSpec.model_fields) if len(names) == 2 else []
    if names[0] == "rules" and names[-1] in ("assign", "fallback"):
        return ["rep", "team", "skill", "queue", "channel"]
    model = _SECTION_MODELS.get(names[0])
    return list(model.model_fields) if model else []


def _node_at(tree: Any, path: KeyPath) -> Any:
    node = tree
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


class _Locator:
    """Finds the line and column of a key path in the round-trip YAML tree."""

    def __init__(self, tree: Any) -> None:
        self.tree = tree

    def __call__(self, problem: Problem) -> Problem:
        line, column = self.position(problem.path)
        return Problem(problem.path, problem.message, line, column, problem.severity)

    def position(self, path: KeyPath) -> tuple[int | None, int | None]:
        node = self.tree
        found: tuple[int, int] | None = (0, 0)
        for part in path:
            lc = getattr(node, "lc", None)
            if lc is None:
                break
            try:
                if isinstance(node, Mapping) and part in node:
                    found = lc.key(part)
                elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                    found = lc.item(part)
                else:
                    break
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
        if found is None:
            return None, None
        return found[0] + 1, found[1] + 1


# ---------------------------------------------------------------------------------------------
# What the schema cannot see: references, duplicates, conditions, unreachable rules


class _ReferenceChecker:
    """Walks the raw tree defensively, so it reports even when the schema pass failed."""

    def __init__(self, tree: Mapping[str, Any]) -> None:
        self.tree = tree
        self.problems: list[Problem] = []
        self.conditions: dict[KeyPath, Condition] = {}

    def error(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(path, message))

    def warn(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(path, message, severity="warning"))

    def items(self, key: str) -> list[tuple[int, Mapping[str, Any]]]:
        section = self.tree.get(key)
        if not isinstance(section, list):
            return []
        return [(i, item) for i, item in enumerate(section) if isinstance(item, Mapping)]

    def ids(self, key: str) -> dict[str, int]:
        seen: dict[str, int] = {}
        for index, item in self.items(key):
            ident = item.get("id")
            if not isinstance(ident, str):
                continue
            if ident in seen:
                self.error(
                    (key, index, "id"), f"duplicate id `{ident}` (first at {key}[{seen[ident]}])"
                )
            else:
                seen[ident] = index
        return seen

    def run(self) -> list[Problem]:
        reps = self.ids("reps")
        managers = self.ids("managers")
        teams = self.tree.get("teams")
        team_specs: dict[str, Mapping[str, Any]] = {}
        if isinstance(teams, Mapping):
            team_specs = {str(k): v for k, v in teams.items() if isinstance(v, Mapping)}
        self.check_days_need_hours()
        self.check_regions()
        self.check_segments()
        for name, team in team_specs.items():
            self.check_team(name, team, reps, managers)
        self.check_qualify()
        self.check_rules(reps, team_specs)
        self.check_card()
        return self.problems

    def check_card(self) -> None:
        card = self.tree.get("card")
        names = card.get("fields") if isinstance(card, Mapping) else None
        if not isinstance(names, list):
            return  # absent, or the schema reports what is wrong with it
        if len(names) > MAX_CARD_FIELDS:
            self.error(
                ("card", "fields"),
                f"a card has room for {MAX_CARD_FIELDS} fields (Slack's limit); "
                f"{len(names)} are listed",
            )
        seen: set[str] = set()
        for index, name in enumerate(names):
            if not isinstance(name, str):
                continue
            path: KeyPath = ("card", "fields", index)
            if name in seen:
                self.error(path, f"`{name}` is listed twice")
            seen.add(name)
            if name in CARD_ALWAYS:
                self.warn(
                    path,
                    f"`{name}` is always on the card (the contact details); listed here it is "
                    "left out",
                )
            elif not card_field_exists(name):
                known = sorted((LEAD_FIELDS | ACCOUNT_FIELDS) - set(CARD_ALWAYS))
                self.error(
                    path,
                    f"`{name}` is not a lead field{_hint(name, dict.fromkeys(known))}; custom "
                    f"fields are written {CUSTOM_FIELD_PREFIX}NAME",
                )

    def check_days_need_hours(self) -> None:
        for index, rep in self.items("reps"):
            if rep.get("days") is not None and rep.get("hours") is None:
                self.error(
                    ("reps", index, "days"), "`days` needs `hours` too, e.g. hours: 09:00-17:00"
                )

    def check_slack_reach(self) -> list[Problem]:
        """Warnings, not errors: routing works without Slack, but a person Slack cannot find
        gets no card (a rep's lead moves on to the next rep)."""
        found = len(self.problems)
        for section in ("reps", "managers"):
            for index, person in self.items(section):
                slack, email = person.get("slack"), person.get("email")
                if isinstance(slack, str) and not SLACK_MEMBER_ID.fullmatch(slack):
                    self.warn(
                        (section, index, "slack"),
                        f"`{slack}` is a name, not a Slack member id: copy theirs (U…) from "
                        "their Slack profile (⋮, Copy member ID), or leave `slack` out and give "
                        "the `email` they use in Slack",
                    )
                elif slack is None and not email:
                    self.warn(
                        (section, index),
                        f"`{person.get('id')}` has neither `slack` nor `email`: leadrouter "
                        "cannot reach them in Slack; give their member id or their e-mail",
                    )
        return self.problems[found:]

    def check_regions(self) -> None:
        regions = self.tree.get("regions")
        if not isinstance(regions, Mapping):
            return
        owner: dict[str, str] = {}
        for region, countries in regions.items():
            if not isinstance(countries, list):
                continue
            for i, country in enumerate(countries):
                code = normalize_country(country) if isinstance(country, str) else None
                if code is None:
                    continue
                if code in owner and owner[code] != region:
                    self.error(
                        ("regions", str(region), i),
                        f"{code} is already in region {owner[code]}; a country has one region",
                    )
                owner[code] = str(region)

    def check_segments(self) -> None:
        segments = self.tree.get("segments")
        if not isinstance(segments, Mapping):
            return
        seen: dict[int, str] = {}
        for name, bound in segments.items():
            if isinstance(bound, int) and not isinstance(bound, bool):
                if bound in seen:
                    self.error(
                        ("segments", str(name)),
                        f"segments {seen[bound]} and {name} both start at {bound} employees",
                    )
                seen[bound] = str(name)

    def check_team(
        self,
        name: str,
        team: Mapping[str, Any],
        reps: Mapping[str, int],
        managers: Mapping[str, int],
    ) -> None:
        members = team.get("members")
        if isinstance(members, list):
            seen: set[str] = set()
            for i, member in enumerate(members):
                if not isinstance(member, str):
                    continue
                if member not in reps:
                    self.error(
                        ("teams", name, "members", i),
                        f"`{member}` is not a rep defined under reps{_hint(member, reps)}",
                    )
                if member in seen:
                    self.error(("teams", name, "members", i), f"`{member}` is listed twice")
                seen.add(member)
        manager = team.get("manager")
        if isinstance(manager, str) and manager not in managers:
            self.error(
                ("teams", name, "manager"),
                f"`{manager}` is not a manager defined under managers{_hint(manager, managers)}",
            )

    def check_qualify(self) -> None:
        names: dict[str, int] = {}
        catch_all: str | None = None
        for index, rule in self.items("qualify"):
            path: KeyPath = ("qualify", index)
            self.unique_name(rule, path, names, "qualify")
            if catch_all is not None:
                self.warn(path, f"comes after the catch-all `{catch_all}` and can never match")
            condition = self.condition(rule.get("when"), (*path, "when"), allow_account=False)
            if condition is not None and condition.catch_all:
                if rule.get("when") is None:
                    continue  # the schema reports the missing `when`
                catch_all = str(rule.get("name", index))

    def check_rules(self, reps: Mapping[str, int], teams: Mapping[str, Mapping[str, Any]]) -> None:
        names: dict[str, int] = {}
        catch_all: str | None = None
        for index, rule in self.items("rules"):
            path: KeyPath = ("rules", index)
            self.unique_name(rule, path, names, "rules")
            if catch_all is not None:
                self.warn(path, f"comes after the catch-all rule `{catch_all}` and can never match")
            condition = self.condition(rule.get("when"), (*path, "when"), allow_account=True)
            for key in ("assign", "fallback"):
                self.check_target(rule.get(key), (*path, key), reps, teams)
            if condition is not None and condition.catch_all:
                catch_all = str(rule.get("name", index))

    def unique_name(
        self, rule: Mapping[str, Any], path: KeyPath, names: dict[str, int], section: str
    ) -> None:
        name = rule.get("name")
        if not isinstance(name, str):
            return
        if name in names:
            self.error(
                (*path, "name"), f"duplicate rule name `{name}` (first at {section}[{names[name]}])"
            )
        names[name] = int(path[1])

    def condition(self, raw: Any, path: KeyPath, *, allow_account: bool) -> Condition | None:
        condition, errors = compile_condition(raw, allow_account=allow_account, path=path)
        for error in errors:
            self.error(error.path, error.message)
        if errors:
            return None
        self.conditions[path] = condition
        return condition

    def check_target(
        self,
        target: Any,
        path: KeyPath,
        reps: Mapping[str, int],
        teams: Mapping[str, Mapping[str, Any]],
    ) -> None:
        if not isinstance(target, Mapping):
            return
        rep = target.get("rep")
        if isinstance(rep, str) and rep not in reps:
            self.error((*path, "rep"), f"`{rep}` is not a rep defined under reps{_hint(rep, reps)}")
        team = target.get("team")
        if isinstance(team, str):
            if team not in teams:
                self.error(
                    (*path, "team"),
                    f"`{team}` is not a team defined under teams{_hint(team, teams)}",
                )
                return
            skill = target.get("skill")
            if isinstance(skill, str) and not self.team_has_skill(teams[team], skill):
                self.warn(
                    (*path, "skill"),
                    f"no member of team {team} has skill `{skill}`; the rule will always fall back",
                )

    def team_has_skill(self, team: Mapping[str, Any], skill: str) -> bool:
        members = team.get("members") if isinstance(team.get("members"), list) else []
        skills_of = {rep.get("id"): rep.get("skills") for _, rep in self.items("reps")}
        return any(
            isinstance(skills_of.get(m), list) and skill in skills_of[m]  # type: ignore[operator]
            for m in members or []
        )


def card_field_exists(name: str) -> bool:
    """Whether `name` is a fact a lead can have: its own, its account's, or a custom field."""
    if name.startswith(CUSTOM_FIELD_PREFIX):
        return len(name) > len(CUSTOM_FIELD_PREFIX)
    return name in LEAD_FIELDS or name in ACCOUNT_FIELDS


def _hint(word: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


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


def _compile(
    spec: PolicySpec, checker: _ReferenceChecker, *, warnings: tuple[Problem, ...], source: str
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
        name: Team(name, tuple(t.members), t.distribution, t.manager, t.channel)
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
            fallback=_target(r.fallback, spec.fallback) if r.fallback is not None else None,
        )
        for i, r in enumerate(spec.rules)
    )
    return Policy(
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
            by_source={k.strip().casefold(): v for k, v in spec.sla.by_source.items()},
            max_reassignments=spec.sla.max_reassignments,
            check_every=spec.sla.check_every,
            remind_at_half=spec.sla.remind_at_half,
            clock=spec.sla.clock,
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
            *(q.when.fields for q in qualify), *(r.when.fields for r in rules)
        ),
        teams_of_rep={k: tuple(v) for k, v in teams_of_rep.items()},
    )
