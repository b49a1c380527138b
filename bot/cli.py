"""The `leadrouter` command line: thin wrappers that read files, call the core, and print.

Every failure a user can cause (a bad policy, a missing file, a malformed flag) ends in a sentence
and exit code 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec

import typer
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from bot.card import card_content
from bot.files.accounts import ACCOUNT_COLUMNS, read_accounts
from bot.files.leads import LeadFile, LeadRow, open_leads, read_leads
from bot.files.tables import BadRow
from bot.files.text import InputFileError, encoding_problem
from bot.logs import configure_logging
from bot.policy_file import PolicyFileMissing, default_policy_path, load_policy
from routing.accounts import AccountIndex
from routing.audit import AUDIT_COLUMNS, DuplicateGroup, audit_rows, near_duplicates
from routing.decision import Decision
from routing.explain import explain
from routing.model import Account, Lead, Outcome, OutOfOffice
from routing.policy import Policy, PolicyError
from routing.simulation import Simulation, team_shares

if TYPE_CHECKING:
    from bot.bootstrap import App
    from bot.http import Listener
    from bot.settings import Settings

# Markdown: help paragraphs are reflowed to the terminal (typer's "rich" mode keeps the line
# breaks of the docstrings, which then break sentences in two), and `code` reads as code.
HELP_STYLE: dict[str, Any] = {
    "no_args_is_help": True,
    "rich_markup_mode": "markdown",
    "context_settings": {"help_option_names": ["-h", "--help"]},
}
app = typer.Typer(
    name="leadrouter",
    help="Route each new B2B lead to the right rep, explain why, and tell them in Slack.",
    add_completion=False,
    pretty_exceptions_enable=False,
    **HELP_STYLE,
)
# soft_wrap: a message is one line however narrow the terminal, so it can be grepped and piped.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

RulesOption = Annotated[
    Path | None,
    typer.Option("--rules", help="The policy file (default: $LEADROUTER_RULES, else routing.yml)."),
]
EncodingOption = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="How to read a file that is not UTF-8 (nor marked UTF-16), such as cp1252 for "
        "Excel's plain CSV on Windows in Western Europe and the Americas.",
    ),
]
db_app = typer.Typer(name="db", help="The database.", **HELP_STYLE)
app.add_typer(db_app)
accounts_app = typer.Typer(
    name="accounts", help="The accounts leads are matched against.", **HELP_STYLE
)
app.add_typer(accounts_app)
crm_app = typer.Typer(name="crm", help="Salesforce and HubSpot.", **HELP_STYLE)
app.add_typer(crm_app)
slack_app = typer.Typer(name="slack", help="The Slack app.", no_args_is_help=True)
app.add_typer(slack_app)
P = ParamSpec("P")
LEADS_FILE_HELP = (
    "Leads as CSV (with a header; commas, semicolons or tabs), JSON Lines, or a JSON array."
)
PROGRESS_THRESHOLD = 5000  # rows; smaller files finish before a bar would be read
log = logging.getLogger("leadrouter")


class CliError(Exception):
    """A problem the user can fix; printed as a sentence, exit code 1."""


def main() -> None:
    app()


def _print_version(wanted: bool) -> None:
    if wanted:
        try:
            installed = version("leadrouter")
        except PackageNotFoundError:
            installed = "(not installed: run from a source checkout)"
        out.print(f"leadrouter {installed}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print leadrouter's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    pass


def friendly(command: Callable[P, None]) -> Callable[P, None]:
    """Turn a CliError raised anywhere inside a command into a sentence and exit code 1."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except CliError as exc:
            err.print(Text(f"error: {exc}"))
            raise typer.Exit(1) from None

    return run


def _policy(path: Path | None, *, logged: bool = False, rules_option: bool = True) -> Policy:
    """The policy, its warnings printed (or, with `logged`, logged: `serve`'s log may be JSON)."""
    file = path or default_policy_path()
    try:
        policy = load_policy(file)
    except PolicyFileMissing as exc:
        raise CliError(f"{exc.report()}. {_where_policy(rules_option)}") from None
    except PolicyError as exc:
        raise CliError(f"the policy has problems:\n{exc.report()}") from None
    for warning in policy.warnings:
        if logged:
            log.warning("%s", warning.format(str(file)))
        else:
            err.print(Text(warning.format(str(file)), style="yellow"))
    return policy


