"""The settings from the environment (and .env), for the commands that need them; imported by
those commands only, as `bot.settings` brings pydantic-settings and SQLAlchemy's URL parsing."""

from __future__ import annotations

from pathlib import Path

from bot.cli.common import CliError, say_env_file_problems
from bot.settings import Settings, SettingsError, load_settings


def settings(*, rules: Path | None = None, logged: bool = False) -> Settings:
    """The settings from the environment (and .env), or a CliError saying what is wrong. A line
    of .env that cannot be read is said on stderr, and the settings go without it; with `logged`
    (`serve`, whose log may be JSON), the caller logs it once logging is set up."""
    if not logged:
        say_env_file_problems()
    try:
        return load_settings(rules=rules) if rules is not None else load_settings()
    except SettingsError as exc:
        raise CliError(f"the settings have problems: {exc}") from None
