"""`leadrouter crm retry`: the CRM items given up, tried again once what failed them is fixed
(`crm check`, beside the other checks, says what to fix)."""

from __future__ import annotations

import asyncio

from bot.cli.common import CliError, RulesOption, crm_app, first_line, friendly, out


@crm_app.command("retry")
@friendly
def crm_retry(rules: RulesOption = None) -> None:
    """Queue again every CRM owner write-back (and HubSpot contact to fetch) that was given up,
    for `serve` to carry out: run it once an expired token, a missing permission or scope, or
    a rep with no CRM user is fixed (`leadrouter crm check` says). A write for a lead that has
    since gone to another rep is skipped. Reads DATABASE_URL, as `serve` does."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.bootstrap import bootstrap
    from bot.cli import running
    from bot.cli.environment import settings as load_settings
    from bot.cli.which_policy import policy_or_active
    from bot.service.crm import retry_given_up

    settings = load_settings(rules=rules)
    policy = policy_or_active(rules, settings)
    running.migrated(settings.database_url)

    async def run() -> int:
        application = bootstrap(settings, policy=policy)
        try:
            return await retry_given_up(application.uow)
        except (SQLAlchemyError, OSError) as exc:
            raise CliError(f"the database failed: {first_line(exc)}") from None
        finally:
            await application.close()

    queued = asyncio.run(run())
    if queued == 0:
        out.print("nothing given up to try again")
        return
    out.print(
        f"{queued} CRM item{'s' if queued != 1 else ''} given up "
        f"{'are' if queued != 1 else 'is'} queued again: `leadrouter serve` carries "
        f"{'them' if queued != 1 else 'it'} out"
    )