def _where_policy(rules_option: bool) -> str:
    """How to point leadrouter at a policy, for a user who has none where it looked."""
    example = examples_dir() / "routing.yml"
    with contextlib.suppress(ValueError):
        example = example.relative_to(Path.cwd())
    return (
        "Set LEADROUTER_RULES to your policy file"
        + (" (or pass --rules)" if rules_option else "")
        + f", or start from the example: cp {example} routing.yml"
    )


def _parse_now(text: str | None, policy: Policy) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"--now '{text}' is not an ISO-8601 time such as 2026-11-17T15:30:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=policy.timezone)
    return moment


def _accounts(
    path: Path | None, policy: Policy, encoding: str | None = None
) -> AccountIndex | None:
    if path is None:
        return None
    try:
        accounts, bad = read_accounts(path, _rep_ids(policy), encoding=encoding)
    except InputFileError as exc:
        raise CliError(str(exc)) from None
    for row in bad:
        err.print(Text(f"{path}:{row.line}: {row.message}", style="yellow"))
    return AccountIndex(accounts)


def _rep_ids(policy: Policy) -> dict[str, str]:
    """Rep ids by the ways an accounts file may name an owner: id or e-mail, any case."""
    rep_ids = {rep.id.lower(): rep.id for rep in policy.reps.values()}
    rep_ids.update({rep.email.lower(): rep.id for rep in policy.reps.values() if rep.email})
    return rep_ids


def _lead_file(path: Path, encoding: str | None) -> LeadFile:
    if encoding is not None and (problem := encoding_problem(encoding)):
        raise CliError(problem)
    try:
        return open_leads(path, encoding=encoding)
    except InputFileError as exc:
        raise CliError(str(exc)) from None


def _leads(file: LeadFile) -> Iterator[Lead]:
    """Valid leads in file order; bad rows reported on stderr with their line number. A file
    with rows and not one lead among them is an error, once the rows are reported."""
    path = file.path
    good = bad = 0
    try:
        rows: Iterable[LeadRow | BadRow] = read_leads(file)
        with _progress(file.rows, "routing") as advance:
            for row in rows:
                advance(1)
                if isinstance(row, BadRow):
                    bad += 1
                    err.print(Text(f"{path}:{row.line}: skipped: {row.message}", style="yellow"))
                else:
                    good += 1
                    yield row.lead
    except InputFileError as exc:
        raise CliError(str(exc)) from None
    if bad and not good:
        raise CliError(_NO_LEAD.format(path=path))


_NO_LEAD = "{path}: no lead could be read: every row has a problem"


@app.command()
def check(
    file: Annotated[Path | None, typer.Argument(help="The policy file to check.")] = None,
) -> None:
    """Check a policy file: exit 0 with a summary, or 1 with every error and its line."""
    path = file or default_policy_path()
    try:
        policy = load_policy(path)
    except PolicyFileMissing as exc:
        err.print(Text(f"{exc.report()}. {_where_policy(rules_option=False)}"))
        raise typer.Exit(1) from None
    except PolicyError as exc:
        err.print(Text(exc.report()))
        errors = sum(1 for p in exc.problems if p.severity == "error")
        err.print(f"{path}: {errors} error{'s' if errors != 1 else ''}")
        raise typer.Exit(1) from None
    for warning in policy.warnings:
        err.print(Text(warning.format(str(path))))
    out.print(
        f"{path}: ok: {len(policy.reps)} reps, {len(policy.teams)} teams, "
        f"{len(policy.rules)} rules, "
        f"{len(policy.qualify)} qualification rules, {len(policy.managers)} managers"
        + (f", {len(policy.warnings)} warnings" if policy.warnings else "")
    )


