""".env, the file settings are read from besides the environment: its lines python-dotenv
cannot read, said in our words.

pydantic-settings reads it with python-dotenv, which skips such a line with a warning of its
own, "python-dotenv could not parse statement starting at line 3", naming neither the file nor
what is wrong. While settings are read (`quiet`) that warning is held back; `problems` finds
the same lines, by reading the file the same way, and words each with the file, the line, the
setting's name where the line has one, and what is wrong: never the value, which may be a
secret.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic_settings import BaseSettings, DotEnvSettingsSource, SettingsConfigDict

DOTENV = Path(".env")

# python-dotenv's logger, and the start of the warning it gives for a line it skips.
_DOTENV_LOGGER = "dotenv.main"
_SKIPPED = "python-dotenv could not parse statement"
_EXPORT = re.compile(r"\s*export\s+")
_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)", re.DOTALL)


class NotText(Exception):
    """The file cannot be read as text at all; the message names the file, the byte and its
    line."""


@contextmanager
def _as_text(path: Path) -> Iterator[None]:
    try:
        yield
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise NotText(
            f"{path.absolute()}: is not {exc.encoding} text (byte 0x{exc.object[exc.start]:02x} "
            f"on line {line}): save it as UTF-8"
        ) from None


class _Skipped(logging.Filter):
    """Holds back python-dotenv's warning about a line it skips, keeping the line's number."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(_SKIPPED):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        if args and isinstance(args[0], int):
            self.lines.append(args[0])
        return False


@contextmanager
def _skipped() -> Iterator[_Skipped]:
    logger = logging.getLogger(_DOTENV_LOGGER)
    held = _Skipped()
    logger.addFilter(held)
    try:
        yield held
    finally:
        logger.removeFilter(held)


@contextmanager
def quiet() -> Iterator[None]:
    """While settings are read: python-dotenv's warning about a line it skips is not written
    (`problems` says it better), and a file that is not text is NotText, not a traceback."""
    with _skipped(), _as_text(DOTENV):
        yield


class _Anything(BaseSettings):
    """No setting of its own: .env read whole, as `Settings` reads it."""

    model_config = SettingsConfigDict(extra="ignore")


def problems(path: Path = DOTENV) -> list[str]:
    """A sentence for each line of `path` python-dotenv cannot read, which the settings go
    without: "/srv/.env:3: SLACK_BOT_TOKEN is not read: its value opens a quote that is never
    closed (...)". None for a file that reads whole, or is not there; NotText for one that is
    not text."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    with _skipped() as held, _as_text(path):
        DotEnvSettingsSource(_Anything, env_file=path)()
    lines = text.splitlines()
    where = path.absolute()
    found = []
    for start in held.lines:
        # python-dotenv's statement begins with the blank lines before it.
        number = start
        while number < len(lines) and not lines[number - 1].strip():
            number += 1
        line = lines[number - 1] if number <= len(lines) else ""
        found.append(f"{where}:{number}: {_unread(line)}")
    return found


def _unread(line: str) -> str:
    """What is wrong with a line python-dotenv skipped, naming its setting, never its value."""
    exported = _EXPORT.match(line)
    named = _NAME.fullmatch(line[exported.end() :] if exported else line)
    if named is None:
        if "=" in line:
            return (
                "a line is not read: there is no setting name before its = (letters, digits "
                "and _, not beginning with a digit)"
            )
        return "a line is not read: it is not NAME=value (a comment begins with #)"
    name, value = named.group(1), named.group(2).strip()
    quote = value[:1]
    if quote in ("'", '"'):
        if quote not in value[1:]:
            return (
                f"{name} is not read: its value opens a quote that is never closed (close it, "
                "or remove the quote)"
            )
        return (
            f"{name} is not read: something follows its value's closing quote (a comment "
            "there needs a space and # before it)"
        )
    return f"{name} is not read: it cannot be read as NAME=value"
