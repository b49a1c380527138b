"""Files people actually have: what Excel, a CRM export or a hand-written JSON file look like,
through `simulate`, `import` and `accounts import` as a user runs them. One file over 400 lines:
its tests share the table of leads and the commands' helpers; files with no rows at all are in
test_empty_files.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.files.accounts import read_accounts
from bot.files.leads import open_leads
from tests.bot.conftest import EXAMPLES

runner = CliRunner()
POLICY = str(EXAMPLES / "routing.yml")
NOW = "2026-11-17T17:15:00Z"

# The same three leads, as a spreadsheet would hold them: accents, a euro sign, quotes.
TABLE = [
    ["id", "email", "first_name", "company", "country", "employees"],
    ["E-1", "anne@mueller-bau.de", "Anne", "Müller Bau GmbH", "DE", "40"],
    ["E-2", "jose@perez.es", "José", "Pérez & Núñez «Café» €", "ES", "12"],
    ["E-3", "cto@bigco.com", "Zoë", "BigCo", "US", "5000"],
]
EXPECTED_REPS = {"E-1": "erin", "E-2": "erin", "E-3": "alice"}


def table(delimiter: str = ",", header: list[str] | None = None) -> str:
    rows = [header or TABLE[0], *TABLE[1:]]
    return "".join(delimiter.join(row) + "\r\n" for row in rows)


def simulate(leads: Path, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app, ["simulate", str(leads), "--rules", POLICY, "--now", NOW, "--json", *extra]
    )
    return result.exit_code, result.stdout, result.stderr


def reps(stdout: str) -> dict[str, str]:
    return {row["id"]: row["rep"] for row in map(json.loads, stdout.splitlines())}


def run_import(file: Path, database: Path, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        ["import", str(file), "--rules", POLICY, *extra],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )
    return result.exit_code, result.stdout, result.stderr


def companies(database: Path) -> dict[str, str]:
    with sqlite3.connect(database) as connection:
        return dict(connection.execute("SELECT external_id, company FROM leads"))


# Encodings


def test_excels_unicode_text_utf16_with_tabs_is_read_as_it_is(tmp_path: Path) -> None:
    leads = tmp_path / "leads.txt"
    # Excel's "Unicode Text": UTF-16 little-endian with a byte-order mark, tab-separated, CRLF.
    leads.write_bytes(table("\t").encode("utf-16"))

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert reps(stdout) == EXPECTED_REPS


def test_utf16_without_a_byte_order_mark_is_recognised(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_bytes(table().encode("utf-16-le"))

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert reps(stdout) == EXPECTED_REPS


def test_excels_csv_utf8_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_bytes(table(";", ["Id", *TABLE[0][1:]]).encode("utf-8-sig"))

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert reps(stdout) == EXPECTED_REPS


def test_a_windows_1252_csv_is_refused_naming_its_encoding_and_how_to_save_it_as_utf8(
    tmp_path: Path,
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_bytes(table().encode("cp1252"))

    code, stdout, stderr = simulate(leads)

    assert code == 1
    assert stdout == ""
    assert stderr.startswith(f"error: {leads}: is not UTF-8 text: it looks like Windows-1252")
    assert "File › Save As › CSV UTF-8" in stderr
    assert "--encoding cp1252" in stderr
    assert "Traceback" not in stderr and "UnicodeDecodeError" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_a_windows_1252_csv_routes_when_its_encoding_is_named(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_bytes(table().encode("cp1252"))

    code, stdout, stderr = simulate(leads, "--encoding", "cp1252")

    assert code == 0, stderr
    assert reps(stdout) == EXPECTED_REPS


def test_a_byte_the_named_encoding_does_not_have_is_a_sentence_naming_its_line(
    tmp_path: Path,
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_bytes(b"id,company\r\n1,Acme\r\n2,Caf\xc3\xa9 \x81\r\n")

    code, _, stderr = simulate(leads, "--encoding", "cp1252")

    assert code == 1
    assert f"{leads}: cannot be read as Windows-1252 (Western European): line 3" in stderr
    assert "0x81" in stderr


def test_an_unknown_encoding_name_is_a_sentence(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(table())

    code, _, stderr = simulate(leads, "--encoding", "latin-9000")

    assert code == 1
    assert "--encoding latin-9000: no such encoding" in stderr


def test_an_excel_workbook_is_refused_saying_how_to_save_it_as_csv(tmp_path: Path) -> None:
    workbook = tmp_path / "leads.xlsx"
    workbook.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4)

    code, _, stderr = simulate(workbook)

    assert code == 1
    assert f"{workbook}: is an Excel workbook" in stderr
    assert "CSV UTF-8" in stderr
    assert "Traceback" not in stderr


# Delimiters and columns


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_csv_separated_by_semicolons_tabs_or_pipes_routes_like_one_with_commas(
    tmp_path: Path, delimiter: str
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(table(delimiter), encoding="utf-8")

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert reps(stdout) == EXPECTED_REPS


def test_excels_sep_line_says_the_delimiter_and_is_not_a_row(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("sep=;\r\n" + table(";") + "E-4;nope\r\n", encoding="utf-8")

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert reps(stdout) == EXPECTED_REPS
    assert f"{leads}:6: skipped: email: 'nope' is not an e-mail address" in stderr


def test_column_names_are_matched_whatever_their_case_or_spacing(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    header = ["ID", "Email", "First Name", "COMPANY", "Country", "Employees"]
    leads.write_text(table(",", header), encoding="utf-8")
    database = tmp_path / "leads.db"

    code, _, stderr = run_import(leads, database)

    assert code == 0, stderr
    with sqlite3.connect(database) as connection:
        first_names = dict(
            connection.execute("SELECT external_id, json_extract(raw, '$.first_name') FROM leads")
        )
    assert first_names == {"E-1": "Anne", "E-2": "José", "E-3": "Zoë"}


def test_column_names_as_excel_and_crm_exports_write_them_are_the_lead_fields(
    tmp_path: Path,
) -> None:
    # As a person types them in Excel, and as Salesforce and HubSpot head their lead exports.
    header = ["ID", "E-Mail", "First name", "Company Name", "Country/Region", "No. of Employees"]
    leads = tmp_path / "leads.csv"
    leads.write_text(table(";", header), encoding="utf-8-sig")
    database = tmp_path / "leads.db"

    code, _, stderr = run_import(leads, database)

    assert code == 0, stderr
    with sqlite3.connect(database) as connection:
        stored = {
            row[0]: row[1:]
            for row in connection.execute(
                "SELECT external_id, email, company, json_extract(raw, '$.employees'), "
                "json_extract(raw, '$.country'), json_extract(raw, '$.fields') FROM leads"
            )
        }
    assert stored["E-3"] == ("cto@bigco.com", "BigCo", 5000, "US", None)
    assert stored["E-1"][:2] == ("anne@mueller-bau.de", "Müller Bau GmbH")


def test_a_column_that_names_no_lead_field_is_kept_as_a_custom_field(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("id,email,Plan Tier\r\nE-1,anne@mueller-bau.de,Gold\r\n", encoding="utf-8")
    database = tmp_path / "leads.db"

    code, _, stderr = run_import(leads, database)

    assert code == 0, stderr
    with sqlite3.connect(database) as connection:
        (fields,) = connection.execute("SELECT json_extract(raw, '$.fields') FROM leads").fetchone()
    assert json.loads(fields) == {"Plan Tier": "Gold"}


def test_two_columns_naming_the_same_field_are_refused(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("id,Email,email\r\n1,a@b.com,c@d.com\r\n", encoding="utf-8")

    code, _, stderr = simulate(leads)

    assert code == 1
    assert "`Email` and `email` are both the column email" in stderr


def test_a_header_without_an_id_names_the_columns_it_has(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("lead;mail\r\n1;a@b.com\r\n", encoding="utf-8")

    code, _, stderr = simulate(leads)

    assert code == 1
    assert "the first line must be a header naming the columns, with `id`" in stderr
    assert "(it names lead, mail)" in stderr


def test_a_header_without_an_id_but_with_a_crm_id_column_says_it_could_be_headed_id(
    tmp_path: Path,
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("Record ID,Email,Company Name\r\n123,a@b.com,Acme\r\n", encoding="utf-8")

    code, _, stderr = simulate(leads)

    assert code == 1
    assert stderr.strip() == (
        f"error: {leads}: the first line must be a header naming the columns, with `id` (it "
        "names Record ID, Email, Company Name); if `Record ID` holds each row's own id, head that "
        "column `id`"
    )


def test_rows_are_counted_for_the_progress_bar_without_the_header(tmp_path: Path) -> None:
    csv_file, lines, array = tmp_path / "a.csv", tmp_path / "b.jsonl", tmp_path / "c.json"
    csv_file.write_text("sep=,\n" + table())
    lines.write_text('{"id": 1}\n{"id": 2}\n{"id": 3}')
    array.write_text('[\n  {"id": 1},\n  {"id": 2}\n]\n')

    assert open_leads(csv_file).rows == 3
    assert open_leads(lines).rows == 3
    assert open_leads(array).rows == 2


# JSON


def test_a_json_array_routes_its_leads_and_names_the_line_of_a_bad_one(tmp_path: Path) -> None:
    leads = tmp_path / "leads.json"
    records = [dict(zip(TABLE[0], row, strict=True)) for row in TABLE[1:]]
    text = json.dumps(records, indent=2, ensure_ascii=False)
    leads.write_text(text[:-2] + ',\n  {"id": "E-4", "email": "nope"}\n]\n', encoding="utf-8")

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert reps(stdout) == EXPECTED_REPS
    bad_line = text.count("\n") + 1
    assert f"{leads}:{bad_line}: skipped: email: 'nope' is not an e-mail address" in stderr


def test_a_pretty_printed_batch_like_post_leads_takes_routes_its_leads(tmp_path: Path) -> None:
    leads = tmp_path / "batch.json"
    records = [dict(zip(TABLE[0], row, strict=True)) for row in TABLE[1:]]
    leads.write_text(json.dumps({"leads": records}, indent=2), encoding="utf-8")

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert reps(stdout) == EXPECTED_REPS


def test_a_batch_on_one_line_as_curl_posts_it_routes_its_leads_not_one_lead_named_leads(
    tmp_path: Path,
) -> None:
    leads = tmp_path / "batch.json"
    records = [dict(zip(TABLE[0], row, strict=True)) for row in TABLE[1:]]
    leads.write_text(json.dumps({"leads": records}) + "\n", encoding="utf-8")

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert reps(stdout) == EXPECTED_REPS


def test_a_broken_json_array_is_a_sentence_with_its_line_and_column(tmp_path: Path) -> None:
    leads = tmp_path / "leads.json"
    leads.write_text('[\n  {"id": "1"},\n  {"id": "2",}\n]\n')

    code, stdout, stderr = simulate(leads)

    assert code == 1
    assert stdout == ""
    assert f"{leads}: is not valid JSON: line 3 column" in stderr


TWICE = '{"id": "E-9", "email": "a@bigco.com", "country": "US", "email": "b@other.com"}'
TWICE_SAID = 'skipped: the key "email" twice in one object, so which value is meant is not clear'


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_a_lead_with_a_key_written_twice_is_skipped_naming_its_line_and_key(
    tmp_path: Path, suffix: str
) -> None:
    leads = tmp_path / f"leads{suffix}"
    records = [json.dumps(dict(zip(TABLE[0], row, strict=True))) for row in TABLE[1:]]
    if suffix == ".json":
        leads.write_text("[\n" + ",\n".join([records[0], TWICE, *records[1:]]) + "\n]\n")
        line = 3
    else:
        leads.write_text("\n".join([records[0], TWICE, *records[1:]]) + "\n")
        line = 2

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert reps(stdout) == EXPECTED_REPS  # E-9 is not routed with either address
    assert f"{leads}:{line}: {TWICE_SAID}" in stderr


def test_one_lead_written_over_several_lines_with_a_key_twice_is_skipped(tmp_path: Path) -> None:
    leads = tmp_path / "lead.json"
    leads.write_text(TWICE.replace(", ", ",\n  ") + "\n")

    code, _, stderr = simulate(leads)

    assert code == 1
    assert f"{leads}:1: {TWICE_SAID}" in stderr


def test_a_json_file_that_holds_no_leads_says_what_it_needs(tmp_path: Path) -> None:
    leads = tmp_path / "leads.json"
    leads.write_text('"just a string"\n')

    code, _, stderr = simulate(leads)

    assert code == 1
    assert "a JSON array of lead objects, or JSON Lines" in stderr


def test_a_file_where_no_row_is_a_lead_exits_1_after_listing_the_rows(tmp_path: Path) -> None:
    leads = tmp_path / "leads.jsonl"
    leads.write_text("not json\n{also not\n")

    code, _, stderr = simulate(leads)

    assert code == 1
    assert f"{leads}:1: skipped: not valid JSON" in stderr
    assert f"error: {leads}: no lead could be read: every row has a problem" in stderr


def test_a_value_longer_than_csv_allows_is_a_bad_row_and_the_rest_is_read(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(f"id,company\n1,Acme\n2,{'x' * 200_000}\n3,Initrode\n")

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert list(reps(stdout)) == ["1", "3"]
    assert f"{leads}:3: skipped: cannot be read as CSV" in stderr


def test_a_note_quoted_over_several_lines_is_one_value_and_the_next_rows_are_read(
    tmp_path: Path,
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        'id;company;notes\r\n1;Acme;"Called twice;\r\nwants ""pricing"""\r\n2;Initrode;\r\n',
        encoding="utf-8-sig",
    )

    code, stdout, stderr = simulate(leads)

    assert code == 0, stderr
    assert list(reps(stdout)) == ["1", "2"]


