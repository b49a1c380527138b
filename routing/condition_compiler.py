"""The `when:` language of the policy, compiled once into `routing.conditions`' closures.

    when: {region: NA}                               equality, strings case-insensitive
    when: {industry: [Healthcare, Biotech]}          any of
    when: {employees: {gte: 200, lt: 1000}}          operators, all must hold
    when: {all: [...]} / {any: [...]} / {not: {...}} combinators

Every error in a condition is reported at once, with its key path.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from routing import conditions
from routing.conditions import (
    ACCOUNT_FIELDS,
    CATCH_ALL,
    CUSTOM_FIELD_PREFIX,
    LEAD_FIELDS,
    Condition,
    is_number,
    show,
)
from routing.geo import STATE_COUNTRIES, normalize_country, normalize_state, state_codes_named

OPERATORS = ("gte", "gt", "lte", "lt", "ne", "in", "not_in", "contains", "matches", "exists")
COMBINATORS = ("all", "any", "not")


@dataclass(frozen=True, slots=True)
class ConditionError:
    path: tuple[str | int, ...]
    message: str


def compile_condition(
    raw: Any, *, allow_account: bool = True, path: tuple[str | int, ...] = ("when",)
) -> tuple[Condition, list[ConditionError]]:
    """Compile a `when:` value. Returns the condition and every error found (all at once)."""
    if raw is None or (isinstance(raw, Mapping) and not raw):
        return CATCH_ALL, []
    compiler = _Compiler(allow_account)
    condition = compiler.node(raw, path)
    return condition, compiler.errors


class _Compiler:
    def __init__(self, allow_account: bool) -> None:
        self.allow_account = allow_account
        self.errors: list[ConditionError] = []

    def fail(self, path: tuple[str | int, ...], message: str) -> Condition:
        self.errors.append(ConditionError(path, message))
        return CATCH_ALL

    def node(self, raw: Any, path: tuple[str | int, ...]) -> Condition:
        if not isinstance(raw, Mapping):
            return self.fail(
                path, f"a condition is a mapping such as {{region: NA}}, not {show(raw)}"
            )
        if not raw:
            return self.fail(path, "an empty condition; leave `when` out to match every lead")
        parts = [self.entry(str(key), value, (*path, str(key))) for key, value in raw.items()]
        return conditions.all_of(parts)

    def entry(self, key: str, value: Any, path: tuple[str | int, ...]) -> Condition:
        if key in ("all", "any"):
            if not isinstance(value, Sequence) or isinstance(value, str) or not value:
                return self.fail(path, f"`{key}` takes a non-empty list of conditions")
            parts = [self.node(item, (*path, i)) for i, item in enumerate(value)]
            return conditions.all_of(parts) if key == "all" else conditions.any_of(parts)
        if key == "not":
            return conditions.negate(self.node(value, path))
        field = self.field(key, path)
        if field is None:
            return CATCH_ALL
        if isinstance(value, Mapping):
            if not value:
                return self.fail(path, "an empty operator mapping")
            ops = [
                self.operator(field, str(op), arg, (*path, str(op))) for op, arg in value.items()
            ]
            return conditions.all_of(ops)
        if isinstance(value, Sequence) and not isinstance(value, str):
            return self.one_of(field, value, path, negate=False)
        return self.equals(field, value, path)

    def field(self, key: str, path: tuple[str | int, ...]) -> str | None:
        if key in LEAD_FIELDS:
            return key
        if key.startswith(CUSTOM_FIELD_PREFIX) and len(key) > len(CUSTOM_FIELD_PREFIX):
            return key
        if key in ACCOUNT_FIELDS:
            if not self.allow_account:
                self.fail(path, f"`{key}` is not known yet: accounts are matched after qualifying")
                return None
            return key
        hint = _suggest(key, [*LEAD_FIELDS, *ACCOUNT_FIELDS, *COMBINATORS])
        self.fail(path, f"unknown field `{key}`{hint}; custom fields are written fields.NAME")
        return None

    def scalar(self, value: Any, path: tuple[str | int, ...]) -> bool:
        if isinstance(value, str | int | float | bool):
            return True
        self.fail(path, f"expected a single value (text, number or true/false), got {show(value)}")
        return False

    def equals(self, field: str, value: Any, path: tuple[str | int, ...]) -> Condition:
        if not self.scalar(value, path):
            return CATCH_ALL
        return conditions.equals(field, _as_leads_have_it(field, value))

    def one_of(
        self, field: str, values: Sequence[Any], path: tuple[str | int, ...], *, negate: bool
    ) -> Condition:
        if not values:
            return self.fail(path, "an empty list matches nothing; list at least one value")
        if not all(self.scalar(v, (*path, i)) for i, v in enumerate(values)):
            return CATCH_ALL
        return conditions.one_of(
            field, [_as_leads_have_it(field, v) for v in values], negate=negate
        )

    def operator(self, field: str, op: str, arg: Any, path: tuple[str | int, ...]) -> Condition:
        if op in ("gte", "gt", "lte", "lt"):
            if not is_number(arg):
                return self.fail(path, f"`{op}` compares numbers; got {show(arg)}")
            return conditions.compare(field, op, float(arg))
        if op == "ne":
            if not self.scalar(arg, path):
                return CATCH_ALL
            arg = _as_leads_have_it(field, arg)
            return conditions.negate(conditions.equals(field, arg), f"{field} is not {show(arg)}")
        if op in ("in", "not_in"):
            if not isinstance(arg, Sequence) or isinstance(arg, str):
                return self.fail(path, f"`{op}` takes a list of values")
            return self.one_of(field, arg, path, negate=op == "not_in")
        if op == "contains":
            if not self.scalar(arg, path):
                return CATCH_ALL
            wanted = conditions.fold(str(arg))
            return _or_a_state_named(
                field, conditions.contains(field, arg), lambda name: wanted in name.casefold()
            )
        if op == "matches":
            if not isinstance(arg, str):
                return self.fail(path, "`matches` takes a regular expression as text")
            try:
                pattern = re.compile(arg, re.IGNORECASE)
            except re.error as exc:
                return self.fail(path, f"`{arg}` is not a valid regular expression: {exc}")
            return _or_a_state_named(
                field, conditions.matches(field, pattern), lambda name: bool(pattern.search(name))
            )
        if op == "exists":
            if not isinstance(arg, bool):
                return self.fail(path, "`exists` takes true or false")
            return conditions.exists(field, arg)
        return self.fail(
            path,
            f"unknown operator `{op}`{_suggest(op, OPERATORS)}; use one of {', '.join(OPERATORS)}",
        )


def _as_leads_have_it(field: str, value: Any) -> Any:
    """A value as a lead's field holds it once normalised: a lead's country is its ISO code, so
    `country: Germany` tests for DE (as `regions` lists countries by name or code). A country
    no one recognises is left as written: `check` warns that the test never holds. A US state or
    a Canadian province is its postal code, whichever way either side writes it."""
    if field == "country" and isinstance(value, str):
        return normalize_country(value) or value
    if field == "state" and isinstance(value, str):
        return normalize_state(value)
    return value


def _or_a_state_named(field: str, condition: Condition, test: Callable[[str], bool]) -> Condition:
    """`contains` or `matches` on a state: a lead's US state or Canadian province is its postal
    code, so the test holds too for the codes of those whose name passes it (`contains:
    Carolina` for NC and SC), as it did when a lead's state was its name as written. Only
    where a lead's state is read so (`lead_state`: its country the US, Canada or not given): a
    Brazilian SC (Santa Catarina) is no Carolina."""
    codes = state_codes_named(test) if field == "state" else []
    if not codes:
        return condition
    read_as_code = conditions.any_of(
        [
            conditions.exists("country", False),
            conditions.one_of("country", STATE_COUNTRIES, negate=False),
        ]
    )
    coded = conditions.all_of([conditions.one_of(field, codes, negate=False), read_as_code])
    return conditions.any_of([condition, coded])


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""
