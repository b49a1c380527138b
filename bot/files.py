"""Reading leads (CSV or JSON Lines) and accounts (CSV) from files, row by row with line numbers.

A bad row never stops a run: it comes back as a `BadRow` naming its line, and the caller reports
it and goes on. The same readers serve `simulate`, `demo` and `import`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from routing.leads import InvalidLead, parse_lead
from routing.model import Account, Lead

ACCOUNT_COLUMNS = ("id", "name", "domain", "owner", "tier")


class InputFileError(Exception):
    """The file as a whole cannot be read (missing, unreadable, wrong columns)."""


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    message: str


@dataclass(frozen=True, slots=True)
class LeadRow:
    line: int
    lead: Lead


def _open(path: Path) -> TextIO:
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be read ({exc.strerror})") from None


def is_json_lines(path: Path) -> bool:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    if path.suffix.lower() == ".csv":
        return False
    with _open(path) as handle:
        for line in handle:
            if line.strip():
                return line.lstrip().startswith("{")
    return False


def count_rows(path: Path) -> int:
    """A cheap upper bound on rows, for progress bars."""
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def read_leads(path: Path) -> Iterator[LeadRow | BadRow]:
    rows = _json_lines(path) if is_json_lines(path) else _csv_rows(path)
    for line, data in rows:
        if isinstance(data, BadRow):
            yield data
            continue
        try:
            yield LeadRow(line, parse_lead(data))
        except InvalidLead as exc:
            yield BadRow(line, str(exc))


def _json_lines(path: Path) -> Iterator[tuple[int, Mapping[str, Any] | BadRow]]:
    with _open(path) as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, BadRow(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            except (ValueError, RecursionError):
                # ValueError: an integer longer than Python converts; RecursionError: nesting
                yield number, BadRow(number, "not usable JSON (a number too long, or too deep)")
                continue
            if not isinstance(data, dict):
                yield number, BadRow(number, "a lead is a JSON object of fields")
                continue
            yield number, data


def _csv_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any] | BadRow]]:
    with _open(path) as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "id" not in [f.strip() for f in reader.fieldnames]:
            raise InputFileError(
                f"{path}: the first line must be a header naming the columns, with `id`"
            )
        for row in reader:
            line = reader.line_num
            if None in row:
                yield line, BadRow(line, "more values than there are columns")
                continue
            yield line, {k.strip(): v for k, v in row.items() if k and v not in (None, "")}


def read_accounts(path: Path, rep_ids: Mapping[str, str]) -> tuple[list[Account], list[BadRow]]:
    """Accounts from a CSV `id,name,domain,owner,tier`. `owner` may be a rep id or a rep's e-mail;
    `rep_ids` maps both forms (lowercased) to the rep id."""
    accounts: list[Account] = []
    bad: list[BadRow] = []
    seen: set[str] = set()
    with _open(path) as handle:
        reader = csv.DictReader(handle)
        columns = [f.strip().lower() for f in reader.fieldnames or []]
        missing = [c for c in ("id", "name") if c not in columns]
        if missing:
            raise InputFileError(
                f"{path}: needs the columns {', '.join(ACCOUNT_COLUMNS)} "
                f"(missing {', '.join(missing)})"
            )
        for raw in reader:
            line = reader.line_num
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            if not row.get("id") or not row.get("name"):
                bad.append(BadRow(line, "an account needs an id and a name"))
                continue
            if row["id"] in seen:
                bad.append(BadRow(line, f"duplicate account id {row['id']}"))
                continue
            owner = row.get("owner") or None
            if owner is not None:
                resolved = rep_ids.get(owner.lower())
                if resolved is None:
                    bad.append(
                        BadRow(
                            line,
                            f"owner '{owner}' is not a rep id or e-mail in the policy; "
                            "kept without an owner",
                        )
                    )
                owner = resolved
            seen.add(row["id"])
            accounts.append(
                Account(
                    row["id"],
                    row["name"],
                    row.get("domain") or None,
                    owner,
                    row.get("tier") or None,
                )
            )
    return accounts, bad
