"""`accounts audit`: the near-duplicates in a file of accounts, written nowhere but its output."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from bot.cli.common import (
    CliError,
    EncodingOption,
    accounts_app,
    err,
    friendly,
    out,
    read_policy,
    rep_ids,
)
from bot.cli.csv_out import check_out_file, csv_sheet
from bot.files.accounts import read_accounts
from bot.files.columns import ACCOUNT_COLUMNS
from bot.files.text import InputFileError, encoding_problem
from routing.audit import AUDIT_COLUMNS, DuplicateGroup, audit_rows, near_duplicates

DEFAULT_AUDIT_THRESHOLD = 90.0  # `accounts.fuzzy_threshold`'s default
GROUPS_SHOWN = 10


@accounts_app.command("audit")
@friendly
def accounts_audit(
    file: Annotated[Path, typer.Argument(help=f"Accounts CSV: {','.join(ACCOUNT_COLUMNS)}.")],
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=100,
            help="The score (0-100) at which two accounts are near-duplicates (default: the "
            "policy's accounts.fuzzy_threshold with --rules, else 90).",
        ),
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write every group to this CSV, one row per account, in UTF-8 with the "
            "byte-order mark Excel needs to show accents.",
        ),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            "--policy",
            help="A policy file: owners are read as import reads them (rep ids, e-mails or "
            "names), and its threshold is the default. Without one, owners are kept as written.",
        ),
    ] = None,
    encoding: EncodingOption = None,
) -> None:
    """List the accounts that are near-duplicates of each other: a lead named like one would
    match the other as well, so its match is ambiguous, and it may go to the wrong owner.

    A group is every account linked to another that way. Hand the CSV of `--out` to whoever
    cleans the CRM. Reads the file as `accounts import` does and writes nothing else."""
    if out_file is not None:
        check_out_file(out_file, {"accounts": file, "policy": rules})
    policy = None if rules is None else read_policy(rules)
    if threshold is None:
        threshold = DEFAULT_AUDIT_THRESHOLD if policy is None else policy.fuzzy_threshold
    if encoding is not None and (problem := encoding_problem(encoding)):
        raise CliError(problem)
    try:
        accounts, bad = read_accounts(
            file, None if policy is None else rep_ids(policy), encoding=encoding
        )
    except InputFileError as exc:
        raise CliError(str(exc)) from None
    for row in bad:
        err.print(Text(f"{file}:{row.line}: {row.message}", style="yellow"))
    if bad and not accounts:
        raise CliError(f"{file}: no account could be read: every row has a problem")
    groups = near_duplicates(accounts, threshold=threshold)
    if out_file is not None:
        _write_audit(out_file, groups)
    _print_audit(file, len(accounts), groups, threshold, written=out_file is not None)
    if out_file is not None:
        out.print(Text(f"{out_file}: {sum(len(g.members) for g in groups)} rows written"))


def _write_audit(path: Path, groups: list[DuplicateGroup]) -> None:
    """The audit as the CSV Excel opens (`csv_sheet`): names as a CRM holds them, never run as
    formulas."""
    with csv_sheet(path, AUDIT_COLUMNS) as sheet:
        for row in audit_rows(groups):
            sheet.write([row[column] for column in AUDIT_COLUMNS])


def _print_audit(
    path: Path, accounts: int, groups: list[DuplicateGroup], threshold: float, written: bool
) -> None:
    covered = sum(len(group.members) for group in groups)
    mixed = sum(group.different_owners for group in groups)
    ambiguous = sum(group.ambiguous for group in groups)
    out.print(
        Text(
            f"{path}: {accounts} accounts; {len(groups)} group{'s' * (len(groups) != 1)} of "
            f"near-duplicates covering {covered} accounts at threshold {threshold:g}, "
            f"{mixed} with different owners, {ambiguous} that leads cannot tell apart "
            "(their matches are ambiguous)"
        )
    )
    # Groups that make matches ambiguous first, then those that can send a lead to the wrong
    # owner, then the biggest.
    numbered = sorted(
        enumerate(groups, start=1),
        key=lambda entry: (
            not entry[1].ambiguous,
            not entry[1].different_owners,
            -len(entry[1].members),
            entry[0],
        ),
    )
    for number, group in numbered[:GROUPS_SHOWN]:
        owners = "different owners" if group.different_owners else "one owner"
        told = ", leads cannot tell them apart" if group.ambiguous else ""
        out.print(Text(f"\ngroup {number}: {len(group.members)} accounts, {owners}{told}"))
        rows = [
            (
                row["account_id"],
                row["name"],
                row["owner"] or "(no owner)",
                row["score"],
                row["reason"],
            )
            for row in audit_rows([group])
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        for row in rows:
            cells = [value.ljust(width) for value, width in zip(row, widths, strict=False)]
            out.print(Text("  " + "  ".join([*cells, row[4]]).rstrip()))
    if len(groups) > GROUPS_SHOWN:
        rest = "in the --out file" if written else "--out FILE.csv writes them all"
        out.print(f"\n… and {len(groups) - GROUPS_SHOWN} more groups: {rest}")
