"""A file of leads or accounts with nothing to read in it (a header alone, Excel's empty rows, an
empty JSON array) through every command that reads one: a sentence, exit 1, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.bot.conftest import EXAMPLES

runner = CliRunner()
POLICY = str(EXAMPLES / "routing.yml")
LEADS = "id,email,company,country\r\nE-1,cto@bigco.com,BigCo,US\r\n"


def simulate(leads: Path, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["simulate", str(leads), "--rules", POLICY, "--json", *extra])
    return result.exit_code, result.stdout, result.stderr


def run_import(file: Path, database: Path) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        ["import", str(file), "--rules", POLICY],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )
    return result.exit_code, result.stdout, result.stderr


# A header and nothing else, as people save them: bare, with blank lines after it, and as Excel
# exports a sheet whose rows were cleared (a BOM, semicolons, CRLF, each row a run of empty cells).
HEADER_ONLY = {
    "bare": b"id,email,company\r\n",
    "blank lines": b"id,email,company\n\n\n",
    "excel's empty rows": "\ufeffid;email;company;;\r\n;;;;\r\n ; ;;;\r\n;;;;\r\n".encode(),
}


@pytest.mark.parametrize("content", HEADER_ONLY.values(), ids=HEADER_ONLY)
def test_import_of_a_file_with_a_header_and_no_rows_exits_1_and_makes_no_database(
    tmp_path: Path, content: bytes
) -> None:
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    leads.write_bytes(content)

    code, stdout, stderr = run_import(leads, database)

    assert code == 1
    assert stdout == ""
    assert stderr.startswith(f"error: {leads}: has a header but no rows")
    assert not database.exists()


@pytest.mark.parametrize("content", HEADER_ONLY.values(), ids=HEADER_ONLY)
def test_simulate_of_a_file_with_a_header_and_no_rows_is_a_sentence_not_an_empty_table(
    tmp_path: Path, content: bytes
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_bytes(content)

    code, stdout, stderr = simulate(leads)

    assert code == 1
    assert stdout == ""
    assert stderr.startswith(f"error: {leads}: has a header but no rows")


def test_accounts_import_of_a_file_with_a_header_and_no_rows_changes_nothing(
    tmp_path: Path,
) -> None:
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_bytes("\ufeffid;name;domain;owner;\r\n;;;;\r\n".encode())

    result = runner.invoke(
        app,
        ["accounts", "import", str(accounts), "--rules", POLICY],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {accounts}: has a header but no rows")
    assert not database.exists()


def test_simulate_with_an_accounts_file_of_a_header_alone_is_a_sentence(tmp_path: Path) -> None:
    leads, accounts = tmp_path / "leads.csv", tmp_path / "accounts.csv"
    leads.write_text(LEADS)
    accounts.write_text("id,name,domain,owner\n")

    code, stdout, stderr = simulate(leads, "--accounts", str(accounts))

    assert code == 1
    assert stdout == ""
    assert stderr.startswith(f"error: {accounts}: has a header but no rows")


@pytest.mark.parametrize(
    ("name", "content"),
    [("leads.json", "[]\n"), ("leads.json", '{"leads": []}'), ("leads.jsonl", "\n\n")],
)
def test_import_of_a_json_file_without_a_lead_exits_1_and_makes_no_database(
    tmp_path: Path, name: str, content: str
) -> None:
    leads, database = tmp_path / name, tmp_path / "leads.db"
    leads.write_text(content)

    code, stdout, stderr = run_import(leads, database)

    assert code == 1
    assert stdout == ""
    assert stderr.startswith(f"error: {leads}: holds no lead")
    assert not database.exists()


def test_check_leads_and_accounts_audit_of_a_header_alone_are_sentences(tmp_path: Path) -> None:
    leads, accounts = tmp_path / "leads.csv", tmp_path / "accounts.csv"
    leads.write_text("id,email,company\n,,\n")
    accounts.write_text("id,name,domain,owner\n,,,\n")

    checked = runner.invoke(app, ["check", POLICY, "--leads", str(leads)])
    audited = runner.invoke(app, ["accounts", "audit", str(accounts)])

    assert checked.exit_code == audited.exit_code == 1
    assert checked.stderr.startswith(f"error: {leads}: has a header but no rows")
    assert audited.stderr.startswith(f"error: {accounts}: has a header but no rows")
