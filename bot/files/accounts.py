"""Accounts from a CSV `id,name,domain,owner,tier,country,state`, their columns whatever their case
or however a CRM export heads them ("Billing Country", "State/Province")."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bot.files.columns import ACCOUNT_COLUMNS, account_column, leads_header
from bot.files.tables import BadRow, csv_records, layout_of
from bot.files.text import open_text
from routing.geo import MAX_STATE_LENGTH, account_location
from routing.model import Account


def read_accounts(
    path: Path, rep_ids: Mapping[str, str] | None, *, encoding: str | None = None
) -> tuple[list[Account], list[BadRow]]:
    """Accounts from a CSV `id,name,domain,owner,tier,country,state`. `owner` may be a rep id,
    e-mail or name; `rep_ids` maps each form (lowercased) to the rep id. `country` and `state`
    may be headed as a CRM exports them ("Billing Country", "State/Province")."""
    text = open_text(path, encoding)
    layout = layout_of(
        text,
        required=("id", "name"),
        name=account_column,
        problem="needs a header naming the columns id and name, and optionally "
        + ", ".join(ACCOUNT_COLUMNS[2:]),
        other_kind=lambda header: (
            "is a file of leads (it names a person's e-mail or name), not of accounts: route "
            f"it with `leadrouter import {path}` (or try it first with `leadrouter simulate "
            f"{path}`)"
            if leads_header(header)
            else None
        ),
    )
    accounts: list[Account] = []
    bad: list[BadRow] = []
    seen: dict[str, int] = {}  # id -> the line it is first at
    for line, record in csv_records(text, layout):
        if isinstance(record, BadRow):
            bad.append(record)
            continue
        row = {column: value.strip() for column, value in record.items()}
        if not row.get("id") or not row.get("name"):
            bad.append(BadRow(line, "an account needs an id and a name: row skipped"))
            continue
        if row["id"] in seen:
            first = seen[row["id"]]
            message = f"duplicate account id {row['id']} (first at line {first}): row skipped"
            bad.append(BadRow(line, message))
            continue
        # What is kept of a row despite a problem, said in one note per row.
        kept: list[str] = []
        owner = row.get("owner") or None
        if owner is not None and rep_ids is not None:  # None: no policy, owners as written
            resolved = rep_ids.get(owner.lower())
            if resolved is None:
                kept.append(
                    f"owner '{owner}' is not a rep id, e-mail or name in the policy; "
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
            bad.append(BadRow(line, "; ".join(kept), skipped=False))
        seen[row["id"]] = line
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