@app.command()
@friendly
def simulate(
    leads: Annotated[Path, typer.Argument(help=LEADS_FILE_HELP)],
    rules: RulesOption = None,
    accounts: Annotated[
        Path | None, typer.Option(help="Accounts CSV: id,name,domain,owner,tier,country,state.")
    ] = None,
    now: Annotated[
        str | None, typer.Option(help="Route as if it were this ISO-8601 time (default: now).")
    ] = None,
    ooo: Annotated[
        list[str] | None, typer.Option("--ooo", help="Mark this rep out of office.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per lead per line.")
    ] = False,
    explain_all: Annotated[
        bool, typer.Option("--explain", help="Print the full explanation of each lead.")
    ] = False,
    encoding: EncodingOption = None,
) -> None:
    """Dry-run the policy over a file of leads. Writes nothing anywhere."""
    policy = _policy(rules)
    moment = _parse_now(now, policy)
    away = _out_of_office(ooo or [], policy)
    file = _lead_file(leads, encoding)
    simulation = Simulation(policy, moment, _accounts(accounts, policy, encoding), away)
    if as_json:
        for lead in _leads(file):
            decision = simulation.route(lead)
            out.print(json.dumps(decision_json(decision)), soft_wrap=True, markup=False)
        return
    decisions = [simulation.route(lead) for lead in _leads(file)]
    _print_results(policy, decisions, explain_all=explain_all)


def _out_of_office(rep_ids: list[str], policy: Policy) -> dict[str, OutOfOffice]:
    unknown = [r for r in rep_ids if r not in policy.reps]
    if unknown:
        raise CliError(
            f"--ooo {unknown[0]}: no rep with that id in the policy "
            f"(reps: {', '.join(policy.reps)})"
        )
    return {r: OutOfOffice(reason="marked out of office for this run") for r in rep_ids}


def decision_json(decision: Decision) -> dict[str, object]:
    return {
        "id": decision.lead_id,
        "outcome": decision.outcome.value,
        "rep": decision.rep,
        "team": decision.team,
        "rule": decision.rule,
        "reason": decision.reason,
        "sla_seconds": decision.sla_seconds,
    }


def _print_results(policy: Policy, decisions: list[Decision], *, explain_all: bool) -> None:
    table = Table(title=f"{len(decisions)} leads routed", box=box.SIMPLE_HEAD, expand=True)
    for column in ("lead", "rep", "team"):
        table.add_column(column, no_wrap=True)
    table.add_column("rule", ratio=1, overflow="fold")
    table.add_column("reason", ratio=3, overflow="fold")
    for d in decisions:
        rep = policy.rep_name(d.rep) if d.rep else f"({d.outcome.value})"
        # Lead data is shown as plain Text so a company named "[red]" is not read as markup.
        table.add_row(
            *(
                Text(cell)
                for cell in (d.lead_id, rep, d.team or d.queue or "", d.rule or "", d.reason)
            )
        )
    out.print(table)
    outcomes = {o: sum(1 for d in decisions if d.outcome is o) for o in Outcome}
    out.print("  ".join(f"{o.value}: {n}" for o, n in outcomes.items()))
    for team, shares in team_shares(policy, decisions).items():
        dist = Table(
            title=f"team {team} · {policy.teams[team].distribution.value.replace('_', ' ')}"
        )
        for column in ("rep", "leads", "expected share"):
            dist.add_column(column, justify="left" if column == "rep" else "right")
        for share in shares:
            dist.add_row(
                Text(policy.rep_name(share.rep)), str(share.count), f"{share.expected:.1f}"
            )
        out.print(dist)
    if explain_all:
        for d in decisions:
            out.print()
            out.print(explain(d, policy), markup=False)


DEMO_NOW = "2026-11-17T17:15:00+00:00"  # a Tuesday: New York 12:15, Los Angeles 09:15, London 17:15
DEMO_OUT_OF_OFFICE = "carol"


def _interesting(decisions: list[Decision]) -> Decision:
    """The lead whose card best shows off a reason: a fallback, else a skipped rep, else any."""
    assigned = [d for d in decisions if d.outcome is Outcome.ASSIGNED]
    for wanted in (lambda d: d.fallback_used, lambda d: " is " in d.reason):
        for decision in assigned:
            if wanted(decision):
                return decision
    return assigned[0]


