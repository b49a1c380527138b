"""The policy's conditions as the engine runs them: plain closures over a lead's facts.

A compiled condition is called with a lead's *folded* facts (strings casefolded, numbers as
they are) and returns None when it holds, or a `Miss` naming the clause that did not. Nothing is
formatted on the hot path: a `Miss` holds the clause's precomputed description and the name of
the field, and the explanation reads the actual value from the facts only when someone asks.
The `when:` an admin writes becomes these in `routing.condition_compiler`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The lead's own facts, in the order `normalize` writes them: every lead has each of these.
LEAD_FACTS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "name",
    "company",
    "domain",
    "website",
    "title",
    "phone",
    "country",
    "state",
    "employees",
    "industry",
    "source",
    "score",
    "product",
    "crm_system",
    "crm_id",
    # derived by normalisation
    "email_domain",
    "email_domain_type",
    "email_disposable",
    "region",
    "segment",
)
LEAD_FIELDS = frozenset(LEAD_FACTS)
ACCOUNT_FIELDS = frozenset(
    {
        "account.matched",
        "account.id",
        "account.name",
        "account.owner",
        "account.tier",
        "account.domain",
        "account.match_method",
        "account.match_score",
    }
)
# A custom field of the lead (`fields.plan`), as conditions and the card name it.
CUSTOM_FIELD_PREFIX = "fields."


@dataclass(frozen=True, slots=True)
class Miss:
    """The clause that did not hold, and the field whose value the explanation should show."""

    clause: str
    field: str | None


Check = Callable[[Mapping[str, Any]], Miss | None]


@dataclass(frozen=True, slots=True)
class Gate:
    """A test that settles most misses of a condition without calling its check.

    When the folded fact `field` is None, or a string not in `accepted`, the condition's check
    returns `miss`; otherwise only the check can tell. Taken from the condition's first clause
    when that is an equality or an `in` on text ({region: NA} misses for every lead outside
    NA). The engine runs it inline before calling the check: a check is a call or two per
    rule, and a lead goes past a few dozen rules.
    """

    field: str
    accepted: frozenset[str]
    miss: Miss


@dataclass(frozen=True, slots=True)
class Condition:
    check: Check
    description: str
    fields: frozenset[str]
    catch_all: bool
    gate: Gate | None = None


def always(_facts: Mapping[str, Any]) -> Miss | None:
    return None


CATCH_ALL = Condition(always, "always", frozenset(), catch_all=True)


def fold(value: Any) -> Any:
    """The form a value is compared in: strings casefolded and stripped, everything else as is."""
    if isinstance(value, str):
        return value.strip().casefold()
    return value


# A prebuilt tuple: `isinstance(x, int | float)` builds the union on every call, and the checks
# below run for every lead.
_NUMBER_TYPES = (int, float)


def is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool)


def show(value: Any) -> str:
    """A value as a condition's description or an error message quotes it."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, Sequence):
        return "a list"
    if value is None:
        return "nothing"
    return str(value)


# One condition per clause (`equals`, `one_of`, ...) and the combinators: each works out its
# description, its miss and its gate once, when the policy is compiled, and returns the check
# the engine calls for every lead.


def _leaf(check: Check, description: str, field: str, gate: Gate | None = None) -> Condition:
    return Condition(check, description, frozenset({field}), catch_all=False, gate=gate)


def equals(field: str, value: Any) -> Condition:
    description = f"{field} is {show(value)}"
    miss = Miss(description, field)
    if isinstance(value, bool):

        def check_bool(facts: Mapping[str, Any]) -> Miss | None:
            return None if facts.get(field) is value else miss

        return _leaf(check_bool, description, field)
    if is_number(value):
        number = float(value)

        def check_number(facts: Mapping[str, Any]) -> Miss | None:
            actual = facts.get(field)
            return None if is_number(actual) and actual == number else miss

        return _leaf(check_number, description, field)
    wanted = fold(str(value))

    def check_text(facts: Mapping[str, Any]) -> Miss | None:
        actual = facts.get(field)
        if actual is None:
            return miss
        if isinstance(actual, str):
            return None if actual == wanted else miss
        return None if fold(_text(actual)) == wanted else miss

    return _leaf(check_text, description, field, Gate(field, frozenset({wanted}), miss))


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def one_of(field: str, values: Sequence[Any], *, negate: bool) -> Condition:
    shown = ", ".join(show(v) for v in values)
    description = f"{field} is {'not ' if negate else ''}one of {shown}"
    miss = Miss(description, field)
    texts = frozenset(fold(_text(v)) for v in values if not isinstance(v, bool))
    flags = frozenset(v for v in values if isinstance(v, bool))

    def check(facts: Mapping[str, Any]) -> Miss | None:
        actual = facts.get(field)
        if actual is None:
            member = False
        elif isinstance(actual, bool):
            member = actual in flags
        elif isinstance(actual, str):
            member = actual in texts
        else:
            member = fold(_text(actual)) in texts
        return miss if member == negate else None

    # Only `in` has a gate: for `not_in`, a value outside the list is what holds.
    gate = None if negate else Gate(field, texts, miss)
    return _leaf(check, description, field, gate)


_COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "gte": (">=", lambda a, b: a >= b),
    "gt": (">", lambda a, b: a > b),
    "lte": ("<=", lambda a, b: a <= b),
    "lt": ("<", lambda a, b: a < b),
}


def compare(field: str, op: str, bound: float) -> Condition:
    symbol, holds = _COMPARISONS[op]
    description = f"{field} {symbol} {_text(bound)}"
    miss = Miss(description, field)

    def check(facts: Mapping[str, Any]) -> Miss | None:
        actual = facts.get(field)
        if isinstance(actual, _NUMBER_TYPES) and not isinstance(actual, bool):
            return None if holds(actual, bound) else miss
        if isinstance(actual, str):  # custom fields from a CSV arrive as text
            try:
                return None if holds(float(actual), bound) else miss
            except ValueError:
                return miss
        return miss

    return _leaf(check, description, field)


def contains(field: str, value: Any) -> Condition:
    description = f"{field} contains {show(value)}"
    miss = Miss(description, field)
    wanted = fold(_text(value))

    def check(facts: Mapping[str, Any]) -> Miss | None:
        actual = facts.get(field)
        if isinstance(actual, str):
            return None if wanted in actual else miss
        if isinstance(actual, Sequence):
            return None if any(fold(_text(item)) == wanted for item in actual) else miss
        return miss

    return _leaf(check, description, field)


# How many texts a `matches` condition remembers the outcome of (see `matches`).
_MATCHES_MEMO_MAX = 1_000


def matches(field: str, pattern: re.Pattern[str]) -> Condition:
    description = f"{field} matches /{pattern.pattern}/"
    miss = Miss(description, field)
    # Whether the pattern is found in a text, by the text: a qualify rule's pattern is tried on
    # every lead, the texts it reads (titles) repeat from lead to lead, and a lookup costs a
    # fraction of a search. Bounded, because the texts are free.
    found: dict[str, bool] = {}

    def check(facts: Mapping[str, Any]) -> Miss | None:
        actual = facts.get(field)
        if actual is None:
            return miss
        text = _text(actual)
        hit = found.get(text)
        if hit is None:
            hit = pattern.search(text) is not None
            if len(found) < _MATCHES_MEMO_MAX:
                found[text] = hit
        return None if hit else miss

    return _leaf(check, description, field)


def exists(field: str, wanted: bool) -> Condition:
    description = f"{field} is {'set' if wanted else 'not set'}"
    miss = Miss(description, field)

    def check(facts: Mapping[str, Any]) -> Miss | None:
        actual = facts.get(field)
        present = actual is not None and actual != ""
        return None if present == wanted else miss

    return _leaf(check, description, field)


def all_of(parts: list[Condition]) -> Condition:
    real = [p for p in parts if not p.catch_all]
    if not real:
        return CATCH_ALL
    if len(real) == 1:
        return real[0]
    checks = tuple(p.check for p in real)
    if len(checks) == 2:
        # The commonest shape ({region: NA, segment: SMB}), without a loop: a Miss is always
        # true, so `or` gives the first part's miss, else the second's result.
        first, second = checks

        def check_two(facts: Mapping[str, Any]) -> Miss | None:
            return first(facts) or second(facts)

        check = check_two
    else:

        def check_all(facts: Mapping[str, Any]) -> Miss | None:
            for part in checks:
                miss = part(facts)
                if miss is not None:
                    return miss
            return None

        check = check_all

    return Condition(
        check,
        " and ".join(_group(p) for p in real),
        frozenset().union(*[p.fields for p in real]),
        catch_all=False,
        # The first part is checked first: where its gate settles a miss, so does this one.
        gate=real[0].gate,
    )


def any_of(parts: list[Condition]) -> Condition:
    if any(p.catch_all for p in parts):
        return CATCH_ALL
    checks = tuple(p.check for p in parts)
    description = " or ".join(_group(p) for p in parts)
    miss = Miss(f"none of: {description}", None)

    def check(facts: Mapping[str, Any]) -> Miss | None:
        for part in checks:
            if part(facts) is None:
                return None
        return miss

    return Condition(check, description, frozenset().union(*[p.fields for p in parts]), False)


def negate(inner: Condition, description: str | None = None) -> Condition:
    text = description or f"not ({inner.description})"
    single_field = next(iter(inner.fields)) if len(inner.fields) == 1 else None
    miss = Miss(text, single_field)
    inner_check = inner.check

    def check(facts: Mapping[str, Any]) -> Miss | None:
        return miss if inner_check(facts) is None else None

    return Condition(check, text, inner.fields, catch_all=False)


def _group(condition: Condition) -> str:
    text = condition.description
    return f"({text})" if " and " in text or " or " in text else text
