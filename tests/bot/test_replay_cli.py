"""`leadrouter replay` as a user runs it: against the database `import` filled, the same
decisions as `simulate`, one line or row per lead, a summary, and nothing written."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.replay import COLUMNS, MOVES_SHOWN
from bot.service.intake import intake_many
from bot.service.unit_of_work import UnitOfWork
from routing.leads import parse_lead
from routing.policy import parse_policy
from routing.policy_version import version_of
from storage.db import open_database
from storage.migrate import upgrade
from tests.bot.conftest import EXAMPLES

runner = CliRunner()
POLICY = str(EXAMPLES / "routing.yml")
ACCOUNTS = str(EXAMPLES / "demo-accounts.csv")
LEADS = str(EXAMPLES / "demo-leads.csv")

# A change to try on the example's leads: nobody keeps hours (so the decisions do not depend on
# when the test runs), other teams and distributions, capacities, sticky accounts, other SLAs.
NEW_POLICY = """\
reps:
  - {id: alice, email: alice@example.com, capacity: 4, weight: 2}
  - {id: bob, email: bob@example.com, capacity: 3}
  - {id: carol, email: carol@example.com, skills: [healthcare]}
  - {id: dan, email: dan@example.com}
  - {id: erin, email: erin@example.com}
teams:
  big: {members: [alice, bob, dan], distribution: weighted}
  rest: {members: [carol, erin, dan], distribution: least_loaded}
qualify:
  - {name: Free email domain, when: {email_domain_type: free}, outcome: nurture}
accounts: {sticky: true}
sla: {default: 10m, by_source: {demo_request: 2m}, contact: 4h}
rules:
  - {name: Owner, when: {account.owner: {exists: true}}, assign: account_owner}
  - {name: Big, when: {employees: {gte: 1000}}, assign: {team: big}, contact_sla: 1h}
  - name: Health
    when: {industry: {in: [Healthcare, Biotech]}}
    assign: {team: rest, skill: healthcare}
  - {name: Europe, when: {region: EMEA}, assign: {team: rest}}
"""
# A replayed lead's `before` and `after`: what simulate prints of a decision, and the version.
SIMULATED = ["outcome", "rep", "team", "rule", "reason", "sla_seconds"]
ROUTED = [*SIMULATED, "policy_version"]
AFTER_ONLY = ["sla_due_at", "contact_sla_seconds"]


def cli(url: str, *args: str) -> Any:
    result = runner.invoke(app, list(args), env={"DATABASE_URL": url})
    assert "Traceback" not in result.output, result.output
    return result


def filled(url: str) -> str:
    """The example's accounts and leads imported into a new database, as a user would."""
    assert cli(url, "db", "upgrade").exit_code == 0
    assert cli(url, "accounts", "import", ACCOUNTS, "--rules", POLICY).exit_code == 0
    assert cli(url, "import", LEADS, "--rules", POLICY).exit_code == 0
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'leads.db'}"


@pytest.fixture
def new_policy(tmp_path: Path) -> str:
    path = tmp_path / "new.yml"
    path.write_text(NEW_POLICY, encoding="utf-8")
    return str(path)


def version_of_file(path: str) -> str:
    return version_of(Path(path).read_text(encoding="utf-8"))


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_replay_decides_as_simulate_does_on_the_same_leads_under_the_new_policy(
    sqlite_url: str, new_policy: str
) -> None:
    filled(sqlite_url)

    replayed = cli(sqlite_url, "replay", "--rules", new_policy, "--json")

    assert replayed.exit_code == 0, replayed.output
    rows = lines(replayed.stdout)
    # One import: every lead arrived in one transaction, at one moment, which simulate is given.
    [arrived] = {row["arrived_at"] for row in rows}
    simulate = ["simulate", LEADS, "--rules", new_policy, "--accounts", ACCOUNTS, "--json"]
    simulated = runner.invoke(app, [*simulate, "--now", arrived])
    assert simulated.exit_code == 0, simulated.output
    expected = lines(simulated.stdout)
    assert len(rows) == len(expected) == 50
    assert [row["id"] for row in rows] == [line["id"] for line in expected]
    assert [{key: row["after"][key] for key in SIMULATED} for row in rows] == [
        {key: line[key] for key in SIMULATED} for line in expected
    ]
    # Each side names the version of the policy that decided it: the file's text's hash.
    assert {row["before"]["policy_version"] for row in rows} == {version_of_file(POLICY)}
    assert {row["after"]["policy_version"] for row in rows} == {version_of_file(new_policy)}
    # The change is not a no-op: leads move, and all of the policy's paths are taken.
    assert 0 < sum(row["moved"] for row in rows) < 50
    assert {row["after"]["rule"] for row in rows} >= {"Owner", "Big", "Health", "Europe"}
    assert "Sticky account" in {row["after"]["rule"] for row in rows}