def _card_as_text(policy: Policy, decision: Decision, moment: datetime) -> str:
    """The card the rep would get in Slack, the very blocks drawn as text, in the rep's zone."""
    # Imported here: slack_sdk's Block Kit is not needed by the other commands.
    from bot.slack.cards import CardView, offer_card
    from bot.slack.preview import as_text

    content = card_content(decision, policy, offered_at=moment)
    message = offer_card(CardView(lead_id=decision.lead_id, content=content))
    return as_text(message, tz=policy.reps[decision.rep or ""].tz)


def examples_dir() -> Path:
    """The bundled examples: inside the installed package, or beside it in a source checkout."""
    packaged = Path(str(resources.files("bot"))) / "examples"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "examples"


@app.command()
@friendly
def demo(
    now: Annotated[str, typer.Option(help="The moment the demo routes at (ISO-8601).")] = DEMO_NOW,
) -> None:
    """Route ~50 realistic leads with the example policy: table, distribution, and one card."""
    folder = examples_dir()
    policy = _policy(folder / "routing.yml")
    moment = _parse_now(now, policy)
    back = datetime(2026, 11, 23, 9, tzinfo=policy.reps[DEMO_OUT_OF_OFFICE].tz)
    away = {DEMO_OUT_OF_OFFICE: OutOfOffice(until=back, reason="vacation")}
    simulation = Simulation(policy, moment, _accounts(folder / "demo-accounts.csv", policy), away)
    leads = _lead_file(folder / "demo-leads.csv", None)
    decisions = [simulation.route(lead) for lead in _leads(leads)]
    out.print(
        f"[bold]leadrouter demo[/bold]: the example policy ({folder / 'routing.yml'}) routing "
        f"{len(decisions)} leads at {moment:%a %d %b %Y %H:%M %Z}, with "
        f"{policy.rep_name(DEMO_OUT_OF_OFFICE)} out of office. Nothing is written anywhere."
    )
    _print_results(policy, decisions, explain_all=False)
    sample = _interesting(decisions)
    # soft_wrap off for panels: their long lines must wrap inside the border, not be cut.
    card_panel = Panel(
        Text(_card_as_text(policy, sample, moment)),
        title="How the assignment card reads in Slack",
        subtitle=f"{policy.rep_name(sample.rep)}'s DM",
        expand=False,
    )
    out.print(card_panel, soft_wrap=False)
    why_panel = Panel(
        Text(explain(sample, policy)), title=f"leadrouter why {sample.lead_id}", expand=False
    )
    out.print(why_panel, soft_wrap=False)
    out.print(
        "Try: leadrouter simulate examples/demo-leads.csv --rules examples/routing.yml "
        "--accounts examples/demo-accounts.csv --now 2026-11-17T17:15:00Z --ooo carol --explain"
    )


# --- serve, import, db upgrade: the commands that use the database --------------------------
#
# Their modules (aiohttp, SQLAlchemy, Alembic) are imported inside the commands: together they
# triple the start-up time of `check` and `simulate`, which need none of them.

# Leads routed per transaction: the service loads the state once per group, so bigger groups
# are faster, up to where one transaction holds the database (and the progress bar) too long.
IMPORT_GROUP = 500
INVALID_SHOWN = 20


def _settings(*, rules: Path | None = None) -> Settings:
    from bot.settings import SettingsError, load_settings

    try:
        return load_settings(rules=rules) if rules is not None else load_settings()
    except SettingsError as exc:
        raise CliError(f"the settings have problems: {exc}") from None


