"""CSV as people's tools save it: the delimiter and the columns read from the header, and each
row as {column: value} with the line it starts on.

The delimiter is comma, semicolon (Excel where the comma is the decimal separator), tab or pipe,
whichever makes the header name the columns the caller needs; Excel's `sep=;` first line is
honoured. A bad row never stops a run: it comes back as a `BadRow` naming its line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from bot.files.text import InputFileError, TextFile

_DELIMITERS = (",", ";", "\t", "|")
# What a spreadsheet reads as the start of a formula (a tab or CR before one is stripped).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """A cell written to a CSV that a spreadsheet opens as text, never runs: a lead's field
    such as `=HYPERLINK(...)` gets a leading apostrophe, which the spreadsheet does not show."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def spreadsheet_row(values: Iterable[str]) -> list[str]:
    """A row of text cells, each `spreadsheet_text` but a number (-1.5 stays a number)."""
    return [value if _is_number(value) else spreadsheet_text(value) for value in values]


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return value.strip() == value


_NOT_A_LETTER = re.compile(r"[\W_]+")


def letters_of(written: str) -> str:
    """A column's name by its letters and digits alone, in one case: how headers are compared,
    so that "E-Mail", "e_mail" and "EMAIL" are one column, and "State/Province" is
    "stateprovince"."""
    return _NOT_A_LETTER.sub("", written.casefold())


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    message: str
    skipped: bool = True  # False: the row was read, without the value the message names


@dataclass(frozen=True, slots=True)
class Layout:
    delimiter: str
    skip: int  # lines before the header (Excel's `sep=;`)
    columns: tuple[str, ...]  # as the rows' keys; "" for a column without a name


def layout_of(
    text: TextFile,
    *,
    required: Sequence[str],
    name: Callable[[str], str],
    problem: str,
    other_kind: Callable[[Sequence[str]], str | None] = lambda header: None,
) -> Layout:
    """How the CSV is laid out. The delimiter is the one whose header names the required
    columns, and the most of them; `problem` begins the sentence when no header does.
    `other_kind` says what to do instead when the header is a file of another kind's (None
    when it is not): it is refused with that sentence before its columns are checked."""
    with text.reading() as handle:
        first = handle.readline()
        skip, forced = 0, None
        hint = first.rstrip("\r\n")  # not strip(): the delimiter may be a tab
        if len(hint) == 5 and hint[:4].lower() == "sep=":
            skip, forced, first = 1, hint[4], handle.readline()
    best: tuple[tuple[bool, int], str, list[str]] | None = None
    for delimiter in (forced,) if forced else _DELIMITERS:
        raw = next(csv.reader([first], delimiter=delimiter), [])
        named = [name(column) for column in raw]
        score = (all(column in named for column in required), len(raw))
        if best is None or score > best[0]:
            best = (score, delimiter, raw)
    assert best is not None
    (complete, _), delimiter, raw = best
    if (instead := other_kind(raw)) is not None:
        raise InputFileError(f"{text.path}: {instead}")
    if not complete:
        found = ", ".join(column.strip() for column in raw if column.strip())
        said = f" (it names {found})" if found else " (it is empty)"
        # A CRM export's "Lead ID" or "Record ID" is not taken for `id` unasked: say it could be.
        named = [name(column) for column in raw]
        ids = [c.strip() for c in raw if letters_of(c).endswith("id") and letters_of(c) != "id"]
        if "id" in required and "id" not in named and ids:
            said += f"; if `{ids[0]}` holds each row's own id, head that column `id`"
        raise InputFileError(f"{text.path}: {problem}{said}")
    columns = tuple(name(column) for column in raw)
    seen: dict[str, str] = {}
    for column, written in zip(columns, raw, strict=True):
        if column and column in seen:
            raise InputFileError(
                f"{text.path}: `{seen[column].strip()}` and `{written.strip()}` are both the "
                f"column {column}; keep one"
            )
        seen[column] = written
    layout = Layout(delimiter, skip, columns)
    unclosed, rows = _scan(text, layout)
    if unclosed is not None:
        raise InputFileError(
            f"{text.path}:{unclosed}: a quote opens a value on this line that no quote closes, "
            "so every line after it would be read as part of that one value; close the quote "
            '(a quote inside a quoted value is written twice, "") or remove it'
        )
    if not rows:
        # "created 0" and exit 0 would read as done: most often the wrong sheet or an empty view.
        raise InputFileError(
            f"{text.path}: has a header but no rows (blank lines and rows of empty cells, as "
            "Excel leaves them, are not rows): was it exported from an empty view or sheet?"
        )
    return layout


def _scan(text: TextFile, layout: Layout) -> tuple[int | None, bool]:
    """The line of a row whose quoted value runs on to the end of the file (None when there is
    none), and whether any row under the header has a value. The csv module reads such a value
    as it finds it, so the rows after it would be lost inside one lead's field without a word:
    the file is refused before any row is used."""
    rows = False
    with text.reading() as handle:
        for _ in range(layout.skip):
            handle.readline()
        reader = csv.reader(handle, delimiter=layout.delimiter, strict=True)
        while True:
            line = reader.line_num + layout.skip + 1
            try:
                row = next(reader, None)
            except csv.Error as exc:  # a row `csv_records` reports, or the one meant here
                if "unexpected end of data" in str(exc):
                    return line, rows
                rows = rows or line > layout.skip + 1  # a bad row `csv_records` reports
                continue
            if row is None:
                return None, rows
            rows = rows or (line > layout.skip + 1 and not _blank(row))  # under the header


def _blank(row: list[str]) -> bool:
    """A row of empty cells (Excel's `;;;` under a sheet's last row), or cells of spaces alone."""
    return not any(value.strip() for value in row)


def csv_records(text: TextFile, layout: Layout) -> Iterator[tuple[int, dict[str, str] | BadRow]]:
    """Each row with a value as {column: value}, non-empty values only, with its first line."""
    width = len(layout.columns)
    with text.reading() as handle:
        for _ in range(layout.skip):
            handle.readline()
        reader = csv.reader(handle, delimiter=layout.delimiter)
        next(reader, None)  # the header, read by `layout_of`
        while True:
            line = reader.line_num + layout.skip + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, BadRow(line, f"cannot be read as CSV ({exc})")
                continue
            if _blank(row):
                continue
            if any(value.strip() for value in row[width:]):
                yield line, BadRow(line, "more values than there are columns")
                continue
            named = zip(layout.columns, row, strict=False)
            yield line, {column: value for column, value in named if column and value != ""}
