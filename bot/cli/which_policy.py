"""The policy of a command that reads or writes the database's leads (`why`, `report`, `replay`,
`import`, `accounts import`, `crm retry`) or dry-runs a file (`simulate`): the policy file, else,
when none is where the command looks and none was named with `--rules`, the version active in the
database (`leadrouter policy history` marks it), said in one line on stderr.

The commands that check what `serve` starts on (`check`, `crm check`, `slack check`, `jobs`) read
the file alone, as `serve` does: it is the file they are asked about.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from bot.cli.common import CliError, err, put_policy, read_policy, where_policy
from routing.policy import Policy
from routing.policy_version import short_version

if TYPE_CHECKING:
    from bot.settings import Settings


def policy_or_active(rules: Path | None, settings: Settings | None = None) -> Policy:
    """The policy file (`rules`, else LEADROUTER_RULES, else routing.yml); when there is no file
    there and `rules` is None, the version active in the database (DATABASE_URL from `settings`,
    else read from the environment). A CliError saying both are missing when neither is there."""
    from bot.policy_file import default_policy_path

    path = rules if rules is not None else (settings.rules if settings else None)
    try:
        return read_policy(path)
    except CliError:
        file = path or default_policy_path()
        if rules is not None or file.exists():
            raise  # a file named with --rules, or one there that fails its checks
        policy = _active(settings)
        if policy is None:
            advice = put_policy(file, True) if file != Path("routing.yml") else where_policy(True)
            raise CliError(
                f"{file}: no such policy file, and no policy version is active in the database "
                f"(DATABASE_URL) to use instead. {advice}"
            ) from None
    err.print(
        Text(
            f"note: no policy file at {file}: using version {short_version(policy.version)}, "
            f"the one active in the database (activated from {policy.source})",
            style="yellow",
        )
    )
    return policy  # its warnings were said when it was activated


def _active(settings: Settings | None) -> Policy | None:
    from bot.cli import running
    from bot.cli.environment import settings as load_settings

    if settings is None:
        try:
            settings = load_settings()
        except CliError:  # the file's absence is what to say
            return None
    return running.active_policy(settings)
