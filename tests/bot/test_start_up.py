"""Starting `leadrouter serve` as a new user does: each mistake in the settings, the address or
the policy is one sentence, exit code 1, and nothing changed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings
from tests.bot.conftest import EXAMPLES
from tests.bot.webhook import SECRET, free_port, row_counts

LEADROUTER = Path(sys.executable).parent / "leadrouter"
runner = CliRunner()


def serve(tmp_path: Path, **env: str) -> tuple[int, str]:
    """`leadrouter serve` as a real process in an empty folder; its exit code and output."""
    done = subprocess.run(
        [str(LEADROUTER), "serve"],
        env={
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
            "LEADROUTER_WEBHOOK_SECRET": SECRET,
            "LEADROUTER_RULES": str(EXAMPLES / "routing.yml"),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_a_port_already_in_use_is_one_sentence_and_touches_no_database(
    tmp_path: Path, taken_port: int
) -> None:
    code, output = serve(tmp_path, PORT=str(taken_port))

    assert code == 1
    assert output.strip() == (
        f"error: cannot listen on 127.0.0.1:{taken_port}: another program listens there "
        "already; stop it, or set PORT to a free port"
    )
    assert not (tmp_path / "leads.db").exists()


def test_a_host_that_is_not_an_address_of_this_machine_is_one_sentence(tmp_path: Path) -> None:
    port = free_port()

    code, output = serve(tmp_path, HOST="192.0.2.1", PORT=str(port))  # TEST-NET-1, never local

    assert code == 1
    assert output.strip() == (
        f"error: cannot listen on 192.0.2.1:{port}: 192.0.2.1 is not an address of this "
        "machine; set HOST to one of its addresses, or to 0.0.0.0 for all of them"
    )


@pytest.mark.parametrize("host", ["local host", "https://example.com", ""])
def test_a_host_that_is_not_an_address_or_a_name_is_a_settings_sentence(host: str) -> None:
    result = runner.invoke(app, ["serve"], env={"LEADROUTER_WEBHOOK_SECRET": SECRET, "HOST": host})

    assert result.exit_code == 1
    assert "HOST: must be an IP address or a host name, such as 0.0.0.0 or 127.0.0.1" in (
        result.stderr
    )


@pytest.mark.parametrize("port", ["abc", "3000.5", "0", "70000", " "])
def test_a_port_that_is_not_a_port_number_gets_our_sentence_not_pydantics(port: str) -> None:
    result = runner.invoke(app, ["serve"], env={"LEADROUTER_WEBHOOK_SECRET": SECRET, "PORT": port})

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: the settings have problems: PORT: must be a whole number from 1 to 65535, "
        "such as 3000"
    )


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("sqlite:///leads.db", "sqlite+aiosqlite:///leads.db"),
        (
            "sqlite:////var/lib/leadrouter/leads.db",
            "sqlite+aiosqlite:////var/lib/leadrouter/leads.db",
        ),
        ("sqlite+pysqlite:///leads.db", "sqlite+aiosqlite:///leads.db"),
        ("postgresql://app@db/leads", "postgresql+asyncpg://app@db/leads"),
        ("postgres://app@db/leads", "postgresql+asyncpg://app@db/leads"),
        ("postgresql+psycopg2://app@db/leads", "postgresql+asyncpg://app@db/leads"),
        ("postgresql+psycopg://app@db:5433/leads", "postgresql+asyncpg://app@db:5433/leads"),
    ],
)
def test_a_database_url_without_the_async_driver_is_given_it(given: str, used: str) -> None:
    assert Settings(database_url=given).database_url == used


def test_db_upgrade_takes_a_plain_sqlite_url(tmp_path: Path) -> None:
    database = tmp_path / "leads.db"

    result = runner.invoke(app, ["db", "upgrade"], env={"DATABASE_URL": f"sqlite:///{database}"})

    assert result.exit_code == 0, result.output
    assert row_counts(database)["leads"] == 0


def test_a_database_url_of_another_database_is_one_sentence_naming_it_once() -> None:
    result = runner.invoke(
        app,
        ["serve"],
        env={"LEADROUTER_WEBHOOK_SECRET": SECRET, "DATABASE_URL": "mysql://app@db/leads"},
    )

    assert result.exit_code == 1
    assert result.stderr.count("DATABASE_URL") == 1
    assert result.stderr.strip() == (
        "error: the settings have problems: DATABASE_URL: must be a SQLite or PostgreSQL URL, "
        "such as sqlite:///leads.db or postgresql://user@host/dbname"
    )


# The policy


def test_serve_from_a_folder_without_a_policy_says_how_to_point_at_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = runner.invoke(
        app, ["serve"], env={"LEADROUTER_WEBHOOK_SECRET": SECRET, "LEADROUTER_RULES": None}
    )

    assert result.exit_code == 1
    said = result.stderr
    assert "routing.yml: no such policy file" in said
    assert "Set LEADROUTER_RULES to your policy file" in said
    assert f"cp {EXAMPLES / 'routing.yml'} routing.yml" in said
    assert "--rules" not in said  # serve has no such option
    assert not (tmp_path / "leadrouter.db").exists()


def test_check_and_simulate_without_a_policy_say_how_to_point_at_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = runner.invoke(app, ["check"], env={"LEADROUTER_RULES": None})

    assert result.exit_code == 1
    assert "routing.yml: no such policy file" in result.stderr
    assert "LEADROUTER_RULES" in result.stderr and "--rules" not in result.stderr
    assert "examples" in result.stderr
    simulate = runner.invoke(
        app, ["simulate", str(tmp_path / "x.csv")], env={"LEADROUTER_RULES": None}
    )
    assert "(or pass --rules)" in simulate.stderr


@pytest.mark.parametrize("text", ["", "\n\n", "# reps come later\n", "{}\n"])
def test_an_empty_policy_does_not_pass_check(tmp_path: Path, text: str) -> None:
    policy = tmp_path / "routing.yml"
    policy.write_text(text)

    result = runner.invoke(app, ["check", str(policy)])

    assert result.exit_code == 1
    assert f"{policy}: the policy is empty" in result.stderr
    assert "ok:" not in result.stdout
