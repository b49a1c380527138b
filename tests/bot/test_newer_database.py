"""Rolling back: an older leadrouter started on a database a newer one migrated says so, in a
sentence that says what to do, and changes nothing."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from storage import migrate
from tests.bot.conftest import EXAMPLES
from tests.bot.test_start_up import serve

runner = CliRunner()


def migrated_by_a_newer_leadrouter(database: Path) -> None:
    migrate.upgrade(f"sqlite:///{database}")
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0999'")
        connection.commit()


def revision_of(database: Path) -> str:
    with closing(sqlite3.connect(database)) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(revision)


def expected() -> str:
    return (
        f"error: the database is at revision 0999, which this leadrouter does not know (its "
        f"newest is {migrate.head()}): a newer leadrouter migrated it. Run that one again, or "
        "restore the backup taken before the upgrade (docs/operations.md, Backups)"
    )


def test_db_upgrade_on_a_database_a_newer_leadrouter_migrated_says_so(tmp_path: Path) -> None:
    database = tmp_path / "leads.db"
    migrated_by_a_newer_leadrouter(database)

    result = runner.invoke(app, ["db", "upgrade"], env={"DATABASE_URL": f"sqlite:///{database}"})

    assert result.exit_code == 1
    assert result.stderr.strip() == expected()
    assert revision_of(database) == "0999"


def test_serve_on_a_database_a_newer_leadrouter_migrated_says_so(tmp_path: Path) -> None:
    database = tmp_path / "leads.db"
    migrated_by_a_newer_leadrouter(database)

    code, output = serve(tmp_path, DATABASE_URL=f"sqlite:///{database}", LOG_LEVEL="WARNING")

    assert code == 1
    assert output.strip() == expected()
    assert revision_of(database) == "0999"


def test_a_command_that_only_reads_a_database_a_newer_leadrouter_migrated_says_so(
    tmp_path: Path,
) -> None:
    database = tmp_path / "leads.db"
    migrated_by_a_newer_leadrouter(database)

    env = {
        "DATABASE_URL": f"sqlite:///{database}",
        "LEADROUTER_RULES": str(EXAMPLES / "routing.yml"),
    }
    result = runner.invoke(app, ["report"], env=env)

    assert result.exit_code == 1
    assert result.stderr.strip() == expected()
