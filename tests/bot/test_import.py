"""`leadrouter import`: a file of leads through the same intake as `POST /leads`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.bot.conftest import EXAMPLES
from tests.bot.webhook import row_counts

runner = CliRunner()
POLICY = str(EXAMPLES / "routing.yml")

LEADS_CSV = """\
id,email,company,country,employees,industry
I-1,cto@bigco.com,BigCo,US,5000,
I-2,ops@firm.de,Firm,DE,300,
I-3,me@gmail.com,,,,
I-1,cto@bigco.com,BigCo again,US,5000,
I-4,not-an-email,X,US,10,
,anon@nowhere.com,No Id,US,10,
I-5,it@clinic.com,Clinic,US,40,Healthcare
"""


def run_import(file: Path, database: Path) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        ["import", str(file), "--rules", POLICY],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )
    return result.exit_code, result.stdout, result.stderr


def test_import_routes_good_rows_counts_repeats_and_lists_bad_rows_by_line(
    tmp_path: Path,
) -> None:
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    leads.write_text(LEADS_CSV)
    code, out, _ = run_import(leads, database)
    assert code == 0
    assert out.splitlines() == [
        f"{leads}: created 4, repeated 1, invalid 2",
        f"{leads}:6: email: 'not-an-email' is not an e-mail address",
        f"{leads}:7: id: is required: the lead's id in the system it came from",
    ]
    with sqlite3.connect(database) as db:
        stored = dict(db.execute("SELECT external_id, status FROM leads"))
        decided = db.execute("SELECT count(DISTINCT lead_id) FROM decisions").fetchone()[0]
        company = db.execute("SELECT company FROM leads WHERE external_id = 'I-1'").fetchone()[0]
    assert sorted(stored) == ["I-1", "I-2", "I-3", "I-5"]
    assert stored["I-3"] == "nurture"
    assert decided == 4
    assert company == "BigCo"  # the first row with an id is the one routed; later ones repeat


def test_importing_the_same_file_twice_creates_nothing_new(tmp_path: Path) -> None:
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    leads.write_text(LEADS_CSV)
    run_import(leads, database)
    before = row_counts(database)
    code, out, _ = run_import(leads, database)
    assert code == 0
    assert out.splitlines()[0] == f"{leads}: created 0, repeated 5, invalid 2"
    assert row_counts(database) == before


NO_EMAIL_CSV = """\
id,first_name,last_name,company,phone,country,employees
N-1,Ana,Müller,BigCo,+1 555 0100,US,5000
N-2,Bob,Stone,Firm,,DE,300
N-1,ana,müller,BigCo,+1 (555) 0100,US,5000
N-2,Carla,Stone,Firm,,DE,300
"""


def test_importing_the_same_file_of_leads_without_emails_twice_creates_nothing_new(
    tmp_path: Path,
) -> None:
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    leads.write_text(NO_EMAIL_CSV)
    code, out, _ = run_import(leads, database)
    assert code == 0
    assert out.splitlines() == [
        f"{leads}: created 2, repeated 1, invalid 1",
        f"{leads}:5: id: 'N-2' was already used for a lead with another name, so this row "
        "was not routed; give each lead its own id",
    ]
    before = row_counts(database)
    code, out, _ = run_import(leads, database)
    assert code == 0
    assert out.splitlines()[0] == f"{leads}: created 0, repeated 3, invalid 1"
    assert row_counts(database) == before


def test_import_lists_the_first_twenty_invalid_rows_and_counts_the_rest(tmp_path: Path) -> None:
    leads, database = tmp_path / "leads.jsonl", tmp_path / "leads.db"
    rows = [json.dumps({"id": f"J-{i}", "email": f"ops@firm{i}.de"}) for i in range(60)]
    rows += [json.dumps({"id": f"BAD-{i}", "employees": "many"}) for i in range(24)]
    rows.append("{not json")
    leads.write_text("\n".join(rows) + "\n")
    code, out, _ = run_import(leads, database)
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == f"{leads}: created 60, repeated 0, invalid 25"
    assert lines[1] == (
        f"{leads}:61: employees: 'many' is not a number of employees: give a whole number "
        "such as 250, a range such as 51-200, or 1000+"
    )
    assert len(lines) == 1 + 20 + 1
    assert lines[-1] == "… and 5 more invalid rows"
    assert row_counts(database)["leads"] == 60


def test_import_of_a_missing_file_exits_1_and_touches_no_database(tmp_path: Path) -> None:
    code, _, err = run_import(tmp_path / "nowhere.csv", tmp_path / "leads.db")
    assert code == 1
    assert err.strip() == f"error: {tmp_path / 'nowhere.csv'}: no such file"
    assert not (tmp_path / "leads.db").exists()


def test_import_of_a_file_without_an_id_column_exits_1(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("email,company\ncto@bigco.com,BigCo\n")
    code, _, err = run_import(leads, tmp_path / "leads.db")
    assert code == 1
    assert "the first line must be a header naming the columns, with `id`" in err


def test_import_with_bad_settings_exits_1_with_a_sentence(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(LEADS_CSV)
    result = runner.invoke(
        app, ["import", str(leads), "--rules", POLICY], env={"DATABASE_URL": "mysql://db/x"}
    )
    assert result.exit_code == 1
    assert "DATABASE_URL: must be a SQLite or PostgreSQL URL" in result.stderr
    assert "Traceback" not in result.output


def test_a_sqlite_database_in_a_folder_that_is_not_there_is_a_sentence_about_the_slashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sqlite:///tmp/x.db is tmp/x.db under the working directory: an admin meant /tmp/x.db.
    monkeypatch.chdir(tmp_path)
    leads = tmp_path / "leads.csv"
    leads.write_text(LEADS_CSV)
    result = runner.invoke(
        app,
        ["import", str(leads), "--rules", POLICY],
        env={"DATABASE_URL": "sqlite:///data/leads.db"},
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: DATABASE_URL: the folder data, where the SQLite database data/leads.db would "
        "be, does not exist (sqlite:///PATH, three slashes, is a path under the working "
        "directory; sqlite:////PATH, four, one from the root)"
    )
    assert not (tmp_path / "data").exists()


def test_accounts_import_counts_skipped_rows_apart_from_those_kept_with_a_problem(
    tmp_path: Path,
) -> None:
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_text(
        "id,name,domain,owner\n"
        "A1,Initech,initech.com,alice\n"
        "A1,Initech again,initech.net,bob\n"
        ",No Id,noid.com,\n"
        "A2,Globex,globex.com,nobody-we-know\n"
    )
    result = runner.invoke(
        app,
        ["accounts", "import", str(accounts), "--rules", POLICY],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"{accounts}: created 2, replaced 0, skipped 2, kept with a problem 1"
    )
    assert result.stderr.splitlines() == [
        f"{accounts}:3: duplicate account id A1 (first at line 2): row skipped",
        f"{accounts}:4: an account needs an id and a name: row skipped",
        f"{accounts}:5: owner 'nobody-we-know' is not a rep id, e-mail or name in the policy; kept "
        "without an owner",
    ]
    with sqlite3.connect(database) as connection:
        names = dict(connection.execute("SELECT id, name FROM accounts"))
    assert names == {"A1": "Initech", "A2": "Globex"}


def test_accounts_import_of_a_file_where_no_row_is_an_account_exits_1_and_makes_no_database(
    tmp_path: Path,
) -> None:
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_text("id,name\n,Nameless Id\nA1,\n")
    result = runner.invoke(
        app,
        ["accounts", "import", str(accounts), "--rules", POLICY],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: {accounts}: no account could be read: every row has a problem"
    )
    assert not database.exists()


def test_accounts_import_loads_accounts_that_later_leads_match(tmp_path: Path) -> None:
    # No working hours in this policy: the import routes at the real time, whatever day it is.
    policy = tmp_path / "routing.yml"
    policy.write_text(
        "reps:\n  - {id: alice}\n  - {id: bob, email: bob@example.com}\n"
        "teams:\n  all: {members: [alice, bob]}\n"
        "rules:\n  - {name: Owner, when: {account.owner: {exists: true}}, assign: account_owner}\n"
    )
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_text(
        "id,name,domain,owner,tier\n"
        "A1,Initech,https://www.initech.com,bob@example.com,Gold\n"
        "A2,Tyrell Corporation,tyrell.com,alice,\n"
        "A3,Ghost Co,ghost.io,nobody-we-know,\n"
    )
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    command = ["accounts", "import", str(accounts), "--rules", str(policy)]
    loaded = runner.invoke(app, command, env=env)
    assert loaded.exit_code == 0, loaded.output
    assert loaded.stdout.strip() == (
        f"{accounts}: created 3, replaced 0, skipped 0, kept with a problem 1"
    )
    assert f"{accounts}:4: owner 'nobody-we-know' is not a rep id, e-mail or name" in loaded.stderr
    again = runner.invoke(app, command, env=env)
    assert "created 0, replaced 3" in again.stdout

    leads = tmp_path / "leads.csv"
    leads.write_text("id,email,company\nL1,p@initech.com,\nL2,e@tyrellcorp.net,Tyrel Corp\n")
    imported = runner.invoke(app, ["import", str(leads), "--rules", str(policy)], env=env)
    assert imported.exit_code == 0, imported.output
    with sqlite3.connect(database) as connection:
        owners = dict(connection.execute("SELECT external_id, rep_id FROM leads ORDER BY 1"))
    assert owners == {"L1": "bob", "L2": "alice"}


def test_imported_leads_wait_for_their_cards_before_their_sla_starts(tmp_path: Path) -> None:
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    leads.write_text(LEADS_CSV)
    assert run_import(leads, database)[0] == 0
    with sqlite3.connect(database) as db:
        offers = db.execute("SELECT sla_due_at, remind_at, sla_seconds FROM offers").fetchall()
    assert offers
    # No Slack app posted their cards: nobody can be charged an SLA for them yet.
    assert all(due is None and remind is None and seconds for due, remind, seconds in offers)


def test_import_without_a_policy_file_routes_by_the_active_version_and_says_so(
    tmp_path: Path,
) -> None:
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    leads.write_text(LEADS_CSV)
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    activated = runner.invoke(app, ["policy", "activate", POLICY], env=env)
    assert activated.exit_code == 0, activated.output
    gone = tmp_path / "routing.yml"

    result = runner.invoke(app, ["import", str(leads)], env={**env, "LEADROUTER_RULES": str(gone)})

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{leads}: created 4, repeated 1, invalid 2")
    assert result.stderr.startswith(f"note: no policy file at {gone}: using version ")
