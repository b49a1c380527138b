"""`leadrouter replay`: what a policy would have done with the leads stored in the database
(`DATABASE_URL`), as a summary, JSON lines or CSV. The replay is `bot.service.replay`'s; this
reads the options, calls it, and prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from bot.cli.common import CliError, RulesOption, app, err, friendly, out
from bot.cli.csv_out import OUT_HELP, CsvSheet, check_out_file, csv_sheet
from routing.durations import format_duration
from routing.model import Outcome
from routing.policy import Policy
from routing.policy_version import short_version
from routing.replay import Replayed, Routed
from routing.replay_summary import Moves, ReplaySummary, ranked, share
from routing.report.window import BadWindow, Window, window_of

DEFAULT_SINCE = "30d"
MOVES_SHOWN = 10  # rows of each table of moves; --json and --csv list every lead
REPS_SHOWN = 25  # rows of the reps' table, the biggest changes first


@app.command()
@friendly
def replay(
    rules: RulesOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Leads that arrived this long ago until now: 36h, 7d, 2w "
            f"(default {DEFAULT_SINCE})."
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="The first day of the window (UTC), such as 2026-11-01."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="The last day of the window (UTC), included."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per lead per line.")
    ] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV on stdout, one row per lead, for programs.")
    ] = False,
    out_file: Annotated[Path | None, typer.Option("--out", help=OUT_HELP)] = None,
) -> None:
    """Route the stored leads of a window again under a policy (`--rules`, such as a change
    you are about to make), in the order they arrived, and say what would have changed: how
    many leads would have gone elsewhere, the moves (rule to rule, team to team, rep to rep)
    with counts and examples, each rep's leads before and after, the unmatched share before
    and after, and the SLA each lead would have had.

    Reads DATABASE_URL, as `serve` does, and writes nothing. Each lead is routed at the moment
    it arrived, on the state the policy's own decisions would have left (loads, rotations,
    sticky accounts), with the absences recorded then; what reps did with their leads is not
    replayed.

    For Excel, `--out replay.csv` rather than `--csv > replay.csv`: stdout is plain UTF-8 for
    programs, and Excel garbles its accents.
    """
    from bot.cli import running
    from bot.cli.environment import settings as load_settings
    from bot.cli.which_policy import policy_or_active

    if as_csv and as_json:
        raise CliError("--csv and --json are two ways to print the replay: choose one")
    if out_file is not None and as_json:
        raise CliError("--out writes the replay as CSV: leave out --json (or --out)")
    window = _window(since, start, end)
    settings = load_settings(rules=rules)
    if out_file is not None:
        check_out_file(out_file, {"policy": rules or settings.rules})
    policy = policy_or_active(rules, settings)
    running.migrated(settings.database_url)
    each: Callable[[Replayed], None] | None = None
    with contextlib.ExitStack() as stack:
        if as_json:
            each = _json_printer()
        elif as_csv or out_file is not None:
            sheet = stack.enter_context(csv_sheet(out_file, COLUMNS))
            each = _row_writer(sheet)
        try:
            summary = asyncio.run(running.replay(settings, policy, window, each))
        except BrokenPipeError:
            # Whoever read the lines stopped (`| head`): they had what they wanted. Python's
            # own flush at exit would fail again on the closed pipe and print a traceback.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
    if out_file is not None:
        out.print(Text(f"{out_file}: {sheet.rows} rows written"))
    if each is None:
        file = rules or settings.rules
        under = str(file) if file.exists() else "the version active in the database"
        print_summary(summary, window, under, policy)
    else:
        err.print(Text(_headline(summary, window)))


def _window(since: str | None, start: str | None, end: str | None) -> Window:
    if (start is None) != (end is None) or (start is not None and since is not None):
        raise CliError("give both --from and --to (such as 2026-11-01 and 2026-11-07), or --since")
    if start is None and since is None:
        since = DEFAULT_SINCE
    try:
        return window_of(since=since, start=start, end=end, now=datetime.now(UTC), options="--")
    except BadWindow as exc:
        raise CliError(str(exc)) from None


# --- one lead per line --------------------------------------------------------------------------

ROUTED_KEYS = ("outcome", "rep", "team", "rule", "reason", "sla_seconds", "policy_version")
COLUMNS = (
    "id",
    "arrived_at",
    *(f"before_{key}" for key in ROUTED_KEYS),
    *(f"after_{key}" for key in ROUTED_KEYS),
    "after_sla_due_at",
    "after_contact_sla_seconds",
    "moved",
)


def replayed_json(replayed: Replayed) -> dict[str, Any]:
    """A replayed lead as `--json` prints it."""
    due = replayed.sla_due_at
    return {
        "id": replayed.lead_id,
        "arrived_at": replayed.arrived_at.isoformat(),
        "before": _routed(replayed.before),
        "after": _routed(replayed.after)
        | {
            "sla_due_at": due.isoformat() if due else None,
            "contact_sla_seconds": replayed.contact_sla_seconds,
        },
        "moved": replayed.moved,
    }


def _routed(routed: Routed) -> dict[str, Any]:
    return {
        "outcome": routed.outcome.value,
        "rep": routed.rep,
        "team": routed.team,
        "rule": routed.rule,
        "reason": routed.reason,
        "sla_seconds": routed.sla_seconds,
        "policy_version": routed.policy_version,
    }


def replayed_row(replayed: Replayed) -> list[str]:
    """A replayed lead as `--csv` prints it: the JSON object's values, flattened, in order."""
    line = replayed_json(replayed)
    values = [
        line["id"],
        line["arrived_at"],
        *(line["before"][key] for key in ROUTED_KEYS),
        *(line["after"][key] for key in ROUTED_KEYS),
        line["after"]["sla_due_at"],
        line["after"]["contact_sla_seconds"],
        "true" if line["moved"] else "false",
    ]
    return ["" if value is None else str(value) for value in values]