def test_a_quote_never_closed_is_refused_naming_its_line_instead_of_eating_the_rows_after_it(
    tmp_path: Path,
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        'id,company,country\r\n1,Acme,US\r\n2,"Initrode,US\r\n3,Globex,US\r\n4,Hooli,US\r\n'
    )

    code, stdout, stderr = simulate(leads)

    assert code == 1
    assert stdout == ""
    assert stderr.startswith(f"error: {leads}:3: a quote opens a value on this line")
    assert "Traceback" not in stderr


# import and accounts import


def test_import_of_a_windows_1252_file_changes_nothing_and_does_not_say_run_it_again(
    tmp_path: Path,
) -> None:
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    leads.write_bytes(table(";").encode("cp1252"))

    code, stdout, stderr = run_import(leads, database)

    assert code == 1
    assert "Windows-1252" in stderr and "CSV UTF-8" in stderr
    assert "again" not in stderr
    assert stdout == ""
    assert not database.exists()


def test_import_with_the_encoding_named_stores_the_names_as_written(tmp_path: Path) -> None:
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    leads.write_bytes(table(";").encode("cp1252"))

    code, stdout, stderr = run_import(leads, database, "--encoding", "cp1252")

    assert code == 0, stderr
    assert stdout.strip() == f"{leads}: created 3, repeated 0, invalid 0"
    assert companies(database) == {row[0]: row[3] for row in TABLE[1:]}


