"""`leadrouter report`: the routing report of a window, from the database (`DATABASE_URL`), as a
table, CSV or JSON lines. The figures are `bot.service.report`'s; this reads the options, calls
it, and prints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from bot.cli.common import CliError, RulesOption, app, friendly, out
from bot.cli.csv_out import OUT_HELP, check_out_file, csv_sheet
from routing.decision import Decision
from routing.durations import format_duration
from routing.experiments import CANDIDATE, CONTROL
from routing.money import left_out_sentence
from routing.policy import Policy
from routing.report import (
    COLUMNS,
    GroupReport,
    Report,
    build_report,
    csv_row,
    fields_read,
    json_line,
    story_of_decision,
)
from routing.report.arms import compare_arms
from routing.report.figures import per_100
from routing.report.stats import Proportion
from routing.report.window import ASKED_GROUPINGS, BadWindow, Window, window_of


@app.command()
@friendly
def report(
    since: Annotated[
        str | None,
        typer.Option(help="Leads that arrived this long ago until now: 36h, 7d, 2w (default 7d)."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="The first day of the window (UTC), such as 2026-11-01."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="The last day of the window (UTC), included."),
    ] = None,
    by: Annotated[
        str,
        typer.Option(help=f"Group the leads by {', '.join(ASKED_GROUPINGS)}."),
    ] = "rule",
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV on stdout, one row per group, for programs.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per group per line.")
    ] = False,
    out_file: Annotated[Path | None, typer.Option("--out", help=OUT_HELP)] = None,
    rules: RulesOption = None,
) -> None:
    """The routing report of the leads that arrived in a window, one line per group: volume,
    outcomes, speed to card, claim and first touch (p50, p90), claim- and contact-SLA
    compliance, rejects and reassignments per 100 leads, conversion and win rate with their 95%
    intervals, pipeline and won amounts (in LEADROUTER_CURRENCY, when set); then fairness per
    team and data health.

    Reads DATABASE_URL (and LEADROUTER_RULES), as `serve` does, and brings the report up to date
    first. A policy version is named by its first 12 digits, as `policy history` shows it;
    leads decided before versions were kept are "unversioned".

    For Excel, `--out report.csv` rather than `--csv > report.csv`: stdout is plain UTF-8 for
    programs, and Excel garbles its accents.
    """
    from bot.cli import running
    from bot.cli.environment import settings as load_settings
    from bot.cli.which_policy import policy_or_active

    if as_csv and as_json:
        raise CliError("--csv and --json are two ways to print the report: choose one")
    if out_file is not None and as_json:
        raise CliError("--out writes the report as CSV: leave out --json (or --out)")
    if by not in ASKED_GROUPINGS:
        raise CliError(f"--by is one of {', '.join(ASKED_GROUPINGS)}, not {by!r}")
    window = _window(since, start, end)
    settings = load_settings(rules=rules)
    if out_file is not None:
        check_out_file(out_file, {"policy": rules or settings.rules})
    policy = policy_or_active(rules, settings, reads_only=True)
    running.existing(settings.database_url)
    running.upgrade(settings.database_url)
    result = asyncio.run(running.report(settings, policy, window, by=by))
    if as_json:
        for group in result.groups:
            out.print(json_line(group), soft_wrap=True, markup=False, highlight=False)
    elif as_csv or out_file is not None:
        with csv_sheet(out_file, COLUMNS) as sheet:
            for group in result.groups:  # a group is named by a lead's text (its source, say)
                row = csv_row(group)
                sheet.write([row.get(column, "") for column in COLUMNS])
        if out_file is not None:
            out.print(Text(f"{out_file}: {sheet.rows} rows written"))
    else:
        print_report(result)


def _window(since: str | None, start: str | None, end: str | None) -> Window:
    if (start is None) != (end is None) or (start is not None and since is not None):
        raise CliError("give both --from and --to (such as 2026-11-01 and 2026-11-07), or --since")
    try:
        return window_of(since=since, start=start, end=end, now=datetime.now(UTC), options="--")
    except BadWindow as exc:
        raise CliError(str(exc)) from None


# --- the table ----------------------------------------------------------------------------------


def print_report(result: Report) -> None:
    period = f"{_moment(result.since)} until {_moment(result.until)}"
    if not result.groups:
        out.print(f"No lead arrived from {period}.")
        return
    out.print(f"Leads that arrived from {period}, by {result.by} (as of {_moment(result.now)}).")
    rows = (*result.groups, result.total)
    _table(
        "Volume",
        ("group", "leads", "assigned", "queued", "nurture", "disq.", "unmatched"),
        [_volume(group) for group in rows],
    )
    _table(
        "Speed (from arrival) and SLAs",
        ("group", "to card p50", "to claim p50 / p90", "to touch p50", "claim SLA", "contact SLA"),
        [_speed(group) for group in rows],
    )
    _table(
        "Misroutes and outcomes",
        ("group", "rejects", "moved", "converted"),
        [_outcomes(group) for group in rows],
    )
    out.print(
        "Shares of the leads (disq.: disqualified); SLAs met, of those met or missed; rejects "
        "and moves per 100 leads; converted to an opportunity, with its 95% interval."
    )
    if any(group.too_few for group in result.groups):
        out.print("* fewer than 30 leads: too few to go by; the intervals say how little.")
    _print_opportunities(result)
    _print_misroutes(result.total)
    if result.by == "arm":
        _print_arms(result)
    _print_fairness(result.total)
    _print_health(result.total)


def _print_arms(result: Report) -> None:
    """Each experiment's arms compared: the sentences `routing.report.arms` writes."""
    for comparison in compare_arms(result):
        out.print(Text(f"Experiment {comparison.experiment}:", style="bold"))
        if comparison.control is None or comparison.candidate is None:
            missing = CONTROL if comparison.control is None else CANDIDATE
            out.print(Text(f"  no lead in its {missing} arm in this window: nothing to compare"))
            continue
        for difference in comparison.differences:
            out.print(Text(f"  {difference.verdict}"))