def _json_printer() -> Callable[[Replayed], None]:
    write = sys.stdout.write  # not rich's console: a line a lead, 100,000 of them

    def print_line(replayed: Replayed) -> None:
        write(json.dumps(replayed_json(replayed)) + "\n")

    return print_line


def _row_writer(sheet: CsvSheet) -> Callable[[Replayed], None]:
    def write_row(replayed: Replayed) -> None:
        sheet.write(replayed_row(replayed))  # a lead's id, as it came: never a formula

    return write_row


# --- the summary --------------------------------------------------------------------------------


def _moment(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _headline(summary: ReplaySummary, window: Window) -> str:
    period = f"from {_moment(window.since)} until {_moment(window.until)}"
    if not summary.leads:
        return f"No lead arrived {period}: nothing to replay."
    moved = share(summary.moved, summary.leads) or 0.0
    return (
        f"{summary.leads:,} leads that arrived {period} replayed: {summary.moved:,} "
        f"({moved:.1%}) would have gone elsewhere."
    )


REMOVED = " (removed)"  # a rep or team of the leads' history that the replayed policy has not


def print_summary(summary: ReplaySummary, window: Window, rules: str, policy: Policy) -> None:
    out.print(Text(_headline(summary, window)))
    if not summary.leads:
        return
    decided_by = ", ".join(
        f"{short_version(version)} ({count:,})"
        for version, count in summary.versions_before.most_common()
    )
    out.print(Text(f"Decided by policy versions: {decided_by}."))
    replayed = short_version(policy.version or None)
    out.print(Text(f"Replayed under: {rules} (version {replayed}). Nothing was written."))
    out.print(
        Text(
            f"Unmatched (no rule matched): {_count_share(summary.unmatched_before, summary.leads)}"
            f" before, {_count_share(summary.unmatched_after, summary.leads)} after."
        )
    )
    outcomes = [
        f"{outcome.value} {summary.outcomes_before[outcome]:,} → "
        f"{summary.outcomes_after[outcome]:,}"
        for outcome in Outcome
        if summary.outcomes_before[outcome] or summary.outcomes_after[outcome]
    ]
    out.print(Text("Outcomes: " + " · ".join(outcomes)))
    # A move's first reason, when it is one: the rep or team the leads had is gone.
    teams = _marking_removed(_or("(no team)"), lambda team: team not in policy.teams)
    reps = _marking_removed(
        _or(""), lambda rep: rep in summary.assigned_before and rep not in policy.reps
    )
    _moves_table("Moves by rule", summary.rules, _or("(no rule)"))
    _moves_table("Moves by team", summary.teams, teams)
    _moves_table("Moves by rep", summary.reps, reps)
    _loads_table(summary, reps)
    _moves_table("SLA changes", summary.slas, _sla)
    gone = [rep for rep in summary.assigned_before if rep not in policy.reps]
    gone += [team for (team, _), _ in summary.teams.items() if team and team not in policy.teams]
    if gone:
        out.print(
            Text(
                f"{REMOVED.strip()}: {rules} has no rep or team of that name: its leads went "
                "elsewhere."
            )
        )


def _count_share(count: int, of: int) -> str:
    return f"{count:,} ({(share(count, of) or 0.0):.1%})"


def _or(label: str) -> Callable[[str | None], str]:
    return lambda name: label if name is None else name


def _marking_removed(
    label: Callable[[str | None], str], removed: Callable[[str], bool]
) -> Callable[[str | None], str]:
    return lambda name: label(name) + (REMOVED if name is not None and removed(name) else "")


def _sla(seconds: int | None) -> str:
    return "(none)" if seconds is None else format_duration(seconds)


def _moves_table(title: str, moves: dict[Any, Moves], label: Callable[[Any], str]) -> None:
    if not moves:
        out.print(Text(f"{title}: none."))
        return
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("before", "after", "leads", "examples"):
        table.add_column(column, justify="right" if column == "leads" else "left")
    rows = ranked(moves)
    for (before, after), found in rows[:MOVES_SHOWN]:
        table.add_row(
            Text(label(before)),
            Text(label(after)),
            f"{found.count:,}",
            Text(", ".join(found.examples)),
        )
    out.print(table)
    if len(rows) > MOVES_SHOWN:
        out.print(f"… and {len(rows) - MOVES_SHOWN} more: --json or --csv lists every lead")


def _loads_table(summary: ReplaySummary, label: Callable[[str | None], str]) -> None:
    table = Table(title="Leads per rep", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("rep", "before", "after", "change"):
        table.add_column(column, justify="left" if column == "rep" else "right")
    reps = summary.reps_compared
    for rep in reps[:REPS_SHOWN]:
        before, after = summary.assigned_before[rep], summary.assigned_after[rep]
        table.add_row(Text(label(rep)), f"{before:,}", f"{after:,}", f"{after - before:+,}")
    out.print(table)
    if len(reps) > REPS_SHOWN:
        rest = reps[REPS_SHOWN:]
        most = max(abs(summary.assigned_after[r] - summary.assigned_before[r]) for r in rest)
        out.print(f"… and {len(rest)} more reps, none changed by more than {most:,}")
