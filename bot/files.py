"""Reading leads (CSV, JSON Lines or a JSON array) and accounts (CSV) from files, row by row with
line numbers.

Files come as people's tools save them, so each is checked whole before its first row is read,
and a run never stops half way on the file itself:

- Its encoding: UTF-8 with or without a byte-order mark, and UTF-16 or UTF-32 (Excel's "Unicode
  Text") are read as they are. A file in a legacy code page (Excel's plain "CSV" on Windows is
  Windows-1252 in Western Europe and the Americas) is refused with the encoding it looks like,
  unless the caller names one: from a few accented names a detector guesses wrong too often
  (charset-normalizer takes a short Windows-1252 file with "José" for Mac Roman, and Russian
  Windows-1251 for Central European), and a wrong guess would store every accented name misspelt.
- Its delimiter, read from the header: comma, semicolon (Excel where the comma is the decimal
  separator), tab or pipe. Excel's `sep=;` first line is honoured.
- Its columns: a lead's fields are found whatever the case or spacing of their names ("Email",
  "First Name"), the accounts' columns whatever their case.

A bad row never stops a run: it comes back as a `BadRow` naming its line, and the caller reports
it and goes on. The same readers serve `simulate`, `demo` and `import`.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from charset_normalizer import from_bytes

from routing.geo import MAX_STATE_LENGTH, account_location
from routing.leads import KNOWN_FIELDS, InvalidLead, parse_lead
from routing.model import Account, Lead

ACCOUNT_COLUMNS = ("id", "name", "domain", "owner", "tier", "country", "state")
SAVE_AS_UTF8 = "save it as UTF-8 (in Excel: File › Save As › CSV UTF-8)"

_CHUNK = 1 << 20
# What the detector sees of a file that is not UTF-8: enough for any header and many rows.
_SAMPLE = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")
# Files that are not text at all, by their first bytes.
_WORKBOOKS = (
    (b"PK\x03\x04", "an Excel workbook (or another zip file)"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook"),
)
# Longest first: the UTF-32 little-endian mark begins with the UTF-16 one.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# What the detector may answer for a file that is not UTF-8: the code pages spreadsheets and
# CRMs export in, and UTF-16 without its mark. Left to itself it answers DOS and Baltic code
# pages for a German file.
_CANDIDATES = (
    "cp1252",
    "cp1250",
    "cp1251",
    "cp1253",
    "cp1254",
    "cp1257",
    "mac_roman",
    "cp932",
    "gb18030",
    "big5",
    "cp949",
    "utf_16_le",
    "utf_16_be",
)
# Names people know encodings by, for the sentences; keyed by Python's canonical codec name.
_KNOWN_AS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "utf-32": "UTF-32",
    "cp1252": "Windows-1252 (Western European)",
    "cp1250": "Windows-1250 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)",
    "cp1253": "Windows-1253 (Greek)",
    "cp1254": "Windows-1254 (Turkish)",
    "cp1257": "Windows-1257 (Baltic)",
    "mac-roman": "Mac Roman",
    "cp932": "Shift JIS (Japanese)",
    "gb18030": "GB18030 (Chinese)",
    "big5": "Big5 (Traditional Chinese)",
    "cp949": "Windows-949 (Korean)",
    "iso8859-1": "ISO-8859-1 (Latin-1)",
}


class InputFileError(Exception):
    """The file as a whole cannot be read (missing, unreadable, its encoding or columns)."""


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    message: str


@dataclass(frozen=True, slots=True)
class LeadRow:
    line: int
    lead: Lead


def encoding_problem(name: str) -> str | None:
    """Why `name` is not an encoding Python can read (None when it is one)."""
    try:
        codecs.lookup(name)
    except LookupError:
        return f"--encoding {name}: no such encoding (such as cp1252, utf-16 or mac_roman)"
    return None


# --- text: the encoding, checked over the whole file ----------------------------------------


@dataclass(frozen=True, slots=True)
class TextFile:
    path: Path
    codec: str
    lines: int  # at least as many as the file has

    def open(self) -> TextIO:
        # newline="": the csv module reads line ends itself (and CRLF inside quoted values).
        return self.path.open(encoding=self.codec, newline="")


def open_text(path: Path, encoding: str | None = None) -> TextFile:
    """The file checked to read as text from end to end, or InputFileError saying why not.

    `encoding` is for a file that is neither UTF-8 nor marked with a byte-order mark."""
    head = _head(path)
    for magic, what in _WORKBOOKS:
        if head.startswith(magic):
            raise InputFileError(
                f"{path}: is {what}, not text: in Excel, choose File › Save As › CSV UTF-8, "
                "and give leadrouter that file"
            )
    marked = next((codec for mark, codec in _BYTE_ORDER_MARKS if head.startswith(mark)), None)
    codec = marked or "utf-8"
    lines, bad = _read_through(path, codec)
    if bad is None and (marked or b"\x00" not in head):
        return TextFile(path, codec, lines)
    if marked is not None:
        raise InputFileError(f"{path}: {_cannot_read(codec, bad)}; {SAVE_AS_UTF8}")
    guess = _guess(head) if encoding is None or b"\x00" in head else None
    if guess is not None and guess.startswith("utf_16"):
        # Without its mark, UTF-16 is told by the zero byte beside every ASCII letter: that
        # guess is safe, unlike one between code pages.
        lines, bad = _read_through(path, guess)
        if bad is None:
            return TextFile(path, guess, lines)
    if encoding is not None:
        lines, bad = _read_through(path, encoding)
        if bad is None:
            return TextFile(path, encoding, lines)
        raise InputFileError(
            f"{path}: {_cannot_read(encoding, bad)}; check its encoding, or {SAVE_AS_UTF8}"
        )
    if guess is not None and not guess.startswith("utf_16"):
        raise InputFileError(
            f"{path}: is not UTF-8 text: it looks like {known_as(guess)}. To read it, "
            f"{SAVE_AS_UTF8}, or name its encoding, such as --encoding {guess}"
        )
    where = f" ({_where(bad)})" if bad is not None else " (it holds zero bytes)"
    raise InputFileError(
        f"{path}: is not UTF-8 text{where}, and its encoding is not one leadrouter recognises; "
        f"{SAVE_AS_UTF8}, or name its encoding with --encoding"
    )


def known_as(codec: str) -> str:
    name = codecs.lookup(codec).name
    return _KNOWN_AS.get(name, name)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_SAMPLE)
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be read ({exc.strerror})") from None


@dataclass(frozen=True, slots=True)
class _BadByte:
    line: int | None  # None where lines cannot be counted in bytes (UTF-16, UTF-32)
    byte: int


def _read_through(path: Path, codec: str) -> tuple[int, _BadByte | None]:
    """Decode the whole file: the lines it has (an upper bound), and its first byte that does
    not decode, if any."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    name = codecs.lookup(codec).name
    ascii_lines = not name.startswith(("utf-16", "utf-32"))
    newlines = returns = 0
    ends_open = False
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                line = newlines + exc.object[: exc.start].count(b"\n") + 1
                return newlines, _BadByte(line if ascii_lines else None, exc.object[exc.start])
            newlines += text.count("\n")
            returns += text.count("\r")  # old Mac files end lines with CR alone
            if text:
                ends_open = text[-1] not in "\r\n"
            if not chunk:
                break
    return max(newlines, returns) + ends_open, None