def test_import_of_excels_unicode_text_stores_the_names_as_written(tmp_path: Path) -> None:
    leads, database = tmp_path / "leads.txt", tmp_path / "leads.db"
    leads.write_bytes(table("\t").encode("utf-16"))

    code, _, stderr = run_import(leads, database)

    assert code == 0, stderr
    assert companies(database) == {row[0]: row[3] for row in TABLE[1:]}


def test_import_of_a_file_with_a_quote_never_closed_changes_nothing(tmp_path: Path) -> None:
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    leads.write_text('id,email,company\r\n1,a@acme.com,"Acme\r\n2,b@globex.com,Globex\r\n')

    code, stdout, stderr = run_import(leads, database)

    assert code == 1
    assert f"{leads}:2: a quote opens a value" in stderr
    assert stdout == ""
    assert not database.exists()


def test_accounts_import_of_a_file_with_a_quote_never_closed_changes_nothing(
    tmp_path: Path,
) -> None:
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_text('id,name,domain\r\nA1,"Acme,acme.com\r\nA2,Globex,globex.com\r\n')

    result = runner.invoke(
        app,
        ["accounts", "import", str(accounts), "--rules", POLICY],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )

    assert result.exit_code == 1
    assert f"{accounts}:2: a quote opens a value" in result.stderr
    assert not database.exists()


