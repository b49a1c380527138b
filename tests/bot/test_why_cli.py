"""`leadrouter why LEAD`: a stored lead's full explanation and what happened since, for the admin
at a terminal, as `/routing why` gives it to a manager in Slack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.policy_file import load_policy
from bot.service.outcomes import Reported, record_posted_events
from bot.service.unit_of_work import UnitOfWork
from routing.report import EventKind, OutcomeEvent
from storage.db import open_database
from tests.bot.conftest import EXAMPLES
from tests.bot.webhook import row_counts

runner = CliRunner()
POLICY = str(EXAMPLES / "routing.yml")
LEADS = (
    "id,email,company,country,employees,industry,source,crm_system,crm_id\r\n"
    "W-1,ana@initech.com,Initech,US,1500,Software,demo_request,salesforce,00Q5e00000WhY1\r\n"
    "W-2,jo@nowhere-corp.io,Nowhere Corp,BR,,Mining,web,,\r\n"
)
ACCOUNTS = "id,name,domain,owner\r\nACC-1,Initech,initech.com,alice\r\n"


def run(database: Path, *words: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        list(words),
        env={
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "LEADROUTER_RULES": POLICY,
            **(env or {}),
        },
    )
    return result.exit_code, result.stdout, result.stderr


def stored(tmp_path: Path) -> Path:
    database = tmp_path / "leads.db"
    (tmp_path / "accounts.csv").write_text(ACCOUNTS)
    (tmp_path / "leads.csv").write_text(LEADS)
    for words in (
        ("accounts", "import", str(tmp_path / "accounts.csv")),
        ("import", str(tmp_path / "leads.csv")),
    ):
        code, _, stderr = run(database, *words)
        assert code == 0, stderr
    return database


def test_why_prints_the_explanation_of_a_stored_lead_and_the_version_that_decided_it(
    tmp_path: Path,
) -> None:
    database = stored(tmp_path)

    code, stdout, stderr = run(database, "why", "W-1")

    assert code == 0, stderr
    assert stdout.startswith("Lead W-1: ana@initech.com, Initech")
    assert "Account: Initech" in stdout
    assert "✓ Existing account owner" in stdout
    assert "Outcome:" in stdout
    assert "Policy version " in stdout


def test_why_finds_a_lead_by_its_email_or_its_crm_id_as_slack_does(tmp_path: Path) -> None:
    database = stored(tmp_path)

    by_email = run(database, "why", "ANA@initech.com")
    by_crm_id = run(database, "why", "00Q5e00000WhY1")

    assert by_email[0] == 0 and by_email[1].startswith("Lead W-1:"), by_email[2]
    assert by_crm_id[0] == 0 and by_crm_id[1].startswith("Lead W-1:"), by_crm_id[2]


def test_why_of_a_queued_lead_says_no_rule_matched(tmp_path: Path) -> None:
    database = stored(tmp_path)

    code, stdout, stderr = run(database, "why", "W-2")

    assert code == 0, stderr
    assert "Lead W-2" in stdout
    assert "unmatched queue" in stdout


def test_why_of_an_unknown_lead_is_a_sentence_and_exit_1(tmp_path: Path) -> None:
    database = stored(tmp_path)

    code, stdout, stderr = run(database, "why", "W-404")

    assert code == 1
    assert stdout == ""
    assert stderr.strip() == (
        "error: no lead W-404 in the database: give a lead's id, e-mail or CRM id"
    )


def test_why_without_a_database_is_a_sentence_and_creates_none(tmp_path: Path) -> None:
    database = tmp_path / "nothing-here.db"

    code, _, stderr = run(database, "why", "W-1")

    assert code == 1
    assert stderr.startswith(f"error: no database at {database}")
    assert not database.exists()


async def won_in(database: Path, lead: str, amount: str, currency: str) -> None:
    """The lead won, as a CRM tells it, recorded where amounts are in US dollars."""
    db = open_database(f"sqlite+aiosqlite:///{database}")
    policy = load_policy(Path(POLICY))
    uow = UnitOfWork(db=db, policy=lambda: policy, currency="USD")
    event = OutcomeEvent(EventKind.WON, datetime.now(UTC), Decimal(amount), currency=currency)
    try:
        await record_posted_events(uow, [Reported(lead, event, "crm", f"deal-{lead}")])
    finally:
        await uow.aclose()
        await db.dispose()


def test_why_writes_a_won_amount_with_the_currency_set_and_tells_one_left_out(
    tmp_path: Path,
) -> None:
    database = stored(tmp_path)
    asyncio.run(won_in(database, "W-1", "48000", "USD"))
    asyncio.run(won_in(database, "W-2", "9000", "GBP"))
    env = {"LEADROUTER_CURRENCY": "USD"}

    code, in_ours, stderr = run(database, "why", "W-1", env=env)
    again, in_theirs, _ = run(database, "why", "W-2", env=env)

    assert code == again == 0, stderr
    assert "Won · 48,000.00 USD (crm)" in in_ours
    assert "Amount left out · the won amount was in GBP, and amounts here are in USD" in in_theirs
    assert "9,000" not in in_theirs


def activated(database: Path) -> str:
    """The example policy activated, as `serve` or an admin would; its short version."""
    code, stdout, stderr = run(database, "policy", "activate", POLICY)
    assert code == 0, stderr
    return stdout.split("version ", 1)[1].split()[0]


def test_why_without_a_policy_file_uses_the_version_active_in_the_database_and_says_so(
    tmp_path: Path,
) -> None:
    database = stored(tmp_path)
    version = activated(database)
    gone = tmp_path / "routing.yml"  # LEADROUTER_RULES names a file that is not there

    code, stdout, stderr = run(database, "why", "W-1", env={"LEADROUTER_RULES": str(gone)})

    assert code == 0, stderr
    assert stdout.startswith("Lead W-1: ana@initech.com, Initech")
    assert stderr.splitlines() == [
        f"note: no policy file at {gone}: using version {version}, the one active in the "
        f"database (activated from {POLICY})"
    ]


def test_why_without_a_policy_file_nor_an_active_version_is_one_sentence_and_exit_1(
    tmp_path: Path,
) -> None:
    database = stored(tmp_path)  # `import` keeps its version but activates none
    gone = tmp_path / "routing.yml"

    code, stdout, stderr = run(database, "why", "W-1", env={"LEADROUTER_RULES": str(gone)})

    assert code == 1
    assert stdout == ""
    assert stderr.startswith(
        f"error: {gone}: no such policy file, and no policy version is active in the database "
        "(DATABASE_URL) to use instead. "
    )
    assert "Traceback" not in stderr


def test_why_with_rules_naming_a_missing_file_says_so_even_with_an_active_version(
    tmp_path: Path,
) -> None:
    database = stored(tmp_path)
    activated(database)
    gone = tmp_path / "mistyped.yml"

    code, _, stderr = run(database, "why", "W-1", "--rules", str(gone))

    assert code == 1
    assert stderr.startswith(f"error: {gone}: no such policy file.")


def test_why_of_a_lead_routed_by_a_version_never_activated_says_where_its_text_is(
    tmp_path: Path,
) -> None:
    database = stored(tmp_path)  # `import` keeps its file's version without activating it

    code, stdout, stderr = run(database, "why", "W-1")

    assert code == 0, stderr
    (line,) = [line for line in stdout.splitlines() if line.startswith("Policy version ")]
    version = line.split()[2].rstrip(",")
    assert line == (
        f"Policy version {version}, never activated (as `import` keeps the version of the file "
        f"it routes by): `leadrouter policy show {version}` prints it"
    )
    shown = run(database, "policy", "show", version)
    assert shown[0] == 0 and shown[1] == Path(POLICY).read_text(encoding="utf-8")


def mid_edit(tmp_path: Path) -> Path:
    """The example policy as an admin leaves it halfway through an edit: failing its checks."""
    policy = tmp_path / "routing.yml"
    policy.write_text(Path(POLICY).read_text(encoding="utf-8") + "\nfallback: {queue: x}\n")
    return policy


def test_why_while_the_policy_file_fails_its_checks_answers_by_the_active_version_and_says_so(
    tmp_path: Path,
) -> None:
    database = stored(tmp_path)
    version = activated(database)
    editing = mid_edit(tmp_path)

    code, stdout, stderr = run(database, "why", "W-1", env={"LEADROUTER_RULES": str(editing)})

    assert code == 0, stderr
    assert stdout.startswith("Lead W-1: ana@initech.com, Initech")
    assert stderr.splitlines() == [
        f"note: {editing} has problems (`leadrouter check` shows them): using version "
        f"{version}, the one active in the database (activated from {POLICY})"
    ]


def test_report_while_the_policy_file_fails_its_checks_reads_by_the_active_version(
    tmp_path: Path,
) -> None:
    database = stored(tmp_path)
    activated(database)
    editing = mid_edit(tmp_path)

    code, stdout, stderr = run(database, "report", "--csv", env={"LEADROUTER_RULES": str(editing)})

    assert code == 0, stderr
    assert stdout.startswith("by,group,")
    assert stderr.startswith(f"note: {editing} has problems (`leadrouter check` shows them)")


def test_why_while_the_policy_file_fails_and_no_version_is_active_lists_its_problems(
    tmp_path: Path,
) -> None:
    database = stored(tmp_path)  # `import` keeps its version but activates none
    editing = mid_edit(tmp_path)

    code, stdout, stderr = run(database, "why", "W-1", env={"LEADROUTER_RULES": str(editing)})

    assert code == 1
    assert stdout == ""
    assert stderr.startswith("error: the policy has problems:")
    assert "duplicate key `fallback`" in stderr


def test_why_with_rules_naming_a_file_that_fails_its_checks_refuses_it(tmp_path: Path) -> None:
    database = stored(tmp_path)
    activated(database)

    code, _, stderr = run(database, "why", "W-1", "--rules", str(mid_edit(tmp_path)))

    assert code == 1
    assert stderr.startswith("error: the policy has problems:")


def test_the_commands_that_change_things_refuse_a_policy_file_that_fails_its_checks(
    tmp_path: Path,
) -> None:
    database = stored(tmp_path)
    activated(database)
    editing = mid_edit(tmp_path)
    (tmp_path / "more.csv").write_text(LEADS.replace("W-", "M-"))
    before = row_counts(database)

    for words in (
        ("import", str(tmp_path / "more.csv")),
        ("accounts", "import", str(tmp_path / "accounts.csv")),
        ("simulate", str(tmp_path / "more.csv")),
        ("replay",),
        ("policy", "activate", str(editing)),
    ):
        code, _, stderr = run(database, *words, env={"LEADROUTER_RULES": str(editing)})
        assert code == 1, words
        assert "duplicate key `fallback`" in stderr, words
        assert "using version" not in stderr, words

    assert row_counts(database) == before
