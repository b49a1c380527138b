"""A `.env` with a line python-dotenv cannot read: the line is skipped, the rest read, and the
operator told which file and which line, with the setting's name where the line has one, never
the value (it may be a secret). python-dotenv's own warning names neither file nor problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.env_file import problems
from bot.settings import SettingsError, load_settings
from tests.bot.conftest import EXAMPLES
from tests.bot.test_serve import Servers, terminate, wait_until_ready
from tests.bot.webhook import SECRET

runner = CliRunner()
TOKEN = "xoxb-1-do-not-print-me"
DOTENV = f"""\
# a comment, and a blank line, are fine

SLACK_BOT_TOKEN="{TOKEN}
LOG_LEVEL=DEBUG
this is not a setting
export =x
SLACK_SIGNING_SECRET='{TOKEN}' was pasted here
"""


def test_each_line_that_cannot_be_read_is_named_by_file_line_and_setting_never_its_value(
    tmp_path: Path,
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(DOTENV)
    found = problems(dotenv)
    assert found == [
        f"{dotenv}:3: SLACK_BOT_TOKEN is not read: its value opens a quote that is never "
        "closed (close it, or remove the quote)",
        f"{dotenv}:5: a line is not read: it is not NAME=value (a comment begins with #)",
        f"{dotenv}:6: a line is not read: there is no setting name before its = (letters, "
        "digits and _, not beginning with a digit)",
        f"{dotenv}:7: SLACK_SIGNING_SECRET is not read: something follows its value's closing "
        "quote (a comment there needs a space and # before it)",
    ]
    assert not any(TOKEN in sentence or "pasted" in sentence for sentence in found)


def test_a_file_that_reads_whole_or_is_not_there_has_no_problem(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# comment\nLOG_LEVEL=DEBUG\nexport PORT=3001\nEMPTY=\n")
    assert problems(tmp_path / ".env") == []
    assert problems(tmp_path / "nowhere" / ".env") == []


def test_the_settings_still_load_the_lines_that_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text(DOTENV)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    settings = load_settings(LEADROUTER_WEBHOOK_SECRET=SECRET)
    assert settings.log_level == "DEBUG"  # the line after the broken one
    assert settings.slack_bot_token is None
    # python-dotenv's own warning, naming neither file nor problem, is not written.
    assert "python-dotenv" not in capsys.readouterr().err


def test_a_command_says_each_unread_line_once_on_stderr_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mine.yml").write_text((EXAMPLES / "routing.yml").read_text())
    # `check` reads .env twice: for the policy file, then for the settings.
    (tmp_path / ".env").write_text(
        f"LEADROUTER_RULES=mine.yml\nnot a setting\nSLACK_BOT_TOKEN='{TOKEN}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEADROUTER_RULES", raising=False)

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0, result.output
    dotenv = tmp_path / ".env"
    said = [line for line in result.stderr.splitlines() if str(dotenv) in line]
    assert said == [
        f"{dotenv}:2: a line is not read: it is not NAME=value (a comment begins with #)",
        f"{dotenv}:3: SLACK_BOT_TOKEN is not read: its value opens a quote that is never "
        "closed (close it, or remove the quote)",
    ]
    assert "python-dotenv" not in result.output
    assert TOKEN not in result.output


def test_a_command_says_a_misspelt_setting_in_dotenv_even_without_a_prefix_of_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "routing.yml").write_text((EXAMPLES / "routing.yml").read_text())
    (tmp_path / ".env").write_text("DATABSE_URL=sqlite:///x.db\nPOSTGRES_PASSWORD=compose\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEADROUTER_RULES", raising=False)

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert (
        "DATABSE_URL (in .env) is not a setting leadrouter reads: did you mean DATABASE_URL?"
        in said
    )
    assert "POSTGRES_PASSWORD" not in said  # another program's, and like none of ours
    assert said.count("DATABSE_URL") == 1


async def test_serve_logs_each_unread_line_as_a_warning_and_serves(
    servers: Servers, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"SLACK_BOT_TOKEN='{TOKEN}\n")
    server = servers.start(tmp_path / "leads.db", extra_env={"LOG_FORMAT": "json"})
    await wait_until_ready(server)
    assert terminate(server) == 0, server.output()
    lines = [json.loads(line) for line in server.output().splitlines()]
    warnings = [line["message"] for line in lines if line["level"] == "WARNING"]
    assert f"{tmp_path / '.env'}:1: SLACK_BOT_TOKEN is not read" in " ".join(warnings)
    assert TOKEN not in server.output()


def test_a_dotenv_that_is_not_utf8_is_a_sentence_naming_the_byte_and_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_bytes("LOG_LEVEL=DEBUG\nNAME=Müller\n".encode("latin-1"))
    monkeypatch.chdir(tmp_path)
    said = f"{tmp_path / '.env'}: is not utf-8 text (byte 0xfc on line 2): save it as UTF-8"

    with pytest.raises(SettingsError) as raised:
        load_settings(LEADROUTER_WEBHOOK_SECRET=SECRET)
    assert str(raised.value) == said

    for command in (["check"], ["db", "upgrade"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1
        assert said in result.stderr
        assert "Traceback" not in result.output