def test_import_of_a_file_where_no_row_is_a_lead_exits_1(tmp_path: Path) -> None:
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    leads.write_text("id,email\r\n,a@b.com\r\n2,nope\r\n")

    code, stdout, stderr = run_import(leads, database)

    assert code == 1
    assert f"{leads}:3: email: 'nope' is not an e-mail address" in stdout
    assert "no lead could be read" in stderr


ACCOUNTS = [
    ["Id", "Name", "Domain", "Owner", "Tier"],
    ["A1", "Société Générale", "", "bob@example.com", "Gold"],
    ["A2", "Müller Bau GmbH", "mueller-bau.de", "erin", ""],
]


@pytest.mark.parametrize(
    ("encoding", "delimiter", "extra"),
    [
        ("utf-16", "\t", []),
        ("utf-8-sig", ";", []),
        ("cp1252", ";", ["--encoding", "cp1252"]),
    ],
)
def test_accounts_import_reads_the_files_excel_writes(
    tmp_path: Path, encoding: str, delimiter: str, extra: list[str]
) -> None:
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_bytes("".join(delimiter.join(row) + "\r\n" for row in ACCOUNTS).encode(encoding))

    result = runner.invoke(
        app,
        ["accounts", "import", str(accounts), "--rules", POLICY, *extra],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )

    assert result.exit_code == 0, result.output
    assert (
        result.stdout.strip()
        == f"{accounts}: created 2, replaced 0, skipped 0, kept with a problem 0"
    )
    with sqlite3.connect(database) as connection:
        names = dict(connection.execute("SELECT id, name FROM accounts"))
    assert names == {"A1": "Société Générale", "A2": "Müller Bau GmbH"}


