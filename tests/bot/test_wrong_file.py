"""A file of accounts given where leads are read (`import`, `simulate`), or a file of leads given
to `accounts import`: told from its header and refused with the command it was meant for, before
anything is routed or written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.bot.conftest import EXAMPLES

runner = CliRunner()
POLICY = str(EXAMPLES / "routing.yml")

ACCOUNTS = {
    "ours": "id,name,domain,owner,tier\nA-1,Initech,initech.com,alice,Enterprise\n",
    # Salesforce's account export, its columns as the accounts reader takes them.
    "salesforce": (
        "Account ID,Account Name,Website,Phone,Billing Country,Account Owner\n"
        "001A,Initech,initech.com,+1 512 555 0100,US,Alice Adams\n"
    ),
    "semicolons": "id;Account Name;Website\nA-1;Initech;initech.com\n",
}


def invoke(args: list[str], database: Path) -> tuple[int, str, str]:
    result = runner.invoke(
        app, [*args, "--rules", POLICY], env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("export", sorted(ACCOUNTS))
@pytest.mark.parametrize("command", [["import"], ["simulate"]], ids=" ".join)
def test_a_file_of_accounts_given_as_leads_is_refused_naming_accounts_import(
    tmp_path: Path, export: str, command: list[str]
) -> None:
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_text(ACCOUNTS[export])

    code, out, err = invoke([*command, str(accounts)], database)

    assert code == 1
    assert out == ""
    (sentence,) = err.splitlines()
    assert sentence.startswith(f"error: {accounts}: is a file of accounts")
    assert f"`leadrouter accounts import {accounts}`" in sentence
    assert not database.exists()  # nothing migrated, nothing routed


@pytest.mark.parametrize(
    "header",
    [
        "id,email,first_name,last_name,company,website,phone",
        "id,Name,Email,Company,Phone",  # has an id and a name: read as accounts before
    ],
)
def test_a_file_of_leads_given_to_accounts_import_is_refused_naming_import(
    tmp_path: Path, header: str
) -> None:
    database, leads = tmp_path / "leads.db", tmp_path / "leads.csv"
    leads.write_text(
        f"{header}\n" + ",".join(f"v{n}" for n, _ in enumerate(header.split(","))) + "\n"
    )

    code, out, err = invoke(["accounts", "import", str(leads)], database)

    assert code == 1
    assert out == ""
    (sentence,) = err.splitlines()
    assert sentence.startswith(f"error: {leads}: is a file of leads")
    assert f"`leadrouter import {leads}`" in sentence
    assert not database.exists()


@pytest.mark.parametrize(
    "header",
    [
        "id,company,domain,country",  # a lead without a person: routed by its company
        "id,Name,Email,Company,Owner",  # a CRM's lead export: a person's name and e-mail
        "id,Full Name,Phone,Company,Lead Owner",  # a person's full name is no account's
    ],
)
def test_a_file_of_leads_that_shares_columns_with_accounts_is_still_routed(
    tmp_path: Path, header: str
) -> None:
    leads = tmp_path / "leads.csv"
    values = {"id": "L-1", "company": "Initech", "email": "jo@initech.com", "phone": "+1 555"}
    row = ",".join(values.get(column.lower(), "x") for column in header.split(","))
    leads.write_text(f"{header}\n{row}\n")

    result = runner.invoke(app, ["simulate", str(leads), "--rules", POLICY, "--json"])

    assert result.exit_code == 0, result.stderr
    assert '"L-1"' in result.stdout


def test_a_file_of_accounts_with_a_phone_column_is_imported_as_accounts(tmp_path: Path) -> None:
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_text(ACCOUNTS["salesforce"])

    code, out, _ = invoke(["accounts", "import", str(accounts)], database)

    assert code == 0
    assert out.startswith(f"{accounts}: created 1,")