def _upgrade(url: str) -> str | None:
    """Apply the database migrations; the revision the database is at afterwards."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from storage import migrate

    try:
        migrate.upgrade(url)
        return migrate.current(url)
    except (SQLAlchemyError, CommandError, OSError) as exc:
        raise CliError(f"cannot migrate the database: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


@app.command()
@friendly
def serve() -> None:
    """Receive leads over HTTP until SIGTERM or SIGINT: POST /leads, GET /healthz, GET /metrics.

    Configured by the environment (or .env): DATABASE_URL, LEADROUTER_WEBHOOK_SECRET,
    LEADROUTER_RULES, HOST, PORT, LOG_LEVEL, LOG_FORMAT. Binds HOST:PORT first, then applies
    database migrations and serves.
    """
    from bot.http import ListenError, listen

    settings = _settings()
    if settings.webhook_secret is None:
        raise CliError(
            "LEADROUTER_WEBHOOK_SECRET is not set: POST /leads needs it to check that each lead "
            "comes from you. Set it to a long random string, e.g. the output of "
            "`openssl rand -hex 32`, and sign requests with it."
        )
    configure_logging(settings.log_level, settings.log_format)
    policy = _policy(settings.rules, logged=True, rules_option=False)
    # Bound before anything starts: a port in use is one sentence, with no migration run and
    # no job started only to be cancelled.
    try:
        listener = listen(settings.host, settings.port)
    except ListenError as exc:
        raise CliError(str(exc)) from None
    try:
        _upgrade(settings.database_url)
        asyncio.run(_serve(settings, policy, listener))
    finally:
        listener.close()


async def _serve(settings: Settings, policy: Policy, listener: Listener) -> None:
    from bot.bootstrap import bootstrap
    from bot.http import build_http_app, run
    from bot.metrics import Metrics

    application = bootstrap(settings, policy=policy)
    metrics = Metrics()
    link = application.slack_link
    if link is not None and link.socket_mode:
        metrics.watch_slack_connection(lambda: application.slack_state() == "connected")
    if application.slack is None:
        log.info("SLACK_BOT_TOKEN is not set: cards wait in the outbox until it is")
    elif settings.socket_mode:
        # Slack's requests come over a websocket leadrouter opens, in the background.
        log.info("connecting to Slack in Socket Mode")
    else:
        log.info("Slack requests are served at POST /slack/events")
    try:
        await run(
            build_http_app(application, metrics=metrics, run_jobs=True, connect_slack=True),
            listener,
            started=lambda url: log.info("leadrouter listening on %s", url),
        )
    finally:
        await application.close()
    log.info("leadrouter stopped")


@dataclass
class ImportSummary:
    created: int = 0
    repeated: int = 0
    invalid: list[BadRow] = field(default_factory=list)


@app.command("import")
@friendly
def import_leads(
    file: Annotated[Path, typer.Argument(help=LEADS_FILE_HELP)],
    rules: RulesOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Route every lead in a file into the database, as POST /leads would. Safe to run again:
    a lead whose id is already stored is counted as repeated and left as it is."""
    settings = _settings(rules=rules)
    policy = _policy(settings.rules)
    leads = _lead_file(file, encoding)  # before migrating a database for nothing
    _upgrade(settings.database_url)
    summary = asyncio.run(_import(settings, policy, leads))
    out.print(
        Text(
            f"{file}: created {summary.created}, repeated {summary.repeated}, "
            f"invalid {len(summary.invalid)}"
        )
    )
    for row in summary.invalid[:INVALID_SHOWN]:
        out.print(Text(f"{file}:{row.line}: {row.message}"))
    if len(summary.invalid) > INVALID_SHOWN:
        out.print(f"… and {len(summary.invalid) - INVALID_SHOWN} more invalid rows")
    if summary.invalid and not (summary.created or summary.repeated):
        raise CliError(_NO_LEAD.format(path=file))


async def _import(settings: Settings, policy: Policy, file: LeadFile) -> ImportSummary:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.bootstrap import bootstrap

    application = bootstrap(settings, policy=policy)
    summary = ImportSummary()
    try:
        with _progress(file.rows, "importing") as advance:
            rows = iter(read_leads(file))
            while group := list(islice(rows, IMPORT_GROUP)):
                await _import_group(application, group, summary)
                advance(len(group))
    except InputFileError as exc:
        # The file was checked whole before the first lead: it changed while being read.
        raise CliError(_stopped(file.path, summary, str(exc), again=False)) from None
    except (SQLAlchemyError, OSError) as exc:
        raise CliError(
            _stopped(file.path, summary, f"the database failed: {_first_line(exc)}", again=True)
        ) from None
    finally:
        await application.close()
    return summary