def test_accounts_import_of_a_windows_1252_file_changes_nothing(tmp_path: Path) -> None:
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_bytes("".join(",".join(row) + "\r\n" for row in ACCOUNTS).encode("cp1252"))

    result = runner.invoke(
        app,
        ["accounts", "import", str(accounts), "--rules", POLICY],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )

    assert result.exit_code == 1
    assert "Windows-1252" in result.stderr
    assert not database.exists()


def test_simulate_matches_a_utf16_lead_to_a_windows_1252_account_by_its_accented_name(
    tmp_path: Path,
) -> None:
    accounts, leads = tmp_path / "accounts.csv", tmp_path / "leads.txt"
    accounts.write_bytes("".join(";".join(row) + "\r\n" for row in ACCOUNTS).encode("cp1252"))
    leads.write_bytes("id\tcompany\tcountry\r\nS-1\tSociété Générale\tFR\r\n".encode("utf-16"))

    code, stdout, stderr = simulate(leads, "--accounts", str(accounts), "--encoding", "cp1252")

    # --encoding names the encoding of every file that is not UTF-8 or marked as UTF-16.
    assert code == 0, stderr
    assert reps(stdout) == {"S-1": "bob"}


def test_accounts_import_stores_each_accounts_country_as_its_code_and_its_state(
    tmp_path: Path,
) -> None:
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_text(
        "id,name,domain,owner,tier,country,state\r\n"
        "A1,Müller Bau GmbH,mueller-bau.de,erin,,Germany,Bayern\r\n"
        "A2,Initech,initech.com,,,deu,\r\n"
        "A3,BigCo,bigco.com,alice,Gold,USA, TX \r\n"
        "A4,Ghost Co,ghost.io,,,Atlantis,Nowhere\r\n"
        "A5,Nobody's Co,nobody.io,zed,,Narnia,\r\n"
        "A6,Quiet Co,quiet.io,,,,\r\n",
        encoding="utf-8",
    )

    result = runner.invoke(
        app,
        ["accounts", "import", str(accounts), "--rules", POLICY],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )

    assert result.exit_code == 0, result.output
    # An unknown country is no reason to drop the account: it is kept, and its row is named.
    # A row with two problems is one note, so each row with problems is counted once.
    assert result.stdout.strip() == (
        f"{accounts}: created 6, replaced 0, skipped 0, kept with a problem 2"
    )
    assert result.stderr.splitlines() == [
        f"{accounts}:5: country 'Atlantis' not recognised; kept without a country",
        f"{accounts}:6: owner 'zed' is not a rep id, e-mail or name in the policy; kept without an "
        "owner; country 'Narnia' not recognised; kept without a country",
    ]
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT id, country, state FROM accounts").fetchall()
    places = {account_id: (country, state) for account_id, country, state in rows}
    assert places == {
        "A1": ("DE", "Bayern"),
        "A2": ("DE", None),
        "A3": ("US", "TX"),
        "A4": (None, "Nowhere"),
        "A5": (None, None),
        "A6": (None, None),
    }


