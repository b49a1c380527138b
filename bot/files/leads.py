"""A file of leads: CSV, JSON Lines, a JSON array, or a batch as `POST /leads` takes it, read row
by row with line numbers. A lead's fields are found whatever the case or spacing of their column
names ("Email", "First Name"); any other column is a custom field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.files.columns import accounts_header, lead_column
from bot.files.tables import BadRow, Layout, csv_records, layout_of, letters_of
from bot.files.text import InputFileError, TextFile, open_text
from bot.json_keys import KeyTwice
from routing.leads import KNOWN_FIELDS, InvalidLead, parse_lead
from routing.model import Lead


@dataclass(frozen=True, slots=True)
class LeadRow:
    line: int
    lead: Lead


Form = Literal["csv", "json lines", "json"]


@dataclass(frozen=True, slots=True)
class LeadFile:
    """A file of leads checked as a whole; `read_leads` gives its rows."""

    text: TextFile
    form: Form
    rows: int  # at least as many as the file has, not counting a header: for progress bars
    layout: Layout | None = None  # csv
    items: tuple[tuple[int, Any], ...] = ()  # json: each value with the line it starts on

    @property
    def path(self) -> Path:
        return self.text.path


def open_leads(path: Path, *, encoding: str | None = None) -> LeadFile:
    """The file of leads, checked: InputFileError when it cannot be read as a whole."""
    text = open_text(path, encoding)
    suffix = path.suffix.lower()
    start = "" if suffix == ".csv" else _start(text)
    if start in ("[", "{"):
        return _json_file(text, start)
    if suffix in (".jsonl", ".ndjson"):
        if not start:
            raise InputFileError(f"{path}: holds no lead: it is empty; {_JSON_NEEDED}")
        return LeadFile(text, "json lines", text.lines)  # each line says what is wrong with it
    if suffix == ".json":
        what = "empty" if not start else "not a file of leads"
        raise InputFileError(f"{path}: is {what}; {_JSON_NEEDED}")
    layout = layout_of(
        text,
        required=("id",),
        name=lead_column,
        problem="the first line must be a header naming the columns, with `id`",
        other_kind=lambda header: _accounts_instead(path) if accounts_header(header) else None,
    )
    return LeadFile(text, "csv", max(text.lines - 1 - layout.skip, 0), layout)


def custom_columns_spelt_otherwise(file: LeadFile, read: Iterable[str]) -> list[tuple[str, str]]:
    """(column, field) for each column of a CSV that is a custom field spelt otherwise than the
    `fields.NAME` a policy reads (`Plan Tier` for `fields.plan_tier`): custom fields' names are
    compared exactly, so a condition on it would never see the column."""
    if file.layout is None:
        return []
    wanted = {letters_of(name): name for name in read if name}
    found = []
    for column in file.layout.columns:
        if not column or column in KNOWN_FIELDS:
            continue
        name = column.removeprefix("fields.")
        field = wanted.get(letters_of(name))
        if field is not None and field != name:
            found.append((column, field))
    return found


def _accounts_instead(path: Path) -> str:
    return (
        "is a file of accounts (it names an account's name or owner, and no person's e-mail "
        f"or name), not of leads: load it with `leadrouter accounts import {path}`"
    )


_JSON_NEEDED = "give a JSON array of lead objects, or JSON Lines (one lead object per line)"


def _start(text: TextFile) -> str:
    """The first character that is not white space, or "" for a blank file."""
    with text.reading() as handle:
        while chunk := handle.read(4096):
            if stripped := chunk.lstrip():
                return stripped[0]
    return ""


def read_leads(file: LeadFile) -> Iterator[LeadRow | BadRow]:
    if file.form == "csv":
        assert file.layout is not None
        rows: Iterator[tuple[int, Any]] = csv_records(file.text, file.layout)
    elif file.form == "json lines":
        rows = _json_lines(file.text)
    else:
        rows = iter(file.items)
    for line, data in rows:
        if isinstance(data, BadRow):
            yield data
            continue
        if not isinstance(data, dict):
            yield BadRow(line, "a lead is a JSON object of fields")
            continue
        try:
            yield LeadRow(line, parse_lead(data))
        except InvalidLead as exc:
            yield BadRow(line, str(exc))


def _json_lines(text: TextFile) -> Iterator[tuple[int, Any]]:
    with text.reading() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            keys = KeyTwice()
            try:
                value = json.loads(line, object_pairs_hook=keys)
                twice = keys.problem()
                yield number, value if twice is None else BadRow(number, twice)
            except json.JSONDecodeError as exc:
                yield number, BadRow(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
            except (ValueError, RecursionError):
                # ValueError: an integer longer than Python converts; RecursionError: nesting
                yield number, BadRow(number, "not usable JSON (a number too long, or too deep)")


_WHITE = re.compile(r"[ \t\n\r]*")  # JSON's white space
_BATCH = re.compile(r'[ \t\n\r]*\{[ \t\n\r]*"leads"[ \t\n\r]*:[ \t\n\r]*(?=\[)')


def _skip(document: str, position: int) -> int:
    found = _WHITE.match(document, position)
    assert found is not None  # the pattern matches the empty string
    return found.end()


def _json_file(text: TextFile, start: str) -> LeadFile:
    """JSON Lines, unless the file is one JSON document: an array of leads, a batch as
    `POST /leads` takes it ({"leads": [...]}), or one lead written over several lines."""
    if start == "{":
        with text.reading() as handle:
            first = next((line for line in handle if line.strip()), "")
        # A batch as `POST /leads` takes it is one document, even on one line (as curl sends it).
        if _is_json(first) and not _BATCH.match(first):
            return LeadFile(text, "json lines", text.lines)
    with text.reading() as handle:
        document = handle.read()
    position = _skip(document, 0)
    if start == "[":
        items, end = _json_array(text.path, document, position)
    elif batch := _BATCH.match(document):
        items, end = _json_array(text.path, document, batch.end())
        end = _skip(document, end)
        if not document.startswith("}", end):
            raise _not_json(text.path, document, end, 'expected } after the "leads" array')
        end += 1
    elif _is_json(document):
        line = document.count("\n", 0, position) + 1
        keys = KeyTwice()
        value = json.loads(document, object_pairs_hook=keys)
        twice = keys.problem()
        return LeadFile(
            text, "json", 1, items=((line, value if twice is None else BadRow(line, twice)),)
        )
    else:
        return LeadFile(text, "json lines", text.lines)  # each line says what is wrong with it
    rest = _skip(document, end)
    if rest != len(document):
        raise _not_json(text.path, document, rest, "more follows the end of the leads")
    if not items:
        raise InputFileError(f"{text.path}: holds no lead: its array of leads is empty")
    return LeadFile(text, "json", len(items), items=tuple(items))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _json_array(path: Path, document: str, start: int) -> tuple[list[tuple[int, Any]], int]:
    """The values of the array at `start`, each with the line it starts on, and where the array
    ends. Read value by value so that a bad lead can be named by its line."""
    keys = KeyTwice()
    decoder = json.JSONDecoder(object_pairs_hook=keys)
    position = _skip(document, start + 1)
    items: list[tuple[int, Any]] = []
    if document.startswith("]", position):
        return items, position + 1
    line, counted = 1, 0
    while True:
        line += document.count("\n", counted, position)
        counted = position
        try:
            value, position = decoder.raw_decode(document, position)
        except json.JSONDecodeError as exc:
            raise _not_json(path, document, exc.pos, exc.msg) from None
        except (ValueError, RecursionError):
            raise _not_json(path, document, position, "a number too long, or too deep") from None
        twice = keys.problem()
        items.append((line, value if twice is None else BadRow(line, twice)))
        position = _skip(document, position)
        if document.startswith(",", position):
            position = _skip(document, position + 1)
        elif document.startswith("]", position):
            return items, position + 1
        else:
            raise _not_json(path, document, position, "expected , or ] after a lead")


def _not_json(path: Path, document: str, position: int, why: str) -> InputFileError:
    line = document.count("\n", 0, position) + 1
    column = position - (document.rfind("\n", 0, position) + 1) + 1
    return InputFileError(f"{path}: is not valid JSON: line {line} column {column}: {why}")
