"""The commands that use the database: serve, import, accounts import, db upgrade.

What they run is in `bot.cli.running`, imported once one of them runs: its modules (aiohttp,
SQLAlchemy, Alembic) together triple the start-up time of `check` and `simulate`, which need none
of them.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from bot.cli.common import (
    LEADS_FILE_HELP,
    NO_LEAD,
    CliError,
    EncodingOption,
    RulesOption,
    accounts_app,
    app,
    db_app,
    err,
    friendly,
    lead_file,
    out,
    read_policy,
    rep_ids,
    say_env_file_problems,
)
from bot.files.accounts import read_accounts
from bot.files.text import InputFileError, encoding_problem
from bot.logs import configure_logging
from routing.policy_version import short_version

if TYPE_CHECKING:
    from bot.settings import Settings

INVALID_SHOWN = 20


@app.command()
@friendly
def serve() -> None:
    """Receive leads over HTTP until SIGTERM or SIGINT: POST /leads, POST /events, GET /healthz,
    GET /metrics, and Slack's, HubSpot's and the dashboard's pages; run the outbox and the jobs.

    Configured by the environment (or .env): DATABASE_URL, LEADROUTER_WEBHOOK_SECRET,
    LEADROUTER_RULES, HOST, PORT, LOG_LEVEL, LOG_FORMAT and the README's other settings. Binds
    HOST:PORT first, then applies database migrations and serves.
    """
    from bot.cli import running
    from bot.cli.environment import settings as load_settings
    from bot.http.serving import ListenError, listen

    settings = load_settings(logged=True)
    if settings.webhook_secret is None:
        raise CliError(
            "LEADROUTER_WEBHOOK_SECRET is not set: POST /leads needs it to check that each lead "
            "comes from you. Set it to a long random string, e.g. the output of "
            "`openssl rand -hex 32`, and sign requests with it."
        )
    configure_logging(settings.log_level, settings.log_format)
    say_env_file_problems(logged=True)  # .env's unread lines and misspelt settings
    try:
        refused: CliError | None = None
        try:
            policy = read_policy(settings.rules, logged=True, rules_option=False)
        except CliError as problems:
            if not settings.rules.is_file():
                raise  # no file there: where to point it is the answer, not a version
            refused = problems
        # Bound before anything starts: a port in use is one sentence, with no migration run and
        # no job started only to be cancelled.
        try:
            listener = listen(settings.host, settings.port)
        except ListenError as exc:
            raise CliError(str(exc)) from None
        try:
            running.upgrade(settings.database_url)
            if refused is not None:
                # A replica restarting while the shared file holds a mistake serves on, as one
                # running would; the watch reads the file again, tells the managers, takes the fix.
                policy = running.active_policy_instead(settings, refused)
            asyncio.run(running.serve_until_stopped(settings, policy, listener))
        finally:
            listener.close()
    except CliError as exc:
        if settings.log_format != "json":
            raise
        # The sentence serve stops on is the line a log shipper most needs: one object too.
        logging.getLogger("leadrouter").error("%s", exc)
        raise typer.Exit(1) from None


@app.command("import")
@friendly
def import_leads(
    file: Annotated[Path, typer.Argument(help=LEADS_FILE_HELP)],
    rules: RulesOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Route every lead in a file into the database, as POST /leads would. Safe to run again:
    a lead whose id is already stored is counted as repeated and left as it is."""
    from bot.cli import running
    from bot.cli.environment import settings as load_settings
    from bot.cli.which_policy import policy_or_active

    settings = load_settings(rules=rules)
    policy = policy_or_active(rules, settings)
    leads = lead_file(file, encoding, policy)  # before migrating a database for nothing
    running.upgrade(settings.database_url)
    if settings.rules.exists():  # else it is the active version, said already
        _note_another_version_serving(settings)
    summary = asyncio.run(running.import_leads(settings, policy, leads))
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
        raise CliError(NO_LEAD.format(path=file))


def _note_another_version_serving(settings: Settings) -> None:
    """Say so when the servers serve another version than the file the import routes by: the
    leads record the file's version, and a server would have routed them by its own."""
    from bot.cli import versions_running

    serving = asyncio.run(versions_running.serving_unless(settings, settings.rules))
    if serving is None:
        return
    version = short_version(serving.version)
    err.print(
        Text(
            f"note: {settings.rules} is not the policy serving: version {version} is (read from "
            f"{serving.source}). These leads are routed by {settings.rules}; to route them as the "
            f"servers would, `leadrouter policy show {version} > serving.yml` and import with "
            "--rules serving.yml.",
            style="yellow",
        )
    )


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
    account whose id is already stored is replaced. `owner` is a rep's id, e-mail or name."""
    from bot.cli import running
    from bot.cli.environment import settings as load_settings
    from bot.cli.which_policy import policy_or_active

    settings = load_settings(rules=rules)
    policy = policy_or_active(rules, settings)
    if encoding is not None and (problem := encoding_problem(encoding)):
        raise CliError(problem)
    try:
        accounts, bad = read_accounts(file, rep_ids(policy), encoding=encoding)
    except InputFileError as exc:
        raise CliError(str(exc)) from None
    for row in bad:
        err.print(Text(f"{file}:{row.line}: {row.message}", style="yellow"))
    if bad and not accounts:
        raise CliError(f"{file}: no account could be read: every row has a problem")
    running.upgrade(settings.database_url)
    created, updated = asyncio.run(running.import_accounts_in(settings, policy, accounts))
    skipped = sum(row.skipped for row in bad)
    out.print(
        Text(
            f"{file}: created {created}, replaced {updated}, skipped {skipped}, "
            f"kept with a problem {len(bad) - skipped}"
        )
    )


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Apply the database migrations (DATABASE_URL) and print the revision it is at."""
    from bot.cli import running
    from bot.cli.environment import settings as load_settings

    revision = running.upgrade(load_settings().database_url)
    out.print(f"database upgraded: at revision {revision}")