def test_json_has_the_documented_keys_and_csv_the_same_as_columns(
    sqlite_url: str, new_policy: str
) -> None:
    filled(sqlite_url)

    as_json = cli(sqlite_url, "replay", "--rules", new_policy, "--json")
    as_csv = cli(sqlite_url, "replay", "--rules", new_policy, "--csv")

    rows = lines(as_json.stdout)
    assert [list(row) for row in rows] == [["id", "arrived_at", "before", "after", "moved"]] * 50
    assert all(list(row["before"]) == ROUTED for row in rows)
    assert all(list(row["after"]) == [*ROUTED, *AFTER_ONLY] for row in rows)
    contact = {
        (row["after"]["outcome"], row["after"]["rule"], row["after"]["contact_sla_seconds"])
        for row in rows
        if row["after"]["rule"] in ("Big", "Owner", None)
    }
    assert {("assigned", "Big", 3600), ("assigned", "Owner", 14400)} <= contact
    assert all(c is None for outcome, _, c in contact if outcome != "assigned")
    table = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert table[0] == list(COLUMNS)
    assert len(table) == 51
    for row, line in zip(table[1:], rows, strict=True):
        flat = [
            line["id"],
            line["arrived_at"],
            *(line["before"][key] for key in ROUTED),
            *(line["after"][key] for key in [*ROUTED, *AFTER_ONLY]),
            "true" if line["moved"] else "false",
        ]
        assert row == ["" if value is None else str(value) for value in flat]
    assert "50 leads that arrived from" in as_json.stderr and "replayed" in as_csv.stderr


def test_the_summary_says_what_would_change(sqlite_url: str, new_policy: str) -> None:
    filled(sqlite_url)
    replayed = lines(cli(sqlite_url, "replay", "--rules", new_policy, "--json").stdout)
    moved = sum(row["moved"] for row in replayed)
    # The example's reps keep office hours, so which leads history gave a rep (and an SLA)
    # depends on the hour the import ran: the expected SLA rows come from the same leads' --json.
    sla_changes = Counter(
        (row["before"]["sla_seconds"], row["after"]["sla_seconds"])
        for row in replayed
        if row["before"]["sla_seconds"] != row["after"]["sla_seconds"]
    )

    result = runner.invoke(
        app, ["replay", "--rules", new_policy], env={"DATABASE_URL": sqlite_url, "COLUMNS": "200"}
    )

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "50 leads that arrived from" in text
    assert f"replayed: {moved} ({moved / 50:.1%}) would have gone elsewhere." in text
    before, after = version_of_file(POLICY)[:12], version_of_file(new_policy)[:12]
    assert f"Decided by policy versions: {before} (50)." in text
    assert f"Replayed under: {new_policy} (version {after}). Nothing was written." in text
    assert "Unmatched (no rule matched): 3 (6.0%) before" in text
    for title in ("Moves by rule", "Moves by team", "Moves by rep", "Leads per rep", "SLA changes"):
        assert title in text
    sla_rows = [line.split() for line in text.split("SLA changes")[1].splitlines()]
    shown = {(row[0], row[1]): int(row[2]) for row in sla_rows if len(row) > 2 and row[2].isdigit()}
    assert sla_changes, "the new policy's SLAs differ from the example's"
    expected = {
        (_duration(before), _duration(after)): count
        for (before, after), count in sla_changes.items()
    }
    assert len(shown) == min(len(expected), MOVES_SHOWN)
    assert all(expected[change] == count for change, count in shown.items())
    counts = [int(row[2]) for row in sla_rows if len(row) > 2 and row[2].isdigit()]
    assert counts == sorted(counts, reverse=True)


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "(none)"
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def test_the_summary_marks_a_rep_or_team_the_new_policy_removed_as_the_reason_for_a_move(
    sqlite_url: str, tmp_path: Path
) -> None:
    filled(sqlite_url)
    example = Path(POLICY).read_text(encoding="utf-8")
    without_carol = tmp_path / "without-carol.yml"
    # Bob keeps no office hours here, so he can take carol's leads whenever the import ran
    # (at 03:00 UTC on a Saturday he would be off, and her leads queued instead).
    without_carol.write_text(
        example.replace('    hours: "08:00-16:00"\n', "")
        .replace("members: [carol, bob]", "members: [bob]")
        .replace("  - id: carol\n    name: Carol Chen\n", "  - id: zoe\n    name: Zoe Zhu\n")
        .replace("  emea:\n", "  europe:\n")
        .replace("assign: {team: emea}", "assign: {team: europe}"),
        encoding="utf-8",
    )

    result = runner.invoke(
        app,
        ["replay", "--rules", str(without_carol)],
        env={"DATABASE_URL": sqlite_url, "COLUMNS": "200"},
    )

    assert result.exit_code == 0, result.output
    by_rep = result.stdout.split("Moves by rep")[1].split("Leads per rep")[0]
    assert any(line.split()[:3] == ["carol", "(removed)", "bob"] for line in by_rep.splitlines())
    loads = result.stdout.split("Leads per rep")[1].split("SLA changes")[0]
    assert any(line.split()[:2] == ["carol", "(removed)"] for line in loads.splitlines())
    by_team = result.stdout.split("Moves by team")[1].split("Moves by rep")[0]
    assert any(line.split()[:3] == ["emea", "(removed)", "europe"] for line in by_team.splitlines())
    assert "europe (removed)" not in by_team and "bob (removed)" not in by_rep
    assert (
        f"(removed): {without_carol} has no rep or team of that name: its leads went elsewhere."
        in " ".join(result.stdout.split())
    )