@pytest.mark.parametrize(
    ("country", "state"),
    [
        pytest.param("Billing Country", "Billing State/Province", id="a Salesforce report"),
        pytest.param("BillingCountry", "BillingState", id="Salesforce's field names"),
        pytest.param("Country/Region", "State/Region", id="a HubSpot export"),
        pytest.param("COUNTRY", "Province", id="a spreadsheet"),
    ],
)
def test_an_accounts_country_and_state_are_read_under_the_headers_crms_export(
    tmp_path: Path, country: str, state: str
) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(f"Id,Name,{country},{state}\r\nA1,Acme,U.K.,Scotland\r\n", encoding="utf-8")

    (account,), bad = read_accounts(accounts, {})

    assert bad == []
    assert (account.country, account.state) == ("GB", "Scotland")


def test_an_accounts_id_name_and_domain_are_read_under_the_headers_crms_export(
    tmp_path: Path,
) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        "Account ID,Account Name,Website,Owner\r\n001A,Acme,https://www.acme.com/,alice\r\n",
        encoding="utf-8",
    )

    (account,), bad = read_accounts(accounts, {"alice": "alice"})

    assert bad == []
    assert (account.id, account.name, account.domain, account.owner) == (
        "001A",
        "Acme",
        "https://www.acme.com/",
        "alice",
    )


@pytest.mark.parametrize(
    ("column", "owners"),
    [
        pytest.param("Account Owner", ("Bob Brown", "alice adams"), id="Salesforce: names"),
        pytest.param("Company owner", ("Bob Brown", "Alice Adams"), id="HubSpot: names"),
        pytest.param("Account Owner Email", ("bob@example.com", "alice@example.com"), id="e-mails"),
    ],
)
def test_accounts_import_reads_the_owner_column_crms_export_by_the_reps_name_or_email(
    tmp_path: Path, column: str, owners: tuple[str, str]
) -> None:
    accounts, database = tmp_path / "accounts.csv", tmp_path / "leads.db"
    accounts.write_text(
        f"Account ID,Account Name,{column}\r\n"
        f"001A,Initech,{owners[0]}\r\n001B,Globex,{owners[1]}\r\n001C,Hooli,Gavin Belson\r\n",
        encoding="utf-8-sig",
    )

    result = runner.invoke(
        app,
        ["accounts", "import", str(accounts), "--rules", POLICY],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )

    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        f"{accounts}:4: owner 'Gavin Belson' is not a rep id, e-mail or name in the policy; "
        "kept without an owner"
    )
    with sqlite3.connect(database) as connection:
        owners_stored = dict(connection.execute("SELECT id, owner_rep FROM accounts"))
    assert owners_stored == {"001A": "bob", "001B": "alice", "001C": None}


def test_a_name_two_reps_share_is_no_owner_of_an_account(tmp_path: Path) -> None:
    policy = tmp_path / "routing.yml"
    policy.write_text(
        "reps:\n  - {id: sam1, name: Sam Lee, slack: U0SAM1}\n"
        "  - {id: sam2, name: Sam Lee, slack: U0SAM2}\n"
        "rules:\n  - {name: All, assign: {rep: sam1}}\n"
    )
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("id,name,owner\r\nA1,Acme,Sam Lee\r\nA2,Initech,sam2\r\n")

    result = runner.invoke(app, ["accounts", "audit", str(accounts), "--rules", str(policy)])

    assert result.exit_code == 0, result.output
    assert f"{accounts}:2: owner 'Sam Lee' is not a rep id, e-mail or name" in result.stderr
    assert f"{accounts}:3:" not in result.stderr


