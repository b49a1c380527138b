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
from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from routing.policy_schema import TARGET_FORMS, known_keys

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


def schema_problems(exc: ValidationError, tree: Any = None) -> Iterator[Problem]:
    """pydantic's validation errors as problems, in words an admin reads rather than a developer.
    `tree` is the policy as read, to tell its keys from pydantic's tags in an error's location."""
    for error in exc.errors(include_url=False):
        path = _clean_loc(error["loc"], tree)
        kind = error["type"]
        message = str(error["msg"])
        if kind == "extra_forbidden":
            key = str(path[-1])
            form = _TARGET_FORMS.get(str(error["loc"][-2])) if len(error["loc"]) > 1 else None
            known = list(form.model_fields) if form else known_keys(path[:-1])
            hint = difflib.get_close_matches(key, known, n=1)
            message = f"unknown key `{key}`" + (f" (did you mean `{hint[0]}`?)" if hint else "")
            if known:
                message += f"; expected one of {', '.join(known)}"
        elif kind == "missing":
            message = f"`{path[-1]}` is required"
        elif (
            kind == "list_type"
            and type(error.get("input")) in (str, int, float)
            and not str(error["loc"][-1]).startswith("list[")  # one form of a union: `days`
        ):
            # `skills: healthcare`, `members: alice`: one item where a list is wanted.
            value = error["input"]
            message = f"must be a list, even of one: [{value}]; got {value!r}"
        elif kind == "too_short" and path[-1] == "members":
            message = "a team needs at least one member"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        elif kind == "target" and error.get("input", "") is None:
            message = "has no value: write one after the colon"  # `assign:` and nothing after it
        elif message.startswith("Input should be") and error.get("input", "") is None:
            message = "has no value: write one after the colon"  # `queue:` and nothing after it
        elif message.startswith("Input should be"):
            message = message.replace("Input should be", "must be").split(", unable to")[0]
            value = error.get("input")
            if isinstance(value, str | int | float | bool):
                message += f"; got {value!r}"
        yield Problem(path, message)


# A rule's target by the tag its form has in a key path: its own keys, not every form's.
_TARGET_FORMS = {form.__name__: form for form in TARGET_FORMS.values()}


def _clean_loc(loc: tuple[int | str, ...], tree: Any = None) -> KeyPath:
    """Drop pydantic's union-member tags ("RepTarget", "literal['queue']") from a location. A
    part that is a key of the policy where it stands is kept whatever it looks like: a team
    named `Enterprise`, a region `EMEA` or a source `strategic`."""
    cleaned: list[str | int] = []
    node = tree
    for part in loc:
        if _holds(node, part):
            node = node[part]
        elif isinstance(part, str) and (
            part[:1].isupper() or part.startswith(("literal[", "str", "list[", "function-"))
        ):
            continue
        else:
            node = None  # a key the policy does not have (one `missing`): nothing under it
        cleaned.append(part)
    return tuple(cleaned)


def _holds(node: Any, part: str | int) -> bool:
    if isinstance(node, Mapping):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


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


def yaml_problem(exc: MarkedYAMLError, text: str) -> Problem:
    """What the YAML parser found, in a sentence an admin can act on, at its line and column.

    The parser's own words are kept where no better ones are known; three mistakes are common
    enough to be told plainly: a key written twice (the parser's message holds both values
    whole), a tab (YAML indents with spaces), and a line indented out of step with its
    neighbours ("expected <block end>")."""
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
    problem = exc.problem or ""
    if isinstance(exc, DuplicateKeyError):
        found = _duplicate_key(text, exc)
        if found is not None:
            key, first = found
            return Problem(
                (),
                f"not valid YAML: duplicate key `{key}`, written twice in the same mapping "
                f"(first at line {first}); write it once, merging the two",
                line,
                column,
            )
    if "'\\t'" in problem:
        return Problem(
            (), "not valid YAML: a tab: YAML indents with spaces only; replace it", line, column
        )
    if "<block end>" in problem or "<block" in str(exc.context or ""):
        return Problem(
            (),
            "not valid YAML: this line does not fit the lines above it; check the indentation of "
            "this line against the lines above it (keys of one mapping, and the items of one "
            "list, start in the same column)",
            line,
            column,
        )
    context = str(exc.context or "")
    opened = exc.context_mark
    for kind, (start, end) in _BRACKETS.items():
        if kind in context and opened is not None:
            return Problem(
                (),
                f"not valid YAML: the `{start}` at line {opened.line + 1} is not closed: end it "
                f"with `{end}`, and put a comma between its items",
                line,
                column,
            )
    if "flow node" in context and opened is not None:
        # A value was expected inside brackets: the parser names where, not the bracket.
        found = _open_bracket(text, opened.index)
        if found is not None:
            start, at = found
            end = "]" if start == "[" else "}"
            if problem.endswith("found '-'"):
                sentence = (
                    f"a `- ` item inside the `{start}` at line {at}: inside brackets write the "
                    "items with commas between them ([alice, bob]), or drop the brackets and put "
                    "each item on its own `- ` line"
                )
            else:
                sentence = (
                    f"the `{start}` at line {at} is not closed: end it with `{end}`, and put a "
                    "comma between its items"
                )
            return Problem((), f"not valid YAML: {sentence}", line, column)
    if "quoted scalar" in context and opened is not None:
        return Problem(
            (),
            f"not valid YAML: the quote at line {opened.line + 1} is not closed: end the text "
            "with the same quote mark",
            line,
            column,
        )
    message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
    return Problem((), f"not valid YAML: {message}", line, column)


def _open_bracket(text: str, before: int) -> tuple[str, int] | None:
    """The innermost `[` or `{` still open at `before` in `text`, and its line; quoted text and
    comments skipped. None when none is."""
    stack: list[tuple[str, int]] = []
    line, quote, comment = 1, "", False
    previous = "\n"
    for char in text[:before]:
        if char == "\n":
            line, comment = line + 1, False
        elif comment:
            pass
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"" and previous in " \t\n[{,:":  # O'Brien is no quote
            quote = char
        elif char == "#" and previous in " \t\n":
            comment = True
        elif char in "[{":
            stack.append((char, line))
        elif char in "]}" and stack:
            stack.pop()
        previous = char
    return stack[-1] if stack else None


# The parser's names for an inline mapping and list, and the marks that open and close them.
_BRACKETS = {"flow mapping": ("{", "}"), "flow sequence": ("[", "]")}


def _duplicate_key(text: str, exc: MarkedYAMLError) -> tuple[str, int] | None:
    """The key written twice in the mapping the error is about, and the line it is first at."""
    where = exc.context_mark
    try:
        root = YAML(typ="rt").compose(text)
    except MarkedYAMLError:
        return None
    stack: list[Node] = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, MappingNode):
            if where is not None and (node.start_mark.line, node.start_mark.column) == (
                where.line,
                where.column,
            ):
                first: dict[str, int] = {}
                for key, _ in node.value:
                    if isinstance(key, ScalarNode):
                        if key.value in first:
                            return str(key.value), first[key.value]
                        first[key.value] = key.start_mark.line + 1
            stack.extend(value for _, value in node.value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return None
