"""The policy's versions in the database (DATABASE_URL): `policy history`, `policy show VERSION`,
`policy activate FILE`.

What they run is in `bot.cli.versions_running`, imported once one of them runs (it brings the
database's modules, which `check` and `simulate` do without).
"""

from __future__ import annotations

import asyncio
import getpass
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from bot.cli.common import CliError, err, friendly, out, policy_app
from bot.policy_file import read_policy_text
from routing.policy import PolicyError
from routing.policy_version import short_version, version_of

HISTORY_SHOWN = 20


@policy_app.command("history")
@friendly
def history(
    limit: Annotated[
        int, typer.Option(min=1, help="How many activations to list, newest first.")
    ] = HISTORY_SHOWN,
) -> None:
    """The policy versions activated, newest first: version, when (UTC), how and by whom, and the
    file it was read from. `*` marks the active one, which every server serves."""
    from bot.cli import versions_running
    from bot.cli.environment import settings as load_settings

    activations = asyncio.run(versions_running.history(load_settings(), limit=limit))
    if not activations:
        out.print(
            "No policy version has been activated yet: `leadrouter serve` activates its file "
            "when it starts, and `leadrouter policy activate FILE` at any time."
        )
        return
    for activation in activations:
        mark = "*" if activation.active else " "
        who = f"by {activation.by} " if activation.by else ""
        out.print(
            Text(
                f"{mark} {short_version(activation.version)}  "
                f"{activation.at:%Y-%m-%d %H:%M:%S} UTC  "
                f"{activation.how} {who}· {activation.source}"
            )
        )


@policy_app.command("show")
@friendly
def show(
    version: Annotated[
        str, typer.Argument(help="The version: the start of its hash, as `history` prints it.")
    ],
) -> None:
    """Print a stored policy version's text exactly as it was read, on stdout (where it came
    from and when it was active go to stderr). To go back to it: `leadrouter policy show
    VERSION > routing.yml`, then `leadrouter policy activate routing.yml`."""
    from bot.cli import versions_running
    from bot.cli.environment import settings as load_settings

    stored = asyncio.run(versions_running.show(load_settings(), version))
    active = " (active)" if any(a.active for a in stored.activations) else ""
    err.print(Text(f"version {stored.version}{active}, read from {stored.source}"))
    for activation in stored.activations:
        who = f" by {activation.by}" if activation.by else ""
        err.print(Text(f"  activated {activation.at:%Y-%m-%d %H:%M:%S} UTC: {activation.how}{who}"))
    if not stored.activations:
        err.print("  never activated")
    typer.echo(stored.text, nl=False)


@policy_app.command("activate")
@friendly
def activate(
    file: Annotated[Path, typer.Argument(help="The policy file to serve.")],
    by: Annotated[
        str | None,
        typer.Option(help="Who activates it, for the history (default: your user name)."),
    ] = None,
) -> None:
    """Check a policy file and make it the version every running server serves: each switches
    to it within LEADROUTER_POLICY_CHECK_SECONDS, with no restart. A file that fails `leadrouter
    check` is refused with every problem, and nothing changes. Reads DATABASE_URL."""
    from bot.cli import versions_running
    from bot.cli.environment import settings as load_settings

    settings = load_settings()
    try:
        activated, leaving = asyncio.run(
            versions_running.activate(settings, file, by=by or _user())
        )
    except PolicyError as exc:
        errors = sum(1 for p in exc.problems if p.severity == "error")
        err.print(Text(exc.report()))
        raise CliError(
            f"{file}: {errors} error{'s' if errors != 1 else ''}: not activated; the active "
            "version goes on serving"
        ) from None
    version = short_version(activated.policy.version)
    if not activated.activated:
        out.print(Text(f"{file}: version {version} is the active version already"))
        return
    was = f"was {short_version(activated.previous)}" if activated.previous else "none was before"
    out.print(
        Text(
            f"{file}: version {version} activated ({was}); running servers switch to it within "
            f"{settings.policy_check_seconds:g} s"
        )
    )
    for rep in leaving:
        err.print(Text(f"note: {rep.sentence()}", style="yellow"))
    if _file_version(settings.rules) not in (None, activated.policy.version):
        err.print(
            Text(
                f"note: {settings.rules} (LEADROUTER_RULES) holds another version, which a "
                f"server starting on it activates again: copy {file} there to keep this one.",
                style="yellow",
            )
        )


def _file_version(path: Path) -> str | None:
    try:
        return version_of(read_policy_text(path))
    except PolicyError:
        return None


def _user() -> str:
    """Who runs the command, by their login (in a container without one, $USER or "unknown")."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"
