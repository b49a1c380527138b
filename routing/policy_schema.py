"""The policy file's schema: the shape and the single values pydantic checks (pass 1 of 3).

Unknown keys, durations, time zones, working hours, holiday countries, cron expressions and the
like are checked here, each with a sentence an admin can act on. What one value cannot say alone
(references between sections, duplicates, `when:` conditions) is `routing.policy_checks`'s.

It is one file past 400 lines because it is one schema: each model sits beside the validators
of its own values, and split across files the sections would each need the others' types.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
)

from routing.calendar import CalendarError, parse_days, parse_hours, validate_holidays_country
from routing.distribution import Distribution
from routing.durations import DurationError, parse_duration
from routing.geo import normalize_country

# A Slack member id as the profile's "Copy member ID" gives it (U…, or W… on Enterprise Grid).
SLACK_MEMBER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
# A channel's id, as its About tab gives it: C…, or G… for a private channel made long ago.
SLACK_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")


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
    problem = validate_holidays_country(value)
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


def _floor(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(
            f"the floor is a fraction of an equal share from 0 to 1, not {value:g} "
            "(0.5: nobody below half an equal share of the week)"
        )
    return value


def _ceiling(value: float) -> float:
    if not 1 <= value <= 100:
        raise ValueError(
            f"the ceiling is a multiple of an equal share from 1 to 100, not {value:g} "
            "(2.0: nobody above twice an equal share of the week)"
        )
    return value


def _prior(value: float) -> float:
    if not 0 <= value <= 100_000:
        raise ValueError(
            f"the prior is a number of leads from 0 to 100000, not {value:g} "
            "(20: a rep's own rate counts as much as the team's after 20 leads)"
        )
    return value


def _window(value: int) -> int:
    if value < 86_400:
        raise ValueError("the outcome window is at least a day (write 90d for ninety days)")
    return value


class PerformanceSpec(_Strict):
    # How many leads' worth of the team's rate a rep's own rate is shrunk toward.
    prior: Annotated[float, AfterValidator(_prior)] = 20.0
    # How far back the outcomes are read (leads that arrived in this window).
    window: Annotated[int, BeforeValidator(_duration), AfterValidator(_window)] = 90 * 86_400


class FairnessSpec(_Strict):
    floor: Annotated[float, AfterValidator(_floor)] = 0.0
    ceiling: Annotated[float, AfterValidator(_ceiling)] | None = None


class TeamSpec(_Strict):
    members: Annotated[list[str], Field(min_length=1)]
    distribution: Distribution = Distribution.ROUND_ROBIN
    manager: str | None = None
    channel: str | None = None
    # `distribution: performance` only (`ReferenceChecker.check_team` says so otherwise).
    performance: PerformanceSpec | None = None
    fairness: FairnessSpec | None = None


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
    # From claim to first touch (a call, an e-mail, a meeting): off unless set.
    contact: Duration | None = None
    contact_by_source: dict[str, Duration] = {}
    reassign_on_contact_miss: bool = False


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
    # Read what became of routed leads (touches, conversions, opportunities won or lost).
    poll_outcomes_every: Duration | None = None
    # Lead statuses that say a rep has reached the lead ("Working - Contacted"): a lead moved to
    # one counts as touched. Empty by default: each org names its own, and many set one by rule.
    contacted_statuses: list[Annotated[str, Field(min_length=1, max_length=255)]] = []


class HubSpotSpec(_Strict):
    sync_accounts_every: Duration | None = None
    tier_property: ApiFieldName | None = None  # the company property holding the tier
    # Read the calls, e-mails, meetings and deals of routed leads' contacts this often.
    poll_outcomes_every: Duration | None = None


class CrmSpec(_Strict):
    write_on: Literal["claim", "assign"] = "claim"  # when the owner goes to the CRM record
    salesforce: SalesforceSpec = SalesforceSpec()
    hubspot: HubSpotSpec = HubSpotSpec()


# What a card shows under the lead's name and contact details, unless the policy says.
# Employee-count bands, lower bound inclusive, for a policy that names none.
DEFAULT_SEGMENTS = {"SMB": 0, "MidMarket": 200, "Enterprise": 1000}
DEFAULT_CARD_FIELDS = ("title", "industry", "employees", "country", "state", "source")
# Always on the card, whatever `card.fields` says: the header names the person, the contact
# details give the e-mail, phone and website, the footer the lead's id.
CARD_ALWAYS = ("id", "name", "first_name", "last_name", "email", "phone", "website")
MAX_CARD_FIELDS = 10  # Slack's limit on the fields of one section


class CardSpec(_Strict):
    # Checked name by name by `ReferenceChecker.check_card`, which knows where each stands.
    fields: list[str] = list(DEFAULT_CARD_FIELDS)


class RepTarget(_Strict):
    rep: str


class TeamTarget(_Strict):
    team: str
    skill: str | None = None


class QueueTarget(_Strict):
    queue: str
    channel: str | None = None


# The forms of a mapping target by the key that names it. A target is checked against the one
# form it is written in, so `{team: sales, skil: x}` is one problem (`skil`), not one per form
# it is not. The tags are the forms' class names: `policy_problems` leaves them out of key paths.
TARGET_FORMS: dict[str, type[BaseModel]] = {
    "rep": RepTarget,
    "team": TeamTarget,
    "queue": QueueTarget,
}
_TARGETS_WRITTEN = "`{rep: ID}`, `{team: NAME}`, `{team: NAME, skill: SKILL}` or `{queue: NAME}`"


def _target_form(value: Any) -> str | None:
    if isinstance(value, str):
        return "Word"
    if isinstance(value, dict):
        return next(
            (form.__name__ for key, form in TARGET_FORMS.items() if key in value),
            None,
        )
    return None


def _one_target(value: Any) -> Any:
    """A mapping target names exactly one of rep, team and queue."""
    if isinstance(value, dict):
        named = [f"`{key}`" for key in TARGET_FORMS if key in value]
        if len(named) > 1:
            raise ValueError(f"names {' and '.join(named)}: a target is one of {_TARGETS_WRITTEN}")
        if not named:
            keys = ", ".join(f"`{key}`" for key in value)
            raise ValueError(
                f"needs `rep`, `team` or `queue` (it has {keys or 'nothing'}): "
                f"write it as {_TARGETS_WRITTEN}"
            )
    return value


def _no_owner_fallback(value: Any) -> Any:
    if value == "account_owner":
        raise ValueError(
            "`account_owner` is not a fallback (the fallback serves when the rule's own target "
            f"has nobody to take the lead): write `queue`, or {_TARGETS_WRITTEN}"
        )
    return value


_TARGET_NOT_WRITTEN = f"must be `account_owner`, `queue`, or a mapping: {_TARGETS_WRITTEN}"

TargetSpec = Annotated[
    Annotated[Literal["account_owner", "queue"], Tag("Word")]
    | Annotated[RepTarget, Tag("RepTarget")]
    | Annotated[TeamTarget, Tag("TeamTarget")]
    | Annotated[QueueTarget, Tag("QueueTarget")],
    Discriminator(
        _target_form, custom_error_type="target", custom_error_message=_TARGET_NOT_WRITTEN
    ),
    BeforeValidator(_one_target),
]
FallbackTargetSpec = Annotated[
    Annotated[Literal["queue"], Tag("Word")]
    | Annotated[RepTarget, Tag("RepTarget")]
    | Annotated[TeamTarget, Tag("TeamTarget")]
    | Annotated[QueueTarget, Tag("QueueTarget")],
    Discriminator(
        _target_form,
        custom_error_type="target",
        custom_error_message=_TARGET_NOT_WRITTEN.replace("`account_owner`, ", ""),
    ),
    BeforeValidator(_one_target),
    BeforeValidator(_no_owner_fallback),
]


class RuleSpec(_Strict):
    name: str
    when: Any = None
    assign: TargetSpec
    sla: Duration | None = None
    contact_sla: Duration | None = None
    fallback: FallbackTargetSpec | None = None


class FallbackSpec(_Strict):
    queue: str = "unmatched"
    channel: str | None = None


class ExperimentSpec(_Strict):
    name: Identifier
    # The percent of the leads taking part that go to the candidate arm.
    share: Annotated[float, Field(gt=0, lt=100)]
    by: Literal["account", "lead"] = "account"
    when: Any = None
    # The candidate: another distribution for one team (both keys), or a candidate policy file
    # (beside this one; `routing.policy_bundle`). Checked together, with their lines, by
    # `ReferenceChecker.check_experiments`.
    team: str | None = None
    distribution: Distribution | None = None
    policy: Annotated[str, Field(min_length=1, max_length=255)] | None = None


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
    experiments: list[ExperimentSpec] = []


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
    "experiments": ExperimentSpec,
}


_TEAM_PARTS: dict[str, type[BaseModel]] = {
    "performance": PerformanceSpec,
    "fairness": FairnessSpec,
}


def known_keys(parent: tuple[str | int, ...]) -> list[str]:
    """The keys the schema allows under the key path `parent`, for "did you mean" hints."""
    names = [p for p in parent if isinstance(p, str)]
    if not names:
        return list(PolicySpec.model_fields)
    if names[0] == "teams":
        if len(names) == 3 and names[2] in _TEAM_PARTS:
            return list(_TEAM_PARTS[names[2]].model_fields)
        return list(TeamSpec.model_fields) if len(names) == 2 else []
    if names[0] == "rules" and names[-1] in ("assign", "fallback"):
        return ["rep", "team", "skill", "queue", "channel"]
    model = _SECTION_MODELS.get(names[0])
    return list(model.model_fields) if model else []