def test_a_summary_with_nothing_removed_marks_nothing(sqlite_url: str) -> None:
    filled(sqlite_url)

    result = cli(sqlite_url, "replay", "--rules", POLICY)

    assert result.exit_code == 0, result.output
    assert "(removed)" not in result.stdout


def test_the_same_policy_replayed_moves_nothing(sqlite_url: str) -> None:
    filled(sqlite_url)

    result = cli(sqlite_url, "replay", "--rules", POLICY, "--json")

    assert not any(row["moved"] for row in lines(result.stdout))


def every_row(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""

    async def read() -> dict[str, list[tuple[Any, ...]]]:
        db = open_database(url)
        try:
            rows = {}
            async with db.reading() as session:
                for table in SQLModel.metadata.sorted_tables:
                    query = select(table).order_by(*table.primary_key.columns)
                    rows[table.name] = [tuple(r) for r in (await session.execute(query)).all()]
            return rows
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_a_replay_leaves_a_sqlite_database_byte_for_byte_as_it_was(
    sqlite_url: str, tmp_path: Path, new_policy: str
) -> None:
    filled(sqlite_url)
    rows = every_row(sqlite_url)
    files = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in tmp_path.glob("leads.db*")
    }

    for extra in ([], ["--json"], ["--csv"]):
        assert cli(sqlite_url, "replay", "--rules", new_policy, *extra).exit_code == 0

    assert every_row(sqlite_url) == rows
    after = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in tmp_path.glob("leads.db*")
    }
    assert after["leads.db"] == files["leads.db"]


def test_a_replay_leaves_every_postgresql_row_as_it_was(postgres_url: str, new_policy: str) -> None:
    filled(postgres_url)
    rows = every_row(postgres_url)

    result = cli(postgres_url, "replay", "--rules", new_policy, "--json")

    assert result.exit_code == 0, result.output
    assert len(lines(result.stdout)) == 50
    assert every_row(postgres_url) == rows


