"""What the commands share: the Typer apps, the consoles, the options, and reading a policy,
a file of leads or accounts, and the settings."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, ParamSpec

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from bot import env_file
from bot.files.accounts import read_accounts
from bot.files.leads import (
    LeadFile,
    LeadRow,
    custom_columns_spelt_otherwise,
    open_leads,
    read_leads,
)
from bot.files.tables import BadRow
from bot.files.text import InputFileError, encoding_problem
from bot.policy_file import PolicyFileMissing, default_policy_path, load_policy
from bot.settings import unknown_settings
from routing.accounts import AccountIndex
from routing.conditions import CUSTOM_FIELD_PREFIX
from routing.leads import told_apart
from routing.model import Lead
from routing.policy import Policy, PolicyError

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
policy_app = typer.Typer(
    name="policy",
    help="The versions of the policy the servers serve: history, show, activate.",
    **HELP_STYLE,
)
app.add_typer(policy_app)
accounts_app = typer.Typer(
    name="accounts", help="The accounts leads are matched against.", **HELP_STYLE
)
app.add_typer(accounts_app)
crm_app = typer.Typer(name="crm", help="Salesforce and HubSpot.", **HELP_STYLE)
app.add_typer(crm_app)
experiment_app = typer.Typer(
    name="experiment",
    help="The policy's experiments: list them with their arms, promote or stop one.",
    **HELP_STYLE,
)
app.add_typer(experiment_app)
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


class PolicyProblems(CliError):
    """The policy file is there but fails its checks; the sentence lists every problem."""


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
        _env_file_said.clear()  # a command of its own (the tests run many in one process)
        try:
            command(*args, **kwargs)
        except CliError as exc:
            err.print(Text(f"error: {exc}"))
            raise typer.Exit(1) from None

    return run


_env_file_said: set[Path] = set()


def say_env_file_problems(*, logged: bool = False) -> None:
    """Each line of .env the settings go without (`bot.env_file`), said once a command: printed
    on stderr, or, with `logged`, logged (`serve`'s log may be JSON)."""
    if env_file.DOTENV in _env_file_said:
        return
    _env_file_said.add(env_file.DOTENV)
    try:
        found = env_file.problems()
    except env_file.NotText as exc:
        raise CliError(str(exc)) from None
    for sentence in [*found, *unknown_settings(os.environ, env_file.DOTENV)]:
        if logged:
            log.warning("%s", sentence)
        else:
            err.print(Text(sentence, style="yellow"))


def read_policy(path: Path | None, *, logged: bool = False, rules_option: bool = True) -> Policy:
    """The policy, its warnings printed (or, with `logged`, logged: `serve`'s log may be JSON)."""
    if path is None:
        say_env_file_problems(logged=logged)  # where LEADROUTER_RULES is looked for
    file = path or default_policy_path()
    try:
        policy = load_policy(file)
    except PolicyFileMissing as exc:
        # A file named (LEADROUTER_RULES, --rules) rather than looked for where one usually is.
        named = Path(file) != Path("routing.yml")
        from bot.cli.which_policy import write_back  # the database's modules: only now

        # `serve` (logged) says where to put or mount the file: it serves from the file.
        advice = None if logged else write_back(Path(file))
        if advice is None:
            advice = put_policy(file, rules_option) if named else where_policy(rules_option)
        raise CliError(f"{exc.report()}. {advice}") from None
    except PolicyError as exc:
        raise PolicyProblems(f"the policy has problems:\n{exc.report()}") from None
    for warning in policy.warnings:
        if logged:
            log.warning("%s", warning.format(str(file)))
        else:
            err.print(Text(warning.format(str(file)), style="yellow"))
    return policy


def where_policy(rules_option: bool) -> str:
    """How to point leadrouter at a policy, for a user who has none where it looked."""
    example = examples_dir() / "routing.yml"
    with contextlib.suppress(ValueError):
        example = example.relative_to(Path.cwd())
    return (
        "Set LEADROUTER_RULES to your policy file"
        + (" (or pass --rules)" if rules_option else "")
        + f", or start from the example: cp {example} routing.yml"
    )


def put_policy(file: Path, rules_option: bool) -> str:
    """What to do when the policy file named (LEADROUTER_RULES, or --rules) is not there: in a
    container, most often a volume that was not mounted."""
    return (
        "Put your policy file there (in a container, mount it: "
        f'-v "$PWD/routing.yml:{file}:ro"), or point LEADROUTER_RULES'
        + (" (or --rules)" if rules_option else "")
        + " at the file you have"
    )


def parse_now(text: str | None, policy: Policy) -> datetime:
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


def account_index(
    path: Path | None, policy: Policy, encoding: str | None = None
) -> AccountIndex | None:
    if path is None:
        return None
    try:
        accounts, bad = read_accounts(path, rep_ids(policy), encoding=encoding)
    except InputFileError as exc:
        raise CliError(str(exc)) from None
    for row in bad:
        err.print(Text(f"{path}:{row.line}: {row.message}", style="yellow"))
    return AccountIndex(accounts)


def rep_ids(policy: Policy) -> dict[str, str]:
    """Rep ids by the ways an accounts file may name an owner: id, e-mail, or the name a CRM
    export gives (Salesforce's "Account Owner" is "Alice Adams"), any case. A name two reps
    share names neither; an id or e-mail wins over a name spelt the same."""
    names = Counter(rep.name.strip().lower() for rep in policy.reps.values())
    rep_ids = {
        rep.name.strip().lower(): rep.id
        for rep in policy.reps.values()
        if names[rep.name.strip().lower()] == 1
    }
    rep_ids.update({rep.id.lower(): rep.id for rep in policy.reps.values()})
    rep_ids.update({rep.email.lower(): rep.id for rep in policy.reps.values() if rep.email})
    return rep_ids


def lead_file(path: Path, encoding: str | None, policy: Policy | None = None) -> LeadFile:
    """The file of leads, checked; with `policy`, a warning for each column that is a custom
    field the policy reads, spelt otherwise."""
    if encoding is not None and (problem := encoding_problem(encoding)):
        raise CliError(problem)
    try:
        file = open_leads(path, encoding=encoding)
    except InputFileError as exc:
        raise CliError(str(exc)) from None
    if policy is not None:
        custom = [
            field.removeprefix(CUSTOM_FIELD_PREFIX)
            for field in sorted(policy.condition_fields)
            if field.startswith(CUSTOM_FIELD_PREFIX)
        ]
        for column, field in custom_columns_spelt_otherwise(file, custom):
            err.print(
                Text(
                    f"{path}: the column `{column}` is the custom field "
                    f"`{CUSTOM_FIELD_PREFIX}{column.removeprefix(CUSTOM_FIELD_PREFIX)}`, but the "
                    f"policy reads `{CUSTOM_FIELD_PREFIX}{field}`: custom fields' names are "
                    "compared exactly, so rename the column or the field",
                    style="yellow",
                )
            )
    return file


def valid_leads(file: LeadFile) -> Iterator[Lead]:
    """Valid leads in file order; bad rows reported on stderr with their line number. A file
    with rows and not one lead among them is an error, once the rows are reported.

    A row under an id an earlier row has is skipped, as `import` and `POST /leads` take it: the
    same lead again is stored once, and another lead under that id is not routed. Routing either
    again would count a lead twice in the distribution a dry run is read for."""
    path = file.path
    good = bad = 0
    first: dict[str, tuple[int, Lead]] = {}
    try:
        rows: Iterable[LeadRow | BadRow] = read_leads(file)
        with progress(file.rows, "routing") as advance:
            for row in rows:
                advance(1)
                if isinstance(row, LeadRow) and (seen := first.get(row.lead.id)) is not None:
                    row = BadRow(row.line, _id_again(row.lead, *seen))
                if isinstance(row, BadRow):
                    bad += 1
                    err.print(Text(f"{path}:{row.line}: skipped: {row.message}", style="yellow"))
                else:
                    good += 1
                    first[row.lead.id] = (row.line, row.lead)
                    yield row.lead
    except InputFileError as exc:
        raise CliError(str(exc)) from None
    if bad and not good:
        raise CliError(NO_LEAD.format(path=path))


NO_LEAD = "{path}: no lead could be read: every row has a problem"


def _id_again(lead: Lead, line: int, earlier: Lead) -> str:
    clash = told_apart(earlier, lead)
    if clash is None:
        return f"the same lead as line {line} again: import stores it once"
    return (
        f"id: {lead.id!r} was already used on line {line} for a lead with {clash}, so this row "
        "would not be routed; give each lead its own id"
    )


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
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
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda rows: bar.advance(task, rows)


def examples_dir() -> Path:
    """The bundled examples: inside the installed package, or beside it in a source checkout."""
    packaged = Path(str(resources.files("bot"))) / "examples"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "examples"


def first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