async def _import_group(
    application: App, group: list[LeadRow | BadRow], summary: ImportSummary
) -> None:
    summary.invalid.extend(row for row in group if isinstance(row, BadRow))
    leads = [row.lead for row in group if isinstance(row, LeadRow)]
    for result in await application.service.intake_many(leads) if leads else []:
        if result.created:
            summary.created += 1
        else:
            summary.repeated += 1


def _stopped(path: Path, summary: ImportSummary, why: str, *, again: bool) -> str:
    """Why the import stopped and what it had stored; "run it again" only for a failure that
    may pass (the database's), never for one that would repeat."""
    done = (
        f"{path}: stopped: {why}; {summary.created} leads were created and "
        f"{summary.repeated} repeated before it."
    )
    return done + (" Run the import again to go on: leads already stored are skipped." * again)


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal for files big enough to watch, nothing elsewhere; call the
    function it gives with the number of rows done."""
    if not sys.stderr.isatty() or total < PROGRESS_THRESHOLD:
        yield lambda rows: None
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda rows: progress.advance(task, rows)


ACCOUNT_GROUP = 5000


@accounts_app.command("import")
@friendly
def accounts_import(
    file: Annotated[
        Path, typer.Argument(help="Accounts CSV: id,name,domain,owner,tier,country,state.")
    ],
    rules: RulesOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Load accounts into the database for `serve` and `import` to match leads against. An
    account whose id is already stored is replaced. `owner` is a rep's id or e-mail."""
    settings = _settings(rules=rules)
    policy = _policy(settings.rules)
    if encoding is not None and (problem := encoding_problem(encoding)):
        raise CliError(problem)
    try:
        accounts, bad = read_accounts(file, _rep_ids(policy), encoding=encoding)
    except InputFileError as exc:
        raise CliError(str(exc)) from None
    for row in bad:
        err.print(Text(f"{file}:{row.line}: {row.message}", style="yellow"))
    _upgrade(settings.database_url)
    created, updated = asyncio.run(_import_accounts(settings, policy, accounts))
    out.print(
        Text(
            f"{file}: {created} accounts created, {updated} replaced, {len(bad)} rows with problems"
        )
    )


