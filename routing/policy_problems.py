"""A policy's problems: each with its key path, and its line and column in the admin's file.

Every pass over the policy (the schema, the reference checks) reports `Problem`s by key path
(`rules[2].assign.team`); `Locator` finds where that key stands in the YAML, so an admin reads
`routing.yml:14:9: rules[2].assign.team: ...` and can fix every problem in one go.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from routing.policy_schema import known_keys

KeyPath = tuple[str | int, ...]


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


def dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def schema_problems(exc: ValidationError) -> Iterator[Problem]:
    """pydantic's validation errors as problems, in words an admin reads rather than a developer."""
    for error in exc.errors(include_url=False):
        path = _clean_loc(error["loc"])
        kind = error["type"]
        message = str(error["msg"])
        if kind == "extra_forbidden":
            key = str(path[-1])
            known = known_keys(path[:-1])
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


class Locator:
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