def test_an_accounts_file_without_an_id_or_a_name_says_those_two_are_what_it_needs(
    tmp_path: Path,
) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("company,website\r\nAcme,acme.com\r\n", encoding="utf-8")

    result = runner.invoke(app, ["accounts", "audit", str(accounts)])

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {accounts}: needs a header naming the columns id and name, and optionally "
        "domain, owner, tier, country, state (it names company, website)"
    )


def test_a_column_named_like_a_custom_field_the_policy_reads_but_spelt_otherwise_is_warned_of(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "routing.yml"
    policy.write_text(
        "reps:\n  - {id: ann, slack: U0ANN}\n  - {id: bob, slack: U0BOB}\n"
        "rules:\n  - {name: Pro plan, when: {fields.plan_tier: pro}, assign: {rep: ann}}\n"
        "  - {name: Others, assign: {rep: bob}}\n"
    )
    leads = tmp_path / "leads.csv"
    leads.write_text("id,email,Plan Tier\r\nP-1,a@acme.com,pro\r\n", encoding="utf-8")

    result = runner.invoke(app, ["simulate", str(leads), "--rules", str(policy), "--json"])

    assert result.exit_code == 0, result.output
    # The lead is routed as the policy says (the names differ), and the admin is told why.
    assert json.loads(result.stdout)["rep"] == "bob"
    assert result.stderr.strip() == (
        f"{leads}: the column `Plan Tier` is the custom field `fields.Plan Tier`, but the policy "
        "reads `fields.plan_tier`: custom fields' names are compared exactly, so rename the "
        "column or the field"
    )


def test_a_column_spelt_as_the_policy_reads_it_is_not_warned_of(tmp_path: Path) -> None:
    policy = tmp_path / "routing.yml"
    policy.write_text(
        "reps:\n  - {id: ann, slack: U0ANN}\n"
        "rules:\n  - {name: Pro plan, when: {fields.plan_tier: pro}, assign: {rep: ann}}\n"
    )
    leads = tmp_path / "leads.csv"
    leads.write_text("id,email,plan_tier\r\nP-1,a@acme.com,pro\r\n", encoding="utf-8")

    result = runner.invoke(app, ["simulate", str(leads), "--rules", str(policy), "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rep"] == "ann"
    assert result.stderr == ""


def test_import_reads_a_french_excel_export_as_it_is_every_row_a_lead(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" in France: a byte-order mark, semicolons, CRLF, the columns a CRM
    export heads, two empty columns at the end, numbers grouped by a no-break space, and the
    rows of empty cells Excel leaves under a sheet whose last rows were cleared."""
    leads, database = tmp_path / "leads.csv", tmp_path / "leads.db"
    rows = [
        ["id", "First Name", "Email", "Company Name", "Country", "No. of Employees", "", ""],
        ["F-1", "Zoë", "zoe@boutique.fr", "Boutique «Café»", "France", "12", "", ""],
        ["F-2", "Luc", "luc@grandgroupe.fr", "Grand Groupe", "FR", "12\u00a0500", "", ""],
        *[[""] * 8] * 2,
    ]
    leads.write_bytes(("\ufeff" + "".join(";".join(row) + "\r\n" for row in rows)).encode())

    code, stdout, stderr = run_import(leads, database)

    assert code == 0, stderr
    assert stdout.strip() == f"{leads}: created 2, repeated 0, invalid 0"
    with sqlite3.connect(database) as connection:
        facts = dict(connection.execute("SELECT external_id, facts FROM leads"))
    assert {lead: json.loads(held)["employees"] for lead, held in facts.items()} == {
        "F-1": 12,
        "F-2": 12500,
    }
    assert json.loads(facts["F-1"])["company"] == "Boutique «Café»"