def test_a_policy_with_errors_is_refused_with_them_before_the_database_is_opened(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("reps:\n  - id: a\n    weight: heavy\nrules: []\n", encoding="utf-8")
    database = tmp_path / "never.db"

    result = cli(f"sqlite:///{database}", "replay", "--rules", str(bad))

    assert result.exit_code == 1
    assert "error: the policy has problems:" in result.stderr
    assert f"{bad}:3:5: reps[0].weight: must be a valid integer; got 'heavy'" in result.stderr
    assert result.stdout == "" and not database.exists()


def test_a_missing_or_unmigrated_database_is_named_and_left_alone(
    tmp_path: Path, new_policy: str
) -> None:
    missing = tmp_path / "missing.db"
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")

    nothing = cli(f"sqlite:///{missing}", "replay", "--rules", new_policy)
    unmigrated = cli(f"sqlite:///{empty}", "replay", "--rules", new_policy)

    assert nothing.exit_code == 1 and f"no database at {missing}" in nothing.stderr
    assert not missing.exists()
    assert unmigrated.exit_code == 1
    assert "the database is at revision none" in unmigrated.stderr
    assert "leadrouter db upgrade" in unmigrated.stderr
    assert empty.read_bytes() == b""


def test_an_empty_window_says_so_and_prints_no_lead(sqlite_url: str, new_policy: str) -> None:
    filled(sqlite_url)
    replay = ["replay", "--rules", new_policy, "--from", "2020-01-01", "--to", "2020-01-31"]

    summary = cli(sqlite_url, *replay)
    as_json = cli(sqlite_url, *replay, "--json")
    as_csv = cli(sqlite_url, *replay, "--csv")

    assert summary.exit_code == 0
    assert summary.stdout == (
        "No lead arrived from 2020-01-01 00:00 UTC until 2020-02-01 00:00 UTC: nothing to replay.\n"
    )
    assert as_json.exit_code == 0 and as_json.stdout == ""
    assert as_csv.stdout.splitlines() == [",".join(COLUMNS)]
    assert "nothing to replay" in as_json.stderr


def stored_at(url: str, arrivals: dict[str, datetime]) -> None:
    """Leads routed by the example policy at the given moments, through the service layer."""

    text = Path(POLICY).read_text(encoding="utf-8")

    async def fill() -> None:
        upgrade(url)
        db = open_database(url)
        policy = parse_policy(text, source=POLICY)
        moment = [datetime.now(UTC)]
        uow = UnitOfWork(db=db, policy=lambda: policy, clock=lambda: moment[0])
        try:
            for lead_id, at in arrivals.items():
                moment[0] = at
                await intake_many(uow, [parse_lead({"id": lead_id, "email": f"a@{lead_id}.io"})])
        finally:
            await uow.aclose()
            await db.dispose()

    asyncio.run(fill())


def test_a_window_is_since_a_while_ago_or_whole_days_from_and_to(
    sqlite_url: str, new_policy: str
) -> None:
    now = datetime.now(UTC)
    stored_at(
        sqlite_url,
        {
            "old": datetime(2025, 10, 31, 23, 59, tzinfo=UTC),
            "first": datetime(2025, 11, 1, 0, 0, tzinfo=UTC),
            "last": datetime(2025, 11, 2, 23, 59, tzinfo=UTC),
            "after": datetime(2025, 11, 3, 0, 0, tzinfo=UTC),
            "week": now - timedelta(days=6),
            "hour": now - timedelta(minutes=30),
        },
    )

    def ids(*window: str) -> list[str]:
        result = cli(sqlite_url, "replay", "--rules", new_policy, "--json", *window)
        assert result.exit_code == 0, result.output
        return [row["id"] for row in lines(result.stdout)]

    assert ids("--from", "2025-11-01", "--to", "2025-11-02") == ["first", "last"]
    assert ids("--since", "1h") == ["hour"]
    assert ids("--since", "1w") == ["week", "hour"]
    assert ids() == ["week", "hour"]  # the last 30 days


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-01"], "give both --from and --to"),
        (
            ["--since", "7d", "--from", "2026-11-01", "--to", "2026-11-02"],
            "give both --from and --to",
        ),
        (
            ["--since", "soon"],
            "error: --since is a count of hours, days or weeks, such as 7d, not 'soon'",
        ),
        (["--from", "2026-11-05", "--to", "2026-11-01"], "must not be before --from (2026-11-05)"),
        (
            ["--from", "Nov 1", "--to", "2026-11-02"],
            "--from 'Nov 1' is not a date; write it as 2026-11-01",
        ),
        (["--json", "--csv"], "--csv and --json are two ways to print the replay: choose one"),
    ],
)
def test_a_window_or_output_that_cannot_be_read_is_a_sentence(
    args: list[str], message: str, tmp_path: Path, new_policy: str
) -> None:
    database = tmp_path / "never.db"
    result = cli(f"sqlite:///{database}", "replay", "--rules", new_policy, *args)

    assert result.exit_code == 1
    assert message in result.stderr
    assert not database.exists()


def test_replay_of_a_missing_new_policy_does_not_offer_to_write_the_active_version_there(
    tmp_path: Path,
) -> None:
    database = tmp_path / "leads.db"
    url = f"sqlite:///{database}"
    assert cli(url, "policy", "activate", POLICY).exit_code == 0
    new = tmp_path / "new.yml"

    result = cli(url, "replay", "--rules", str(new))

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {new}: no such policy file. Put your policy file")
    assert "policy show" not in result.stderr