def _cannot_read(codec: str, bad: _BadByte | None) -> str:
    where = f": {_where(bad)}" if bad is not None else ""
    return f"cannot be read as {known_as(codec)}{where}"


def _where(bad: _BadByte) -> str:
    line = f"line {bad.line} has" if bad.line is not None else "it has"
    return f"{line} the byte 0x{bad.byte:02X}, which is not a character there"


def _guess(head: bytes) -> str | None:
    """The encoding charset-normalizer finds most likely, among those files are exported in.
    Where several fit as well (Windows-1250 and -1252 read most Western names alike), the one
    files are most often exported in: `_CANDIDATES` is in that order."""
    matches = from_bytes(head, cp_isolation=list(_CANDIDATES))
    best = matches.best()
    if best is None:
        return None
    tied = {
        codecs.lookup(name).name
        for match in matches
        if match.chaos <= best.chaos
        for name in (match.encoding, *match.could_be_from_charset)
    }
    return next((c for c in _CANDIDATES if codecs.lookup(c).name in tied), best.encoding)


# --- CSV: the delimiter and the columns, read from the header ---------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    delimiter: str
    skip: int  # lines before the header (Excel's `sep=;`)
    columns: tuple[str, ...]  # as the rows' keys; "" for a column without a name


def _layout(
    text: TextFile, *, required: Sequence[str], name: Callable[[str], str], problem: str
) -> _Layout:
    """How the CSV is laid out. The delimiter is the one whose header names the required
    columns, and the most of them; `problem` begins the sentence when no header does."""
    with _decoded(text) as handle:
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
    if not complete:
        found = ", ".join(column.strip() for column in raw if column.strip())
        said = f" (it names {found})" if found else " (it is empty)"
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
    return _Layout(delimiter, skip, columns)


