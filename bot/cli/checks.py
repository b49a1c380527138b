"""What `serve` would run and reach, checked without running it: jobs, crm check, slack check."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

from bot.cli.common import (
    CliError,
    RulesOption,
    app,
    crm_app,
    first_line,
    friendly,
    out,
    read_policy,
    slack_app,
)

if TYPE_CHECKING:
    from bot.settings import Settings
    from routing.policy import Policy
    from storage.repository import Unfinished


@app.command()
@friendly
def jobs(rules: RulesOption = None) -> None:
    """List the scheduled jobs `leadrouter serve` runs, each with its next run."""
    from bot.bootstrap import crm_links
    from bot.cli.environment import settings as load_settings
    from bot.jobs import declare_jobs, next_runs

    policy = read_policy(rules)
    settings = load_settings(rules=rules)
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
    """Check each configured CRM's credentials, what the policy asks of it (permissions,
    scopes, write included where the CRM tells them, fields) and which reps map to a CRM
    owner. Writes nothing. Exit 1 while there is a problem, each printed with its fix."""
    from bot.bootstrap import crm_links
    from bot.cli.environment import settings as load_settings
    from bot.crm.sync import CrmCheck, check
    from bot.crm_links import crm_name

    policy = read_policy(rules)
    settings = load_settings(rules=rules)
    links = crm_links(settings, lambda: policy)
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
    checked = asyncio.run(run())
    unfinished, unread = _unfinished_crm_items(settings, policy)
    for result in checked:
        name = crm_name(result.system)
        if result.mapping is None:
            problems += 1
            out.print(f"{name}: cannot connect: {result.error}")
            continue
        out.print(f"{name}: {result.connected}")
        for verified in result.verified:
            out.print(Text(f"  verified: {verified}"))
        for note in result.notes:
            out.print(Text(f"  note: {note}"))
        for problem in result.problems:
            problems += 1
            out.print(Text(f"  problem: {problem}"))
        for rep_id, owner_id in result.mapping.owners.items():
            how = "set in the policy" if rep_id in result.mapping.explicit else "by email"
            out.print(f"  {rep_id} -> {owner_id} ({how})")
        for why in result.mapping.missing.values():
            problems += 1
            out.print(f"  missing: {why}")
        for line in _unfinished_lines(result.system, unfinished):
            out.print(Text(f"  {line}"))
    if unread is not None:
        out.print(Text(f"note: CRM items given up or failing are not counted: {unread}"))
    if problems:
        raise CliError(f"{problems} problem(s) to fix")


def _unfinished_crm_items(
    settings: Settings, policy: Policy
) -> tuple[list[Unfinished], str | None]:
    """The CRM items given up or failing in the database `serve` uses (read, never migrated
    nor made); else why it could not be read."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.bootstrap import bootstrap
    from bot.cli import running
    from bot.service.crm import unfinished_crm_items

    try:
        running.migrated(settings.database_url)
    except CliError as exc:
        return [], str(exc)

    async def read() -> list[Unfinished]:
        application = bootstrap(settings, policy=policy)
        try:
            return await unfinished_crm_items(application.uow)
        finally:
            await application.close()

    try:
        return asyncio.run(read()), None
    except (SQLAlchemyError, OSError) as exc:
        return [], f"cannot read the database: {first_line(exc)}"


def _unfinished_lines(system: str, unfinished: list[Unfinished]) -> list[str]:
    """What `serve` has given up or keeps failing at with this CRM, with the newest error:
    not a problem of the setup (a record deleted in the CRM stays given up), so not counted."""
    from bot.service.kinds import OWNER_WRITE_KINDS, OutboxKind

    what: dict[str, tuple[str, str]] = {
        OWNER_WRITE_KINDS[system]: ("owner write-back", "owner write-backs")
    }
    if system == "hubspot":
        what[OutboxKind.HUBSPOT_CONTACT] = ("contact HubSpot announced", "contacts it announced")
    lines: list[str] = []
    for item in unfinished:
        if item.kind not in what:
            continue
        one, many = what[item.kind]
        if item.given_up:
            lines.append(
                f"given up: {item.given_up} {one if item.given_up == 1 else many} (the latest: "
                f"{item.given_up_error}); once that is fixed, `leadrouter crm retry` queues "
                f"{'it' if item.given_up == 1 else 'them'} again"
            )
        if item.retrying:
            lines.append(
                f"failing: {item.retrying} {one if item.retrying == 1 else many}, tried again "
                f"(the latest: {item.retrying_error})"
            )
    return lines


@slack_app.command("check")
@friendly
def slack_check(rules: RulesOption = None) -> None:
    """Check the Slack app against the policy: the bot token, its scopes, the app-level token
    (Socket Mode), every rep's and manager's Slack id, and that the bot can post in every
    channel the policy names. Posts nothing. Exit 1 while there is a problem, each printed
    with its fix."""
    from bot.cli.environment import settings as load_settings
    from bot.slack.app import build_client
    from bot.slack.check import check_slack

    policy = read_policy(rules)
    settings = load_settings(rules=rules)
    if settings.slack_bot_token is None:
        raise CliError(
            "SLACK_BOT_TOKEN is not set: set it to the app's Bot User OAuth Token (xoxb-…), "
            "from its OAuth & Permissions page"
        )
    app_token = settings.slack_app_token
    result = asyncio.run(
        check_slack(
            build_client(settings),
            policy,
            app_token=app_token.get_secret_value() if app_token is not None else None,
        )
    )
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
