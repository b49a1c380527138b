"""`leadrouter --version`, `-h`, and help that reads as sentences at any terminal width."""

from __future__ import annotations

import inspect
from importlib.metadata import version
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()


def commands() -> list[tuple[list[str], Any]]:
    """Every command and group, with the words that run it."""
    found: list[tuple[list[str], Any]] = []

    def walk(path: list[str], command: Any) -> None:
        found.append((path, command))
        if hasattr(command, "commands"):  # a group
            for name, sub in command.commands.items():
                walk([*path, name], sub)

    walk([], typer.main.get_command(app))
    return found


def test_version_prints_the_installed_version() -> None:
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"leadrouter {version('leadrouter')}"


@pytest.mark.parametrize("words", [[], ["serve"], ["accounts", "import"]], ids=" ".join)
def test_dash_h_is_help(words: list[str]) -> None:
    result = runner.invoke(app, [*words, "-h"])

    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert result.stdout == runner.invoke(app, [*words, "--help"]).stdout


@pytest.mark.parametrize(
    ("words", "command"),
    [
        pytest.param(words, command, id=" ".join(words) or "leadrouter")
        for words, command in commands()
    ],
)
def test_each_paragraph_of_help_is_one_line_on_a_wide_terminal(
    words: list[str], command: Any
) -> None:
    result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "400"})

    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    for paragraph in inspect.cleandoc(command.help or "").split("\n\n"):
        sentence = " ".join(paragraph.replace("`", "").split())
        assert sentence in lines, f"{sentence!r} is broken over lines in:\n{result.stdout}"