def _csv_records(text: TextFile, layout: _Layout) -> Iterator[tuple[int, dict[str, str] | BadRow]]:
    """Each row with a value as {column: value}, non-empty values only, with its first line."""
    width = len(layout.columns)
    with _decoded(text) as handle:
        for _ in range(layout.skip):
            handle.readline()
        reader = csv.reader(handle, delimiter=layout.delimiter)
        next(reader, None)  # the header, read by `_layout`
        while True:
            line = reader.line_num + layout.skip + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, BadRow(line, f"cannot be read as CSV ({exc})")
                continue
            if not any(row):
                continue
            if any(value.strip() for value in row[width:]):
                yield line, BadRow(line, "more values than there are columns")
                continue
            named = zip(layout.columns, row, strict=False)
            yield line, {column: value for column, value in named if column and value != ""}


@contextmanager
def _decoded(text: TextFile) -> Iterator[TextIO]:
    """The file open as text; a decoding error (it changed after it was checked) is an
    InputFileError."""
    try:
        handle = text.open()
    except OSError as exc:
        raise InputFileError(f"{text.path}: cannot be read ({exc.strerror})") from None
    with handle:
        try:
            yield handle
        except UnicodeDecodeError:
            raise InputFileError(
                f"{text.path}: changed while it was read, and is no longer {known_as(text.codec)}"
            ) from None


def _lead_column(written: str) -> str:
    """A lead field's name whatever its case or spacing ("First Name" is first_name); any other
    column keeps its name, as a custom field."""
    stripped = written.strip()
    field = "_".join(stripped.lower().replace("-", " ").split())
    return field if field in KNOWN_FIELDS else stripped


_NOT_A_LETTER = re.compile(r"[\W_]+")


def _squeezed(written: str) -> str:
    return _NOT_A_LETTER.sub("", written.casefold())


# The names CRM exports and spreadsheets give an account's location, compared by their letters
# alone, each also after "Billing": Salesforce's "Billing Country" and "BillingState", HubSpot's
# "Country/Region" and "State/Region". ("Region" alone is left out: it is as often a sales
# region.)
_ACCOUNT_ALIASES = {
    _squeezed(f"{prefix}{alias}"): column
    for column, aliases in {
        "country": ("Country", "Country/Region", "Country Code"),
        "state": ("State", "State/Province", "State/Region", "Province", "State Code"),
    }.items()
    for alias in aliases
    for prefix in ("", "Billing ")
}


def _account_column(written: str) -> str:
    name = written.strip().lower()
    return _ACCOUNT_ALIASES.get(_squeezed(name), name)


# --- leads -----------------------------------------------------------------------------------

Form = Literal["csv", "json lines", "json"]


