"""What the database commands run (`bot.cli.database`), with the modules they need imported at
the top: this module itself is imported only once one of those commands runs."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from alembic.util.exc import CommandError
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.bootstrap import App, bootstrap
from bot.cli.common import CliError, first_line, progress
from bot.files.leads import LeadFile, LeadRow, read_leads
from bot.files.tables import BadRow
from bot.files.text import InputFileError
from bot.metrics import Metrics
from bot.policy_file import read_policy_text
from bot.service.accounts import import_accounts
from bot.service.errors import ServiceError
from bot.service.intake import intake_many
from bot.service.policies import (
    UnknownVersion,
    active_version,
    keep_policy,
    stored_policy_of,
)
from bot.service.replay import replay as replay_window
from bot.service.report import refresh_report, routing_report
from bot.service.unit_of_work import UnitOfWork
from bot.settings import Settings
from bot.story import LeadStory
from routing.model import Account
from routing.policy import Policy, PolicyError
from routing.policy_version import short_version, version_of
from routing.replay import Replayed
from routing.replay_summary import ReplaySummary
from routing.report import Report
from routing.report.window import Window
from storage import migrate
from storage.db import check_url, open_database

if TYPE_CHECKING:
    from bot.http.serving import Listener

log = logging.getLogger("leadrouter")

# Leads routed per transaction: the service loads the state once per group, so bigger groups
# are faster, up to where one transaction holds the database (and the progress bar) too long.
IMPORT_GROUP = 500


def upgrade(url: str) -> str | None:
    """Apply the database migrations; the revision the database is at afterwards."""
    _check_sqlite_folder(url)
    try:
        migrate.upgrade(url)
        return migrate.current(url)
    except OSError as exc:
        raise CliError(_unreachable(url, exc)) from None
    except (SQLAlchemyError, CommandError) as exc:
        raise CliError(_newer(url) or f"cannot migrate the database: {first_line(exc)}") from None


def _newer(url: str) -> str | None:
    """The sentence for a database a newer release migrated (a rollback), else None."""
    try:
        revision = migrate.current(url)
    except (SQLAlchemyError, OSError):
        return None
    if revision is None or migrate.known(revision):
        return None
    return (
        f"the database is at revision {revision}, which this leadrouter does not know (its "
        f"newest is {migrate.head()}): a newer leadrouter migrated it. Run that one again, or "
        "restore the backup taken before the upgrade (docs/operations.md, Backups)"
    )


def _unreachable(url: str, exc: OSError) -> str:
    """A database server that cannot be reached, named by its host and port only (the URL may
    hold a password), with what the system said and what to check."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"cannot open the database: {first_line(exc)}"
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    # "Connection refused" rather than the driver's "Connect call failed ('127.0.0.1', 1)".
    why = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror
    why = why or first_line(exc)
    return (
        f"cannot reach the database at {where}: {why}. Is PostgreSQL running there, and are "
        "DATABASE_URL's host and port right?"
    )


