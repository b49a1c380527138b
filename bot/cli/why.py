"""`leadrouter why LEAD`: a stored lead's full explanation and what happened to it since, read
from the database as `/routing why` reads it for a manager in Slack; it writes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.text import Text

from bot.cli.common import CliError, RulesOption, app, friendly, out
from routing.policy_version import UNVERSIONED


@app.command()
@friendly
def why(
    lead: Annotated[str, typer.Argument(help="The lead's id, e-mail or CRM id.")],
    rules: RulesOption = None,
) -> None:
    """Why a stored lead went where it did: the decision's full explanation, the policy version
    that made it, and what happened since (claims, rejects, reassignments, touches, outcomes).

    Reads DATABASE_URL (and LEADROUTER_RULES), as `serve` does, and writes nothing. To see why
    leads in a file would go where they go, use `simulate --explain`."""
    from bot.cli import running
    from bot.cli.environment import settings as load_settings
    from bot.cli.which_policy import policy_or_active

    settings = load_settings(rules=rules)
    policy = policy_or_active(rules, settings, reads_only=True)
    running.migrated(settings.database_url)
    story = asyncio.run(running.lead_story(settings, policy, lead))
    if story is None:
        raise CliError(f"no lead {lead} in the database: give a lead's id, e-mail or CRM id")
    out.print(Text(story.explanation))
    decided_by = story.decided_by
    if decided_by is not None:
        how = ""
        if decided_by.activated_at is not None:
            how = f", activated {_moment(decided_by.activated_at)}"
            if decided_by.activated_by:
                how += f" by {decided_by.activated_by}"
        elif decided_by.version != UNVERSIONED:
            # Not in `policy history`, which lists activations: say where its text is.
            how = (
                ", never activated (as `import` keeps the version of the file it routes by): "
                f"`leadrouter policy show {decided_by.version}` prints it"
            )
        out.print(Text(f"Policy version {decided_by.version}{how}"))
    if story.events:
        out.print("Since then:")
        for event in story.events:
            out.print(Text(f"  {_moment(event.at)}: {event.what}"))
    for note in story.notes:
        out.print(Text(note))


def _moment(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
