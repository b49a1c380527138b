# Just over 400 lines on purpose: pass 2 is one walk of the raw tree, each check reading the
# ids the walk collected; split, each part would walk it again.
"""What the schema cannot see (pass 2 of 3): references, duplicates, conditions, dead rules.

A rep named in a team but defined nowhere, a manager or team misspelled, two rules of one name,
a `when:` that does not compile, a rule after a catch-all that can never match, a card field no
lead has: each is a `Problem` with its key path. The checker walks the raw YAML tree
defensively, so it reports even when the schema pass failed, and every problem comes at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from routing.condition_compiler import compile_condition
from routing.conditions import ACCOUNT_FIELDS, CUSTOM_FIELD_PREFIX, LEAD_FIELDS, Condition
from routing.geo import DEFAULT_REGIONS, normalize_country
from routing.policy_problems import KeyPath, Problem
from routing.policy_schema import (
    CARD_ALWAYS,
    DEFAULT_SEGMENTS,
    MAX_CARD_FIELDS,
    SLACK_CHANNEL_ID,
    SLACK_MEMBER_ID,
)

# Operators whose operands are whole values of the field (not a part of it, as for `contains`).
_WHOLE_VALUE_OPERATORS = ("ne", "in", "not_in")


class ReferenceChecker:
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
        self.check_contact_sla()
        self.check_bare_durations()
        self.check_threshold_scale()
        self.check_card()
        self.check_experiments(team_specs)
        return self.problems

    def check_experiments(self, teams: Mapping[str, Mapping[str, Any]]) -> None:
        """Each experiment: a unique name, its `when:`, and one candidate, a team (one of the
        policy's) with the distribution it would try."""
        names: dict[str, int] = {}
        for index, experiment in self.items("experiments"):
            path: KeyPath = ("experiments", index)
            name = experiment.get("name")
            if isinstance(name, str):
                if name in names:
                    self.error(
                        (*path, "name"),
                        f"duplicate experiment name `{name}` (first at experiments[{names[name]}])",
                    )
                names.setdefault(name, index)
            if experiment.get("when") is not None:
                self.condition(experiment.get("when"), (*path, "when"), allow_account=True)
            team = experiment.get("team")
            distribution = experiment.get("distribution")
            if experiment.get("policy") is not None:
                if team is not None or distribution is not None:
                    self.error(
                        path,
                        "an experiment's candidate is `policy:` or `team:` with `distribution:`, "
                        "not both",
                    )
                continue
            if team is None and distribution is None:
                self.error(
                    path,
                    "an experiment needs its candidate: `team:` and the `distribution:` to try, "
                    "or `policy:` a candidate policy file",
                )
                continue
            if team is None or distribution is None:
                missing = "team" if team is None else "distribution"
                self.error(
                    path,
                    f"a team candidate needs both `team:` and `distribution:` (no `{missing}:`)",
                )
                continue
            if not isinstance(team, str):
                continue
            if team not in teams:
                self.error(
                    (*path, "team"),
                    f"`{team}` is not a team defined under teams{_hint(team, teams)}",
                )
                continue
            current = teams[team].get("distribution", "round_robin")
            if distribution == current:
                self.warn(
                    (*path, "distribution"),
                    f"team {team} already uses {distribution}: both arms would route alike",
                )

    def check_contact_sla(self) -> None:
        """Reassigning on a missed contact SLA needs a contact SLA somewhere to miss."""
        sla = self.tree.get("sla")
        if not isinstance(sla, Mapping) or sla.get("reassign_on_contact_miss") is not True:
            return
        if sla.get("contact") is not None or sla.get("contact_by_source"):
            return
        if any(rule.get("contact_sla") is not None for _, rule in self.items("rules")):
            return
        self.error(
            ("sla", "reassign_on_contact_miss"),
            "there is no contact SLA to miss: set `sla.contact` (the time from claim to first "
            "touch, e.g. 4h), `sla.contact_by_source` or a rule's `contact_sla`",
        )

    def check_bare_durations(self) -> None:
        """A duration written as a bare number is read as seconds: `default: 15` is a 15-second
        SLA, which reassigns every lead before its rep has seen the card. Said, not refused."""
        found: list[tuple[KeyPath, Any]] = []
        sla = self.tree.get("sla")
        if isinstance(sla, Mapping):
            for key in ("default", "check_every", "contact"):
                found.append((("sla", key), sla.get(key)))
            for key in ("by_source", "contact_by_source"):
                sources = sla.get(key)
                if isinstance(sources, Mapping):
                    found.extend((("sla", key, str(k)), v) for k, v in sources.items())
        for index, rule in self.items("rules"):
            for key in ("sla", "contact_sla"):
                found.append((("rules", index, key), rule.get(key)))
        crm = self.tree.get("crm")
        if isinstance(crm, Mapping):
            for system, spec in crm.items():
                if isinstance(spec, Mapping):
                    found.extend(
                        (("crm", str(system), str(key)), value)
                        for key, value in spec.items()
                        if str(key).endswith("_every")
                    )
        for path, value in found:
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                self.warn(
                    path,
                    f"`{value}` has no unit, so it is read as {value} seconds; write the unit "
                    f"you mean, such as {value}s or {value}m",
                )

    def check_threshold_scale(self) -> None:
        """`fuzzy_threshold` is 0-100; 0.9 written as a fraction matches nearly any name."""
        accounts = self.tree.get("accounts")
        value = accounts.get("fuzzy_threshold") if isinstance(accounts, Mapping) else None
        if isinstance(value, float) and 0 < value <= 1:
            self.warn(
                ("accounts", "fuzzy_threshold"),
                f"{value:g} is on a scale of 0 to 100, so nearly any company name would match an "
                f"account; did you mean {value * 100:g}?",
            )

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
        for path, channel in _channels(self.tree, ()):
            if not SLACK_CHANNEL_ID.fullmatch(channel):
                self.warn(
                    path,
                    f"`{channel}` is a channel's name, not its id: give the id (C…, at the "
                    "bottom of the channel's About tab); a lost post is found again by the id",
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
        if team.get("distribution") != "performance":
            for part in ("performance", "fairness"):
                if team.get(part) is not None:
                    self.error(
                        ("teams", name, part),
                        f"`{part}` applies to `distribution: performance` only "
                        f"(this team's is {team.get('distribution', 'round_robin')})",
                    )
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

    def check_has_rules(self) -> list[Problem]:
        """A warning for a policy without rules, which loads and routes no lead to anyone (for a
        policy that loads only: beside a fragment's errors it would be noise)."""
        if self.items("rules"):
            return []
        fallback = self.tree.get("fallback")
        queue = fallback.get("queue") if isinstance(fallback, Mapping) else None
        return [
            Problem(
                ("rules",),
                "there are no rules, so every lead that qualifies waits in the fallback queue "
                f"`{queue if isinstance(queue, str) else 'unmatched'}`: write the rules that give "
                "leads to reps and teams",
                severity="warning",
            )
        ]

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
        self.check_values(raw, path)
        return condition

    def closed_values(self) -> dict[str, list[str]]:
        """The fields whose every value is known in advance, with those values: a condition
        that names another tests for something no lead has (a typo, mostly)."""
        regions = self.tree.get("regions")
        segments = self.tree.get("segments")
        own = [str(name) for name in regions] if isinstance(regions, Mapping) else []
        return {
            "region": own + [name for name in DEFAULT_REGIONS if name not in own],
            "segment": [str(name) for name in segments]
            if isinstance(segments, Mapping)
            else list(DEFAULT_SEGMENTS),
            "email_domain_type": ["free", "business"],
        }

    def check_values(self, raw: Any, path: KeyPath) -> None:
        """Warn of each value a compiled condition compares a closed field with that no lead can
        have (`segment: SMBB`); a warning, not an error: the policy still routes, the test
        just never holds."""
        known = self.closed_values()
        stack: list[tuple[Any, KeyPath]] = [(raw, path)]
        while stack:
            node, where = stack.pop()
            if isinstance(node, list):
                stack.extend((item, (*where, i)) for i, item in enumerate(node))
                continue
            if not isinstance(node, Mapping):
                continue
            for key, value in node.items():
                key = str(key)
                if key in ("all", "any", "not"):
                    stack.append((value, (*where, key)))
                elif key in known:
                    for operand, at in _whole_values(value, (*where, key)):
                        self.check_value(key, operand, at, known[key])
                elif key == "country":
                    for operand, at in _whole_values(value, (*where, key)):
                        if isinstance(operand, str) and normalize_country(operand) is None:
                            self.warn(
                                at,
                                f"`{operand}` is not a country leadrouter recognises (write a "
                                "name or ISO code, such as Germany or DE): no lead's country is "
                                "ever that",
                            )

    def check_value(self, field: str, value: Any, path: KeyPath, known: list[str]) -> None:
        by_case = {k.casefold(): k for k in known}  # values compare whatever their case
        if not isinstance(value, str) or value.casefold() in by_case:
            return
        close = difflib.get_close_matches(value.casefold(), list(by_case), n=1, cutoff=0.5)
        hint = f"; did you mean `{by_case[close[0]]}`?" if close else ""
        self.warn(
            path,
            f"`{value}` is not a value {field} can have ({', '.join(known)}{hint}): "
            "this test never holds",
        )

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


def _whole_values(value: Any, path: KeyPath) -> list[tuple[Any, KeyPath]]:
    """The values a field is compared with as a whole, each with its key path: `X`, `[X, Y]`,
    and the operands of `ne`, `in` and `not_in`."""
    if isinstance(value, list):
        return [(item, (*path, i)) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        found: list[tuple[Any, KeyPath]] = []
        for operator in _WHOLE_VALUE_OPERATORS:
            if operator in value:
                found.extend(_whole_values(value[operator], (*path, operator)))
        return found
    return [(value, path)]


def _channels(node: Any, path: KeyPath) -> list[tuple[KeyPath, str]]:
    """Every `channel:` the policy gives (a team's, a queue's, the fallback's), with its path."""
    found: list[tuple[KeyPath, str]] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "channel" and isinstance(value, str):
                found.append(((*path, key), value))
            else:
                found.extend(_channels(value, (*path, str(key))))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.extend(_channels(item, (*path, index)))
    return found


def card_field_exists(name: str) -> bool:
    """Whether `name` is a fact a lead can have: its own, its account's, or a custom field."""
    if name.startswith(CUSTOM_FIELD_PREFIX):
        return len(name) > len(CUSTOM_FIELD_PREFIX)
    return name in LEAD_FIELDS or name in ACCOUNT_FIELDS


def _hint(word: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""
