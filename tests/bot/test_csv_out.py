"""The CSV of `report` and `replay`: on stdout plain UTF-8 for programs, as it always was; with
`--out FILE`, the file Excel opens with its accents, through the same command an admin runs."""

from __future__ import annotations

import codecs
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.bot.conftest import EXAMPLES

runner = CliRunner()
POLICY = str(EXAMPLES / "routing.yml")
ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("Salon Île-de-France", "Messe München", "web")


def run(url: str, *words: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(words), env={"DATABASE_URL": url, "LEADROUTER_RULES": POLICY})
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Leads from sources with accents in their names, imported now."""
    folder = tmp_path_factory.mktemp("csv")
    leads = folder / "leads.csv"
    with leads.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "email", "company", "country", "source"])
        for number, source in enumerate(SOURCES * 2):
            writer.writerow([f"X-{number}", f"p{number}@firm{number}.com", "Firm", "FR", source])
    database = f"sqlite+aiosqlite:///{folder / 'leads.db'}"
    code, _, stderr = run(database, "import", str(leads))
    assert code == 0, stderr
    return database


def test_report_out_writes_the_csv_excel_opens_with_its_accents(url: str, tmp_path: Path) -> None:
    sheet = tmp_path / "report.csv"

    code, stdout, stderr = run(url, "report", "--by", "source", "--out", str(sheet))
    _, piped, _ = run(url, "report", "--by", "source", "--csv")

    assert code == 0, stderr
    assert stdout == f"{sheet}: 3 rows written\n"
    written = sheet.read_bytes()
    assert written.startswith(codecs.BOM_UTF8)
    # The same rows as stdout's, in the line ends spreadsheets write.
    assert written.decode("utf-8-sig").replace("\r\n", "\n") == piped
    groups = {row["group"] for row in csv.DictReader(io.StringIO(piped))}
    assert groups == set(SOURCES)
    # Stdout is for programs: no byte-order mark to reach the first column's name.
    assert piped.startswith("by,group,")
    assert list(tmp_path.iterdir()) == [sheet]  # nothing left beside it


def test_replay_out_writes_every_lead_as_csv_prints_it(url: str, tmp_path: Path) -> None:
    sheet = tmp_path / "replay.csv"

    code, stdout, stderr = run(url, "replay", "--rules", POLICY, "--out", str(sheet))
    _, piped, _ = run(url, "replay", "--rules", POLICY, "--csv")

    assert code == 0, stderr
    assert stdout == f"{sheet}: 6 rows written\n"
    assert "replayed" in stderr
    written = sheet.read_bytes()
    assert written.startswith(codecs.BOM_UTF8)
    assert written.decode("utf-8-sig").replace("\r\n", "\n") == piped


@pytest.mark.parametrize(
    ("words", "said"),
    [
        (["--json"], "--out writes the report as CSV"),
        (["--out-is-policy"], "is the policy file itself"),
        (["--out-nowhere"], "there is no folder"),
    ],
)
def test_an_out_file_that_cannot_be_is_a_sentence_and_nothing_is_written(
    url: str, tmp_path: Path, words: list[str], said: str
) -> None:
    out = {
        "--out-is-policy": POLICY,
        "--out-nowhere": str(tmp_path / "missing" / "report.csv"),
    }.get(words[0], str(tmp_path / "report.csv"))
    policy_before = Path(POLICY).read_bytes()
    extra = words if words[0] == "--json" else []

    code, stdout, stderr = run(url, "report", *extra, "--out", out)

    assert code == 1
    assert stdout == ""
    assert said in stderr
    assert list(tmp_path.iterdir()) == []
    assert Path(POLICY).read_bytes() == policy_before


def test_stdout_redirected_to_a_file_stays_plain_and_a_note_says_to_use_out(
    url: str, tmp_path: Path
) -> None:
    """As `leadrouter report --csv > report.csv` in a shell: a real file as stdout."""
    sheet = tmp_path / "report.csv"
    env = {**os.environ, "DATABASE_URL": url, "LEADROUTER_RULES": POLICY}
    with sheet.open("wb") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "report", "--by", "source", "--csv"],
            stdout=handle,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            check=False,
            text=True,
        )

    assert done.returncode == 0, done.stderr
    assert sheet.read_bytes().startswith(b"by,group,")  # unchanged for the programs reading it
    assert "`--out FILE.csv` writes one Excel reads" in done.stderr