async def _import_accounts(
    settings: Settings, policy: Policy, accounts: list[Account]
) -> tuple[int, int]:
    from bot.bootstrap import bootstrap
    from bot.service import ServiceError

    application = bootstrap(settings, policy=policy)
    created = updated = 0
    try:
        for start in range(0, len(accounts), ACCOUNT_GROUP):
            new, replaced = await application.service.import_accounts(
                accounts[start : start + ACCOUNT_GROUP]
            )
            created, updated = created + new, updated + replaced
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    finally:
        await application.close()
    return created, updated


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
        typer.Option("--out", help="Write every group to this CSV, one row per account."),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            "--policy",
            help="A policy file: owners are read as import reads them (rep ids or e-mails), and "
            "its threshold is the default. Without one, owners are kept as written.",
        ),
    ] = None,
    encoding: EncodingOption = None,
) -> None:
    """List the accounts that are near-duplicates of each other: a lead named like one would
    match the other as well, so its match is ambiguous, and it may go to the wrong owner.

    A group is every account linked to another that way. Hand the CSV of `--out` to whoever
    cleans the CRM. Reads the file as `accounts import` does and writes nothing else."""
    policy = None if rules is None else _policy(rules)
    if threshold is None:
        threshold = DEFAULT_AUDIT_THRESHOLD if policy is None else policy.fuzzy_threshold
    if encoding is not None and (problem := encoding_problem(encoding)):
        raise CliError(problem)
    try:
        accounts, bad = read_accounts(
            file, None if policy is None else _rep_ids(policy), encoding=encoding
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
    """The audit as CSV, in UTF-8 with a byte-order mark so that Excel shows accents as they
    are."""
    try:
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.DictWriter(handle, AUDIT_COLUMNS)
            writer.writeheader()
            writer.writerows(audit_rows(groups))
    except OSError as exc:
        raise CliError(f"{path}: cannot be written ({exc.strerror or exc})") from None


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


@app.command()
@friendly
def jobs(rules: RulesOption = None) -> None:
    """List the scheduled jobs `leadrouter serve` runs, each with its next run."""
    from bot.bootstrap import crm_links
    from bot.jobs import declare_jobs, next_runs

    policy = _policy(rules)
    settings = _settings(rules=rules)
    crm = crm_links(settings, lambda: policy)  # connects to nothing
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("job", "what", "next run (UTC)"):
        table.add_column(column)
    declared = declare_jobs(policy, crm, settings.retention)
    for job, next_run in next_runs(declared, datetime.now(UTC)):
        when = f"{next_run.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if next_run else "never"
        table.add_row(job.name, Text(job.what), when)
    out.print(table)


@crm_app.command("check")
@friendly
def crm_check(rules: RulesOption = None) -> None:
    """Check each configured CRM's credentials and which reps map to a CRM owner."""
    from bot.bootstrap import crm_links
    from bot.crm.sync import CrmCheck, check
    from bot.crm_links import crm_name

    policy = _policy(rules)
    links = crm_links(_settings(rules=rules), lambda: policy)
    if not links:
        raise CliError(
            "no CRM is configured: set SALESFORCE_ACCESS_TOKEN (with SALESFORCE_INSTANCE_URL), "
            "SALESFORCE_USERNAME and SALESFORCE_PASSWORD, SALESFORCE_CLIENT_ID and "
            "SALESFORCE_CLIENT_SECRET, or HUBSPOT_ACCESS_TOKEN"
        )

    async def run() -> list[CrmCheck]:
        try:
            return [await check(link) for link in links.values()]
        finally:
            for link in links.values():
                link.calls.close()

    problems = 0
    for result in asyncio.run(run()):
        name = crm_name(result.system)
        if result.mapping is None:
            problems += 1
            out.print(f"{name}: cannot connect: {result.error}")
            continue
        out.print(f"{name}: {result.connected}")
        for rep_id, owner_id in result.mapping.owners.items():
            how = "set in the policy" if rep_id in result.mapping.explicit else "by email"
            out.print(f"  {rep_id} -> {owner_id} ({how})")
        for why in result.mapping.missing.values():
            problems += 1
            out.print(f"  missing: {why}")
    if problems:
        raise CliError(f"{problems} problem(s) to fix before owners can be written back")


@slack_app.command("check")
@friendly
def slack_check(rules: RulesOption = None) -> None:
    """Check the Slack app against the policy: the bot token, its scopes, every rep's and
    manager's Slack id, and that the bot can post in every channel the policy names. Posts
    nothing. Exit 1 while there is a problem, each printed with its fix."""
    from bot.slack.app import build_client
    from bot.slack.check import check_slack

    policy = _policy(rules)
    settings = _settings(rules=rules)
    if settings.slack_bot_token is None:
        raise CliError(
            "SLACK_BOT_TOKEN is not set: set it to the app's Bot User OAuth Token (xoxb-…), "
            "from its OAuth & Permissions page"
        )
    result = asyncio.run(check_slack(build_client(settings), policy))
    if result.workspace is not None:
        out.print(Text(f"Slack: {result.workspace}"))
    for finding in result.findings:
        if finding.fix is None:
            out.print(Text(f"  ok  {finding.what}"))
        else:
            out.print(Text(f"  problem  {finding.what}"))
            out.print(Text(f"      fix: {finding.fix}"))
    if result.problems:
        raise CliError(f"{result.problems} problem{'s' if result.problems != 1 else ''} to fix")
    out.print("no problems")


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Apply the database migrations (DATABASE_URL) and print the revision it is at."""
    settings = _settings()
    revision = _upgrade(settings.database_url)
    out.print(f"database upgraded: at revision {revision}")