@dataclass(frozen=True, slots=True)
class LeadFile:
    """A file of leads checked as a whole; `read_leads` gives its rows."""

    text: TextFile
    form: Form
    rows: int  # at least as many as the file has, not counting a header: for progress bars
    layout: _Layout | None = None  # csv
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
        return LeadFile(text, "json lines", text.lines)  # each line says what is wrong with it
    if suffix == ".json":
        what = "empty" if not start else "not a file of leads"
        raise InputFileError(f"{path}: is {what}; {_JSON_NEEDED}")
    layout = _layout(
        text,
        required=("id",),
        name=_lead_column,
        problem="the first line must be a header naming the columns, with `id`",
    )
    return LeadFile(text, "csv", max(text.lines - 1 - layout.skip, 0), layout)


_JSON_NEEDED = "give a JSON array of lead objects, or JSON Lines (one lead object per line)"


def _start(text: TextFile) -> str:
    """The first character that is not white space, or "" for a blank file."""
    with _decoded(text) as handle:
        while chunk := handle.read(4096):
            if stripped := chunk.lstrip():
                return stripped[0]
    return ""


def read_leads(file: LeadFile) -> Iterator[LeadRow | BadRow]:
    if file.form == "csv":
        assert file.layout is not None
        rows: Iterator[tuple[int, Any]] = _csv_records(file.text, file.layout)
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
    with _decoded(text) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
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
        with _decoded(text) as handle:
            first = next((line for line in handle if line.strip()), "")
        if _is_json(first):
            return LeadFile(text, "json lines", text.lines)
    with _decoded(text) as handle:
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
        return LeadFile(text, "json", 1, items=((line, json.loads(document)),))
    else:
        return LeadFile(text, "json lines", text.lines)  # each line says what is wrong with it
    rest = _skip(document, end)
    if rest != len(document):
        raise _not_json(text.path, document, rest, "more follows the end of the leads")
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
    decoder = json.JSONDecoder()
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
        items.append((line, value))
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


# --- accounts --------------------------------------------------------------------------------


def read_accounts(
    path: Path, rep_ids: Mapping[str, str] | None, *, encoding: str | None = None
) -> tuple[list[Account], list[BadRow]]:
    """Accounts from a CSV `id,name,domain,owner,tier,country,state`. `owner` may be a rep id or
    a rep's e-mail; `rep_ids` maps both forms (lowercased) to the rep id. `country` and `state`
    may be headed as a CRM exports them ("Billing Country", "State/Province")."""
    text = open_text(path, encoding)
    layout = _layout(
        text,
        required=("id", "name"),
        name=_account_column,
        problem=f"needs a header with the columns {', '.join(ACCOUNT_COLUMNS)}",
    )
    accounts: list[Account] = []
    bad: list[BadRow] = []
    seen: set[str] = set()
    for line, record in _csv_records(text, layout):
        if isinstance(record, BadRow):
            bad.append(record)
            continue
        row = {column: value.strip() for column, value in record.items()}
        if not row.get("id") or not row.get("name"):
            bad.append(BadRow(line, "an account needs an id and a name"))
            continue
        if row["id"] in seen:
            bad.append(BadRow(line, f"duplicate account id {row['id']}"))
            continue
        # What is kept of a row despite a problem, said in one note per row.
        kept: list[str] = []
        owner = row.get("owner") or None
        if owner is not None and rep_ids is not None:  # None: no policy, owners as written
            resolved = rep_ids.get(owner.lower())
            if resolved is None:
                kept.append(
                    f"owner '{owner}' is not a rep id or e-mail in the policy; "
                    "kept without an owner"
                )
            owner = resolved
        given_country, given_state = row.get("country") or None, row.get("state") or None
        country, state = account_location(given_country, given_state)
        if given_country and country is None:
            kept.append(f"country '{given_country}' not recognised; kept without a country")
        if given_state and state is None:
            kept.append(f"state is longer than {MAX_STATE_LENGTH} characters; kept without a state")
        if kept:
            bad.append(BadRow(line, "; ".join(kept)))
        seen.add(row["id"])
        accounts.append(
            Account(
                row["id"],
                row["name"],
                row.get("domain") or None,
                owner,
                row.get("tier") or None,
                country=country,
                state=state,
            )
        )
    return accounts, bad
