"""The policy of a command that reads or writes the database's leads (`why`, `report`, `replay`,
`import`, `accounts import`, `crm retry`, `experiment list`) or dry-runs a file (`simulate`): the
policy file, else, when none is where the command looks and none was named with `--rules`, the
version active in the database (`leadrouter policy history` marks it), said in one line on stderr.

The commands that check what `serve` starts on (`check`, `crm check`, `slack check`, `jobs`) read
the file alone, as `serve` does: it is the file they are asked about. When it is missing and the
database holds an active version, they say how to write it back (`write_back`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from bot.cli.common import (
    CliError,
    PolicyProblems,
    err,
    put_policy,
    read_policy,
    say_env_file_problems,
    where_policy,
)
from bot.env_file import NotText
from bot.policy_file import default_policy_path
from routing.policy import Policy
from routing.policy_version import short_version

if TYPE_CHECKING:
    from bot.settings import Settings


def policy_or_active(
    rules: Path | None, settings: Settings | None = None, *, reads_only: bool = False
) -> Policy:
    """The policy file (`rules`, else LEADROUTER_RULES, else routing.yml); when there is no file
    there and `rules` is None, the version active in the database (DATABASE_URL from `settings`,
    else read from the environment). A CliError saying both are missing when neither is there.

    `reads_only`: the command changes nothing by the policy, nor is it about the file (`why`,
    `report`), so a file that is there but fails its checks (an admin halfway through an edit)
    is passed over for the active version too, with a note; the others refuse it with its
    problems."""
    path = rules if rules is not None else (settings.rules if settings else None)
    if path is None:
        say_env_file_problems()  # where LEADROUTER_RULES is looked for
    file = path or default_policy_path()
    if rules is not None:
        return read_policy(path)  # a file named with --rules is the one wanted, there or not
    if file.exists():
        try:
            return read_policy(path)
        except PolicyProblems as problems:
            instead = _active(settings) if reads_only else None
            if instead is None:  # its problems are what to say
                raise problems from None
            _say_instead(instead, f"{file} has problems (`leadrouter check` shows them)")
            return instead
    policy = _active(settings)
    if policy is None:
        advice = put_policy(file, True) if file != Path("routing.yml") else where_policy(True)
        raise CliError(
            f"{file}: no such policy file, and no policy version is active in the database "
            f"(DATABASE_URL) to use instead. {advice}"
        )
    _say_instead(policy, f"no policy file at {file}")
    return policy  # its warnings were said when it was activated


def _say_instead(policy: Policy, why: str) -> None:
    """The one line on stderr that says the active version stands in for the file, and why."""
    err.print(
        Text(
            f"note: {why}: using version {short_version(policy.version)}, the one active in the "
            f"database (activated from {policy.source})",
            style="yellow",
        )
    )


def write_back(file: Path) -> str | None:
    """For the policy file a command looks for (LEADROUTER_RULES, else routing.yml) when it is
    not there and the database holds an active version: what to do instead of starting from the
    example, which would have an admin replace the policy the servers serve. None otherwise: a
    file named for another purpose (`replay --rules NEW.yml`) is not where the version belongs."""
    try:
        looked_for = default_policy_path()
    except NotText:  # .env cannot be read: said where the settings are read
        return None
    if Path(file) != looked_for:
        return None
    policy = _active(None)
    if policy is None:
        return None
    version = short_version(policy.version)
    return (
        f"The database's active version is {version}: `leadrouter policy show {version} > "
        f"{file}` writes it back there (or point LEADROUTER_RULES at your policy file)"
    )


def _active(settings: Settings | None) -> Policy | None:
    from bot.cli import running
    from bot.cli.environment import settings as load_settings

    if settings is None:
        try:
            settings = load_settings()
        except CliError:  # the file's absence is what to say
            return None
    return running.active_policy(settings)