def _table(title: str, headings: tuple[str, ...], rows: list[list[str]]) -> None:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    # A column wraps between words, never inside one ("Enterpris / e"), up to a point.
    for index, heading in enumerate(headings):
        words = [*heading.split(), *(word for row in rows for word in row[index].split())]
        table.add_column(heading, overflow="fold", min_width=min(max(map(len, words)), 24))
    for index, row in enumerate(rows):
        table.add_row(*(Text(cell) for cell in row), end_section=index == len(rows) - 2)
    out.print(table)


def _name(group: GroupReport) -> str:
    if group.group == "all" and group.by != "all":
        return "all leads"
    name = "(none)" if group.group is None else group.group
    return f"{name} *" if group.too_few else name


def _volume(group: GroupReport) -> list[str]:
    return [
        _name(group),
        str(group.leads),
        _share(group.assigned),
        _share(group.queued),
        _share(group.nurture),
        _share(group.disqualified),
        _share(group.unmatched),
    ]


def _speed(group: GroupReport) -> list[str]:
    claim = group.time_to_claim
    return [
        _name(group),
        _duration(group.time_to_card.p50),
        f"{_duration(claim.p50)} / {_duration(claim.p90)}",
        _duration(group.time_to_first_touch.p50),
        _share(group.claim_sla),
        _share(group.contact_sla),
    ]


def _outcomes(group: GroupReport) -> list[str]:
    return [
        _name(group),
        _number(group.rejects_per_100),
        _number(group.reassignments_per_100),
        _interval(group.converted),
    ]