async def serve_until_stopped(settings: Settings, policy: Policy, listener: Listener) -> None:
    # Only `serve` answers HTTP: the other commands of this module need not import it.
    from bot.http import build_http_app
    from bot.http.serving import run

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
        if settings.slack_signing_secret is not None:
            # Said, because an admin moving to HTTP mode sees Slack's URL check fail otherwise.
            log.info(
                "SLACK_APP_TOKEN is set: Slack's requests come over Socket Mode, and POST "
                "/slack/events is not served (unset SLACK_APP_TOKEN for HTTP mode)"
            )
    else:
        log.info("Slack requests are served at POST /slack/events")
    try:
        await run(
            build_http_app(
                application,
                metrics=metrics,
                run_jobs=True,
                connect_slack=True,
                watch_policy=True,
            ),
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


async def import_leads(settings: Settings, policy: Policy, file: LeadFile) -> ImportSummary:
    application = bootstrap(settings, policy=policy)
    summary = ImportSummary()
    try:
        await _keep_version(application, settings.rules, policy)
        with progress(file.rows, "importing") as advance:
            rows = iter(read_leads(file))
            while group := list(islice(rows, IMPORT_GROUP)):
                await _import_group(application, group, summary)
                advance(len(group))
    except InputFileError as exc:
        # The file was checked whole before the first lead: it changed while being read.
        raise CliError(_stopped(file.path, summary, str(exc), again=False)) from None
    except (SQLAlchemyError, OSError) as exc:
        raise CliError(
            _stopped(file.path, summary, f"the database failed: {first_line(exc)}", again=True)
        ) from None
    finally:
        await application.close()
    return summary


async def _keep_version(application: App, path: Path, policy: Policy) -> None:
    """Keep the text of the version these leads record, so that `leadrouter policy show` finds
    it (unless the file changed since it was read: then there is no such text to keep)."""
    try:
        text = read_policy_text(path)
    except PolicyError:
        return
    if version_of(text) == policy.version:
        await keep_policy(application.uow, text, source=policy.source)


async def _import_group(
    application: App, group: list[LeadRow | BadRow], summary: ImportSummary
) -> None:
    bad = [row for row in group if isinstance(row, BadRow)]
    rows = [row for row in group if isinstance(row, LeadRow)]
    results = await intake_many(application.uow, [row.lead for row in rows]) if rows else []
    for row, result in zip(rows, results, strict=True):
        if result.created:
            summary.created += 1
        elif result.clash:
            # Another lead under an id already used: not routed, and said, as POST /leads does.
            bad.append(
                BadRow(
                    row.line,
                    f"id: {row.lead.id!r} was already used for a lead with {result.clash}, so "
                    "this row was not routed; give each lead its own id",
                )
            )
        else:
            summary.repeated += 1
    summary.invalid.extend(sorted(bad, key=lambda row: row.line))


def _stopped(path: Path, summary: ImportSummary, why: str, *, again: bool) -> str:
    """Why the import stopped and what it had stored; "run it again" only for a failure that
    may pass (the database's), never for one that would repeat."""
    done = (
        f"{path}: stopped: {why}; {summary.created} leads were created and "
        f"{summary.repeated} repeated before it."
    )
    return done + (" Run the import again to go on: leads already stored are skipped." * again)


ACCOUNT_GROUP = 5000


async def import_accounts_in(
    settings: Settings, policy: Policy, accounts: list[Account]
) -> tuple[int, int]:
    application = bootstrap(settings, policy=policy)
    created = updated = 0
    try:
        for start in range(0, len(accounts), ACCOUNT_GROUP):
            new, replaced = await import_accounts(
                application.uow, accounts[start : start + ACCOUNT_GROUP]
            )
            created, updated = created + new, updated + replaced
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    finally:
        await application.close()
    return created, updated


def _check_sqlite_folder(url: str) -> None:
    """A CliError when a SQLite database's folder is not there. SQLite would make the file, not
    the folder; and `sqlite:///tmp/x.db` is tmp/x.db under the working directory, which an admin
    who meant /tmp/x.db reads as an error about a lock file they never named."""
    parsed = make_url(check_url(url))
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or path in (None, "", ":memory:"):
        return
    folder = Path(path or "").parent
    if not folder.is_dir():
        raise CliError(
            f"DATABASE_URL: the folder {folder}, where the SQLite database {path} would be, "
            "does not exist (sqlite:///PATH, three slashes, is a path under the working "
            "directory; sqlite:////PATH, four, one from the root)"
        )


def existing(url: str) -> None:
    """A CliError for a SQLite database whose file is not there. For a command that reports on
    the database: migrating would make an empty one, and a mistyped path would read as a
    database without leads (and leave a stray file)."""
    parsed = make_url(check_url(url))
    path = parsed.database
    in_a_file = parsed.get_backend_name() == "sqlite" and path not in (None, "", ":memory:")
    if in_a_file and not Path(path or "").is_file():
        raise CliError(f"no database at {path}: set DATABASE_URL to the one serve uses")


def migrated(url: str) -> None:
    """For a command that only reads: a CliError unless the database exists and is at the
    code's revision. It is not migrated (that would write), nor, for SQLite, made."""
    existing(url)
    try:
        revision = migrate.current(url)
    except (SQLAlchemyError, OSError) as exc:
        raise CliError(f"cannot read the database: {first_line(exc)}") from None
    if revision is not None and not migrate.known(revision):
        raise CliError(_newer(url) or f"the database is at an unknown revision {revision}")
    if revision != migrate.head():
        raise CliError(
            f"the database is at revision {revision or 'none'}, not {migrate.head()}: "
            "run `leadrouter db upgrade` first (or `serve`, which migrates at start)"
        )


def active_policy(settings: Settings) -> Policy | None:
    """The version active in the database, compiled; None when there is no database (it is not
    made), none was activated, it cannot be read, or this release cannot use it."""
    try:
        existing(settings.database_url)
    except CliError:
        return None

    async def active() -> Policy | None:
        db = open_database(settings.database_url)
        try:
            uow = UnitOfWork(db=db, policy=_routes_nothing)
            version = await active_version(uow)
            return await stored_policy_of(uow, version) if version is not None else None
        except (PolicyError, UnknownVersion, SQLAlchemyError, OSError):
            return None
        finally:
            await db.dispose()

    return asyncio.run(active())


def active_policy_instead(settings: Settings, refused: CliError) -> Policy:
    """The version active in the database, to serve while the policy file fails its checks
    (`refused`, its problems); `refused` itself when there is none this release can serve."""
    policy = active_policy(settings)
    if policy is None:  # the file's problems are what to say
        raise refused
    # The watch's first look refuses the file with its problems, and tells the managers.
    log.warning(
        "policy: %s fails its checks: version %s, active in the database, serves until it is fixed",
        settings.rules,
        short_version(policy.version),
    )
    for warning in policy.warnings:
        log.warning("%s", warning.format(policy.source))
    return policy


def _routes_nothing() -> Policy:
    raise AssertionError("looking up the active version routes nothing")


async def replay(
    settings: Settings, policy: Policy, window: Window, each: Callable[[Replayed], None] | None
) -> ReplaySummary:
    application = bootstrap(settings, policy=policy)
    # A replay's objects live as long as it does (the accounts' index, the state it carries) or
    # are freed the moment their lead is done (a decision holds no cycle): the cyclic collector
    # would only walk the growing state again and again, a fifth of a long replay's time.
    gc.disable()
    try:
        return await replay_window(application.uow, policy, window, each=each)
    except SQLAlchemyError as exc:
        raise CliError(f"cannot replay: the database failed: {first_line(exc)}") from None
    finally:
        gc.enable()
        await application.close()


async def report(settings: Settings, policy: Policy, window: Window, *, by: str) -> Report:
    """The routing report of `window`, the stories brought up to date first."""
    application = bootstrap(settings, policy=policy)
    try:
        await refresh_report(application.uow)
        return await routing_report(application.uow, window, by=by)
    except (SQLAlchemyError, OSError) as exc:
        raise CliError(f"cannot read the report: the database failed: {first_line(exc)}") from None
    finally:
        await application.close()


async def lead_story(settings: Settings, policy: Policy, reference: str) -> LeadStory | None:
    """A stored lead's story, as `/routing why` tells it to a manager; None for no such lead."""
    application = bootstrap(settings, policy=policy)
    try:
        return await application.reader.story(reference, None)
    except (SQLAlchemyError, OSError) as exc:
        raise CliError(f"cannot read the lead: the database failed: {first_line(exc)}") from None
    finally:
        await application.close()
