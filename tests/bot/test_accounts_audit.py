"""`leadrouter accounts audit`: the near-duplicate accounts of a CRM export, printed and as a CSV
for whoever cleans the CRM."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()

ACCOUNTS = [
    ["id", "name", "domain", "owner", "tier"],
    ["A1", "Lura LLP", "lura.com", "alice", "Gold"],
    ["A2", "Lura Limited", "", "bob", ""],
    ["A3", "Lura GmbH", "lura.de", "alice", ""],
    ["N1", "Nova Heron Semiconductors", "", "carol", ""],
    ["N2", "Nova Hreon Semiconductors Inc", "", "carol", ""],
    ["N3", "Nova Crown Semiconductors", "", "dan", ""],
    ["S1", "Société Générale", "", "", ""],
]
POLICY = (
    "reps:\n  - {id: alice}\n  - {id: bob, email: bob@example.com}\n  - {id: carol}\n"
    "teams:\n  all: {members: [alice, bob, carol]}\n"
    "rules:\n  - {name: Owner, when: {account.owner: {exists: true}}, assign: account_owner}\n"
)


def write(
    path: Path, rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8"
) -> Path:
    path.write_bytes("".join(delimiter.join(row) + "\r\n" for row in rows).encode(encoding))
    return path


def audit(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["accounts", "audit", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_audit_counts_the_groups_and_shows_them_with_ids_names_owners_and_scores(
    tmp_path: Path,
) -> None:
    accounts = write(tmp_path / "accounts.csv", ACCOUNTS)

    code, stdout, stderr = audit(str(accounts))

    assert code == 0, stderr
    lines = [" ".join(line.split()) for line in stdout.splitlines()]
    assert lines[0] == (
        f"{accounts}: 7 accounts; 2 groups of near-duplicates covering 5 accounts "
        "at threshold 90, 1 with different owners, 1 that leads cannot tell apart "
        "(their matches are ambiguous)"
    )
    assert "group 1: 3 accounts, different owners, leads cannot tell them apart" in lines
    assert "A1 Lura LLP alice" in lines
    assert (
        "A2 Lura Limited bob 100.0 same name once legal suffix, case and punctuation are removed"
        in lines
    )
    assert "group 2: 2 accounts, one owner" in lines
    assert any(line.startswith("N2 Nova Hreon Semiconductors Inc carol 95.") for line in lines)
    assert "N3" not in stdout and "Crown" not in stdout


def test_audit_writes_a_csv_with_a_row_per_account_in_a_group(tmp_path: Path) -> None:
    accounts = write(tmp_path / "accounts.csv", ACCOUNTS)
    report = tmp_path / "duplicates.csv"

    code, stdout, stderr = audit(str(accounts), "--out", str(report))

    assert code == 0, stderr
    assert f"{report}: 5 rows written" in stdout
    # With a byte-order mark, so that Excel shows accented names as they are.
    assert report.read_bytes().startswith(b"\xef\xbb\xbfgroup,account_id,")
    with report.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "group",
        "account_id",
        "name",
        "domain",
        "owner",
        "country",
        "state",
        "duplicate_of",
        "score",
        "reason",
    ]
    assert [(r["group"], r["account_id"], r["duplicate_of"], r["owner"]) for r in rows] == [
        ("1", "A1", "A1", "alice"),
        ("1", "A2", "A1", "bob"),
        ("1", "A3", "A1", "alice"),
        ("2", "N1", "N1", "carol"),
        ("2", "N2", "N1", "carol"),
    ]
    assert (rows[0]["score"], rows[0]["reason"]) == ("", "")
    assert rows[1]["domain"] == "" and rows[2]["domain"] == "lura.de"
    assert rows[2]["score"] == "100.0"
    assert rows[4]["reason"] == f"similar names, score {rows[4]['score']}"


def test_audit_reads_a_semicolon_separated_windows_1252_file_with_its_encoding_named(
    tmp_path: Path,
) -> None:
    rows = [["Id", "Name", "Owner"], ["S1", "Société Générale", "alice"]]
    rows += [["S2", "SOCIÉTÉ GÉNÉRALE S.A.", "bob"], ["S3", "Müller Bau GmbH", "bob"]]
    accounts = write(tmp_path / "accounts.csv", rows, delimiter=";", encoding="cp1252")
    report = tmp_path / "duplicates.csv"

    code, stdout, stderr = audit(str(accounts), "--encoding", "cp1252", "--out", str(report))

    assert code == 0, stderr
    assert "3 accounts; 1 group of near-duplicates covering 2 accounts" in stdout
    with report.open(encoding="utf-8-sig", newline="") as handle:
        names = [row["name"] for row in csv.DictReader(handle)]
    assert names == ["Société Générale", "SOCIÉTÉ GÉNÉRALE S.A."]


def test_audit_reads_excels_csv_utf8_with_its_byte_order_mark_and_sep_line(
    tmp_path: Path,
) -> None:
    rows = [["sep=;"], ["ID", " Name ", "OWNER"], ["S1", "Société Générale", "alice"]]
    rows += [["S2", "Societe Generale SA", "bob"]]
    accounts = write(tmp_path / "accounts.csv", rows, delimiter=";", encoding="utf-8-sig")

    code, stdout, stderr = audit(str(accounts))

    assert code == 0, stderr
    assert "2 accounts; 1 group of near-duplicates covering 2 accounts" in stdout
    assert "Société Générale" in stdout


def test_a_windows_1252_file_without_its_encoding_named_is_a_sentence(tmp_path: Path) -> None:
    rows = [ACCOUNTS[0], ["S1", "Société", "", "", ""]]
    accounts = write(tmp_path / "accounts.csv", rows, encoding="cp1252")

    code, stdout, stderr = audit(str(accounts))

    assert code == 1
    assert "Windows-1252" in stderr and "--encoding" in stderr
    assert stdout == ""


def test_a_missing_accounts_file_is_a_sentence_and_no_traceback(tmp_path: Path) -> None:
    code, stdout, stderr = audit(str(tmp_path / "nowhere.csv"))

    assert code == 1
    assert stderr.strip() == f"error: {tmp_path / 'nowhere.csv'}: no such file"
    assert "Traceback" not in stdout + stderr


def test_a_file_without_a_header_is_a_sentence(tmp_path: Path) -> None:
    accounts = write(tmp_path / "accounts.csv", ACCOUNTS[1:])

    code, _, stderr = audit(str(accounts))

    assert code == 1
    assert "needs a header naming the columns id and name" in stderr


def test_an_out_file_that_cannot_be_written_is_a_sentence(tmp_path: Path) -> None:
    accounts = write(tmp_path / "accounts.csv", ACCOUNTS)
    report = tmp_path / "no such folder" / "duplicates.csv"

    code, stdout, stderr = audit(str(accounts), "--out", str(report))

    assert code == 1
    assert stderr.strip() == (
        f"error: --out {report}: there is no folder {report.parent} to write it in"
    )
    assert stdout == ""


def test_an_out_file_that_is_the_accounts_file_itself_is_refused_and_the_file_kept(
    tmp_path: Path,
) -> None:
    accounts = write(tmp_path / "accounts.csv", ACCOUNTS)
    before = accounts.read_bytes()
    # The same file by another spelling of its path: the audit must still not write over it.
    same = tmp_path / "." / "accounts.csv"

    code, stdout, stderr = audit(str(accounts), "--out", str(same))

    assert code == 1
    assert stderr.startswith(f"error: --out {same} is the accounts file itself")
    assert stdout == ""
    assert accounts.read_bytes() == before


def test_an_out_file_that_is_the_policy_file_is_refused_and_the_policy_kept(
    tmp_path: Path,
) -> None:
    accounts = write(tmp_path / "accounts.csv", ACCOUNTS)
    policy = tmp_path / "routing.yml"
    policy.write_text(POLICY)

    code, stdout, stderr = audit(str(accounts), "--rules", str(policy), "--out", str(policy))

    assert code == 1
    assert stderr.startswith(f"error: --out {policy} is the policy file itself")
    assert stdout == ""
    assert policy.read_text() == POLICY


def test_without_a_policy_owners_are_kept_as_written(tmp_path: Path) -> None:
    rows = [ACCOUNTS[0], ["A1", "Lura LLP", "", "Jane.Doe@Example.com", ""]]
    rows += [["A2", "Lura GmbH", "", "jane.doe@example.com", ""]]
    accounts = write(tmp_path / "accounts.csv", rows)

    code, stdout, stderr = audit(str(accounts))

    assert code == 0, stderr
    assert stderr == ""
    assert "different owners" in stdout and "Jane.Doe@Example.com" in stdout


def test_with_a_policy_owners_are_its_reps_and_its_threshold_is_the_default(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "routing.yml"
    policy.write_text(POLICY + "accounts:\n  fuzzy_threshold: 97\n")
    rows = [*ACCOUNTS[:4], ["A4", "Lura AG", "", "BOB@example.com", ""], *ACCOUNTS[4:]]
    accounts = write(tmp_path / "accounts.csv", rows)

    code, stdout, stderr = audit(str(accounts), "--policy", str(policy))

    assert code == 0, stderr
    # The typos of each other score under 97; dan is nobody in the policy.
    assert "1 group of near-duplicates covering 4 accounts at threshold 97" in stdout
    assert "A4 Lura AG bob 100.0 same name once legal suffix, case and punctuation are removed" in [
        " ".join(line.split()) for line in stdout.splitlines()
    ]
    assert f"{accounts}:8: owner 'dan' is not a rep id, e-mail or name in the policy" in stderr


def test_the_threshold_option_wins_over_the_policys(tmp_path: Path) -> None:
    policy = tmp_path / "routing.yml"
    policy.write_text(POLICY + "accounts:\n  fuzzy_threshold: 97\n")
    accounts = write(tmp_path / "accounts.csv", ACCOUNTS)

    code, stdout, stderr = audit(str(accounts), "--rules", str(policy), "--threshold", "95")

    assert code == 0, stderr
    assert "2 groups of near-duplicates covering 5 accounts at threshold 95" in stdout


def test_a_file_with_no_near_duplicates_says_so(tmp_path: Path) -> None:
    accounts = write(tmp_path / "accounts.csv", [ACCOUNTS[0], ACCOUNTS[4], ACCOUNTS[6]])

    code, stdout, stderr = audit(str(accounts))

    assert code == 0, stderr
    assert stdout.strip() == (
        f"{accounts}: 2 accounts; 0 groups of near-duplicates covering 0 accounts "
        "at threshold 90, 0 with different owners, 0 that leads cannot tell apart "
        "(their matches are ambiguous)"
    )


def test_an_account_named_like_a_formula_is_written_to_the_audit_as_text(tmp_path: Path) -> None:
    # A CRM export holds names anyone's web form created: a spreadsheet must not run them.
    rows = [
        ["id", "name", "domain", "owner", "country"],
        ["F1", "=cmd|' /C calc'!A0 Holdings", "", "alice", ""],
        ["F2", "=cmd|' /C calc'!A0 Holding", "", "bob", ""],
    ]
    accounts = write(tmp_path / "accounts.csv", rows)
    report = tmp_path / "duplicates.csv"

    code, _, stderr = audit(str(accounts), "--out", str(report))

    assert code == 0, stderr
    with report.open(encoding="utf-8-sig", newline="") as handle:
        names = [row["name"] for row in csv.DictReader(handle)]
    assert names == ["'=cmd|' /C calc'!A0 Holdings", "'=cmd|' /C calc'!A0 Holding"]