def _print_opportunities(result: Report) -> None:
    """Converted, won and lost, and their amounts in LEADROUTER_CURRENCY (named in the headings
    when set); the amounts left out for another currency, counted under them."""
    total = result.total
    if not total.converted.count:
        return
    unit = f" ({total.currency})" if total.currency else ""
    _table(
        "Opportunities",
        ("group", "converted", "won", "lost", f"pipeline{unit}", f"won amount{unit}"),
        [
            [
                _name(group),
                str(group.converted.count),
                str(group.won.count),
                str(group.lost),
                _amount(group.pipeline),
                _amount(group.won_amount),
            ]
            for group in (*result.groups, total)
        ],
    )
    if total.amounts_left_out:
        out.print(left_out_sentence(total.amounts_left_out))


def _print_misroutes(total: GroupReport) -> None:
    """Every lead's rejects and reassignments by reason (by group: `--json`, `--csv`)."""
    signals = (("rejected", total.rejects), ("reassigned", total.reassignments))
    if not any(reasons for _, reasons in signals):
        return
    table = Table(title="Misroute signals by reason, all leads", box=box.SIMPLE_HEAD)
    for heading in ("signal", "reason", "leads", "per 100 leads"):
        table.add_column(heading)
    for signal, reasons in signals:
        for index, (reason, count) in enumerate(reasons.items()):
            table.add_row(
                Text(signal if index == 0 else ""),
                Text(reason),
                Text(str(count)),
                Text(_number(per_100(count, total.leads))),
                end_section=index == len(reasons) - 1,
            )
    out.print(table)


def _print_fairness(total: GroupReport) -> None:
    if not total.fairness:
        return
    table = Table(title="Fairness: the leads each team's rotation gave out", box=box.SIMPLE_HEAD)
    for heading in ("team", "rep", "leads", "share", "expected share", "deviation"):
        table.add_column(heading)
    for team in total.fairness:
        for index, rep in enumerate(team.reps):
            table.add_row(
                Text(team.team if index == 0 else ""),
                Text(rep.rep),
                Text(str(rep.leads)),
                Text(f"{rep.share:.0%}"),
                Text(f"{rep.expected_share:.0%}"),
                Text(f"{rep.deviation:+.1f}"),
                end_section=index == len(team.reps) - 1,
            )
    out.print(table)


def _print_health(total: GroupReport) -> None:
    if not total.data_health:
        return
    table = Table(title="Data health: the fields the rules read", box=box.SIMPLE_HEAD)
    for heading in ("field", "missing", "unmatched for want of it"):
        table.add_column(heading)
    for health in total.data_health:
        table.add_row(
            Text(health.field),
            Text(f"{health.missing.count} ({_share(health.missing)})"),
            Text(str(health.unmatched_for_want_of)),
        )
    out.print(table)


def print_file_health(
    policy: Policy, decisions: Sequence[Decision], *, file: Path, now: datetime
) -> None:
    """`leadrouter check --leads`: the data health of a file, routed in memory."""
    fields = fields_read(policy)
    stories = [story_of_decision(d, created_at=now, fields=fields) for d in decisions]
    total = build_report(stories, by="all", now=now + _AFTER, fields=fields).total
    leads = f"{total.leads} lead{'s' * (total.leads != 1)}"
    out.print(Text(f"{file}: {leads} routed in memory as the policy routes them now"))
    _print_health(total)
    queue = policy.fallback.name or "unmatched"
    out.print(
        f"{total.unmatched.count} ({_share(total.unmatched)}) matched no rule and would wait in "
        f"the fallback queue `{queue}`."
    )


# Every lead of a file "arrived" at the same moment; the report counts those before `now`.
_AFTER = timedelta(microseconds=1)


def _moment(moment: datetime | None) -> str:
    return "the start" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _share(share: Proportion) -> str:
    return "–" if share.rate is None else f"{share.rate:.0%}"


def _interval(share: Proportion) -> str:
    if share.rate is None or share.low is None or share.high is None:
        return "–"
    return f"{share.rate:.0%} ({share.low:.0%}–{share.high:.0%})"


def _duration(seconds: float | None) -> str:
    return "–" if seconds is None else format_duration(seconds)


def _amount(value: Decimal | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"
