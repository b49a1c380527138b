"""The command line, run in-process through typer's runner and once as a real subprocess."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POLICY = str(EXAMPLES / "routing.yml")
runner = CliRunner()

JSON_KEYS = ["id", "outcome", "rep", "team", "rule", "reason", "sla_seconds"]


def test_check_summarises_a_good_policy() -> None:
    result = runner.invoke(app, ["check", POLICY])
    assert result.exit_code == 0
    assert result.stdout.strip().endswith(
        "ok: 5 reps, 3 teams, 6 rules, 2 qualification rules, 1 manager"
    )


def test_check_counts_one_of_anything_in_the_singular(tmp_path: Path) -> None:
    policy = tmp_path / "routing.yml"
    policy.write_text(
        "reps:\n  - {id: alice, slack: U01ALICE}\nteams:\n  core: {members: [alice]}\n"
        "rules:\n  - {name: Everyone, assign: {team: core}}\n"
    )
    result = runner.invoke(app, ["check", str(policy)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"{policy}: ok: 1 rep, 1 team, 1 rule, 0 qualification rules, 0 managers"
    )


def test_check_takes_the_policy_with_rules_as_every_other_command_does() -> None:
    result = runner.invoke(app, ["check", "--rules", POLICY])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{POLICY}: ok: 5 reps")


def test_check_with_a_file_and_another_rules_file_is_a_sentence(tmp_path: Path) -> None:
    other = tmp_path / "other.yml"
    result = runner.invoke(app, ["check", POLICY, "--rules", str(other)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: give the policy once: {POLICY} or --rules {other}, not both"
    )


def test_check_lists_every_error_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("reps:\n  - id: a\n    weight: heavy\nteams:\n  t: {members: [b]}\n")
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3:5: reps[0].weight: must be a valid integer; got 'heavy'" in result.stderr
    assert f"{bad}:5:17: teams.t.members[0]: `b` is not a rep defined under reps" in result.stderr
    assert result.stderr.strip().endswith("2 errors")
    assert "Traceback" not in result.output


def test_check_reads_the_policy_path_from_the_environment(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check"], env={"LEADROUTER_RULES": str(tmp_path / "missing.yml")})
    assert result.exit_code == 1
    assert "missing.yml: no such policy file" in result.stderr


def test_a_policy_file_named_but_not_there_says_to_put_it_there_or_mount_it() -> None:
    # As in the image, whose LEADROUTER_RULES is /config/routing.yml: a volume not mounted.
    result = runner.invoke(
        app,
        ["serve"],
        env={"LEADROUTER_RULES": "/config/routing.yml", "LEADROUTER_WEBHOOK_SECRET": "s" * 32},
    )
    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert "/config/routing.yml: no such policy file" in said
    assert 'mount it: -v "$PWD/routing.yml:/config/routing.yml:ro"' in said
    assert "cp " not in said  # not the example to copy: the file they have, where it is named


def test_simulate_json_prints_exactly_the_documented_keys(tmp_path: Path) -> None:
    leads = tmp_path / "leads.jsonl"
    leads.write_text(
        '{"id": "A", "email": "cto@bigco.com", "country": "US", "employees": 5000}\n'
        '{"id": "B", "email": "x@gmail.com"}\n'
        "this line is not json\n"
        '{"id": "C", "email": "ops@firm.jp", "country": "JP", "employees": 3000}\n'
    )
    result = runner.invoke(
        app, ["simulate", str(leads), "--rules", POLICY, "--now", "2026-11-17T17:15:00Z", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [list(r) for r in rows] == [JSON_KEYS] * 3
    assert rows[0] == {
        "id": "A",
        "outcome": "assigned",
        "rep": "alice",
        "team": "enterprise",
        "rule": "Enterprise North America",
        "reason": "Enterprise North America · weighted round robin",
        "sla_seconds": 300,
    }
    assert rows[1]["outcome"] == "nurture" and rows[1]["rep"] is None
    assert rows[2]["outcome"] == "queued" and rows[2]["sla_seconds"] is None
    assert f"{leads}:3: skipped: not valid JSON" in result.stderr


def test_simulate_keeps_leads_open_so_capacity_binds_over_the_run(tmp_path: Path) -> None:
    policy = tmp_path / "p.yml"
    policy.write_text(
        "reps:\n  - {id: a, capacity: 2}\n  - {id: b, capacity: 1}\n"
        "teams:\n  t: {members: [a, b], distribution: least_loaded}\n"
        "rules:\n  - {name: All, assign: {team: t}}\n"
    )
    leads = tmp_path / "leads.csv"
    leads.write_text("id,company\n1,x\n2,x\n3,x\n4,x\n")
    result = runner.invoke(app, ["simulate", str(leads), "--rules", str(policy), "--json"])
    reps = [json.loads(line)["rep"] for line in result.stdout.splitlines()]
    assert reps == ["a", "b", "a", None]


def test_simulate_marks_reps_out_of_office_and_rejects_unknown_ones(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "id,email,country,employees\n1,cto@bigco.com,US,5000\n2,cfo@bigco.com,US,5000\n"
    )
    args = ["simulate", str(leads), "--rules", POLICY, "--now", "2026-11-17T17:15:00Z", "--json"]
    result = runner.invoke(app, [*args, "--ooo", "alice"])
    assert [json.loads(line)["rep"] for line in result.stdout.splitlines()] == ["bob", "bob"]
    unknown = runner.invoke(app, [*args, "--ooo", "zoe"])
    assert unknown.exit_code == 1
    assert "--ooo zoe: no rep with that id" in unknown.stderr


def test_simulate_rejects_a_bad_now_with_a_sentence(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("id\n1\n")
    result = runner.invoke(app, ["simulate", str(leads), "--rules", POLICY, "--now", "tuesday"])
    assert result.exit_code == 1
    assert "--now 'tuesday' is not an ISO-8601 time" in result.stderr


def test_simulate_with_accounts_routes_to_owners_and_reports_bad_rows(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        "id,name,domain,owner,tier\nA1,Initech,initech.com,bob@example.com,Gold\nA2,,x.com,,\n"
    )
    leads = tmp_path / "leads.csv"
    leads.write_text("id,email\n1,p@initech.com\n")
    result = runner.invoke(
        app,
        [
            "simulate",
            str(leads),
            "--rules",
            POLICY,
            "--accounts",
            str(accounts),
            "--json",
            "--now",
            "2026-11-17T17:15:00Z",
        ],
    )
    assert json.loads(result.stdout)["rep"] == "bob"
    assert f"{accounts}:3: an account needs an id and a name" in result.stderr


def test_simulate_table_shows_each_lead_and_the_distribution(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    rows = "".join(f"{i},cto{i}@bigco.com,US,5000\n" for i in range(6))
    leads.write_text("id,email,country,employees\n" + rows)
    result = runner.invoke(
        app,
        ["simulate", str(leads), "--rules", POLICY, "--now", "2026-11-17T17:15:00Z"],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0
    assert "6 leads routed" in result.stdout
    assert "team enterprise · weighted" in result.stdout
    # A count the weights give each rep of the team's 6 leads (2:1), not a share.
    assert "┃ rep         ┃ leads ┃ expected leads ┃" in result.stdout
    assert "│ Alice Adams │     4 │            4.0 │" in result.stdout
    assert "│ Bob Brown   │     2 │            2.0 │" in result.stdout


def test_a_missing_leads_file_is_a_sentence() -> None:
    result = runner.invoke(app, ["simulate", "/nonexistent/leads.csv", "--rules", POLICY])
    assert result.exit_code == 1
    assert "no such file" in result.stderr


def test_the_demo_runs_as_an_installed_command_and_covers_every_branch() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "leadrouter"), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for branch in (
        "Existing account owner · Alice Adams owns Initech",  # named account by domain
        "Alice Adams owns Tyrell Corporation",  # fuzzy company name
        "Free email domain → nurture",
        "Students → disqualified",
        "Sticky account Stark Industries",
        "EMEA · least loaded · Dan Doyle is outside working hours",  # territory, off hours
        "Enterprise North America · weighted round robin",  # segment
        "→ fallback team smb",  # skills and a rule fallback, Carol being out of office
        "No rule matched → unmatched queue",
        "How the assignment card reads in Slack",
    ):
        assert branch in text, branch
    assert "demo-leads.csv:52: skipped:" in done.stderr


def test_the_demo_card_wraps_its_reason_inside_the_panel_on_a_narrow_terminal() -> None:
    result = runner.invoke(app, ["demo"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    card = result.stdout.split("How the assignment card reads in Slack", 1)[1]
    card = card.split("leadrouter why", 1)[0]
    assert "· round robin" in card, "the reason was cut off at the panel's edge"


def test_the_demo_table_on_an_80_column_terminal_breaks_rule_names_between_words() -> None:
    result = runner.invoke(app, ["demo"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    table = result.stdout.split("How the assignment card reads in Slack", 1)[0]
    # "Enterprise" cut as "Enterpri" / "se North": the rule column narrower than its words.
    assert re.search(r"Enterpri\s", table) is None
    assert re.search(r"speciali\s", table) is None
    assert "Enterprise" in table and "specialist" in table


def test_check_warns_about_a_rep_slack_cannot_reach_and_a_name_given_as_a_slack_id(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "routing.yml"
    policy.write_text(
        "reps:\n"
        "  - {id: ann, slack: U0ANN}\n"
        "  - {id: bob, slack: '@bob'}\n"
        "  - {id: cy}\n"
        "  - {id: dee, email: dee@acme.example}\n"
        "managers:\n"
        "  - {id: mia, slack: mia.moss}\n"
        "rules:\n  - {name: All, assign: {rep: ann}}\n"
    )
    result = runner.invoke(app, ["check", str(policy)])
    assert result.exit_code == 0
    warnings = result.stderr
    assert f"{policy}:3:" in warnings  # the line of bob's entry
    assert "warning: reps[1].slack: `@bob` is a name, not a Slack member id" in warnings
    assert "reps[2]: `cy` has neither `slack` nor `email`" in warnings
    assert "managers[0].slack: `mia.moss` is a name, not a Slack member id" in warnings
    assert "`dee`" not in warnings and "`ann`" not in warnings  # an e-mail is enough for Slack
    assert result.stdout.strip().endswith("3 warnings")


def test_the_demo_card_is_the_slack_card_with_the_leads_contact_details_and_id() -> None:
    result = runner.invoke(app, ["demo"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    found = re.search(r"leadrouter why (L-\d+)", result.stdout)
    assert found is not None
    lead_id = found.group(1)
    with (EXAMPLES / "demo-leads.csv").open(newline="") as rows:
        lead = next(row for row in csv.DictReader(rows) if row["id"] == lead_id)
    panel = result.stdout.split("How the assignment card reads in Slack", 1)[1]
    panel = panel.split(f"leadrouter why {lead_id}", 1)[0]
    card = "\n".join(line.strip("│ ") for line in panel.splitlines())
    assert lead["email"] and lead["phone"] and lead["website"]  # the demo shows a whole card
    for shown in (
        f"{lead['first_name']} {lead['last_name']} · {lead['company']}",  # the header
        f"E-mail: {lead['email']}",
        f"Phone: {lead['phone']}",
        f"Website: {lead['website']}",
        f"Lead {lead_id}",
        "Why you: ",
        "[ Claim ]  [ Reject ]  [ I'm out ]",
    ):
        assert shown in card, shown
    assert "New lead for" not in card  # the demo's own wording, which the card never had


def test_simulate_routes_a_repeated_id_once_as_import_stores_it(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "id,email,country,employees\n"
        "D-1,cto@bigco.com,US,5000\n"
        "D-1,cto@bigco.com,US,5000\n"  # exported twice
        "D-1,ceo@other.com,US,5000\n"  # another lead under the same id
        "D-2,cfo@bigco.com,US,5000\n"
    )
    result = runner.invoke(
        app, ["simulate", str(leads), "--rules", POLICY, "--now", "2026-11-17T17:15:00Z", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["D-1", "D-2"]
    assert result.stderr.splitlines() == [
        f"{leads}:3: skipped: the same lead as line 2 again: import stores it once",
        f"{leads}:4: skipped: id: 'D-1' was already used on line 2 for a lead with another "
        "e-mail address, so this row would not be routed; give each lead its own id",
    ]


def test_python_dash_m_bot_cli_is_the_leadrouter_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("leadrouter ")


def test_simulate_without_a_policy_file_routes_by_the_version_active_in_the_database(
    tmp_path: Path,
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}"}
    activated = runner.invoke(app, ["policy", "activate", POLICY], env=env)
    assert activated.exit_code == 0, activated.output
    gone = tmp_path / "routing.yml"

    result = runner.invoke(
        app,
        ["simulate", str(EXAMPLES / "demo-leads.csv"), "--json"],
        env={**env, "LEADROUTER_RULES": str(gone)},
    )

    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"note: no policy file at {gone}: using version ")
    assert len(result.stdout.splitlines()) == 50


def test_simulate_without_a_policy_file_nor_a_database_is_one_sentence(tmp_path: Path) -> None:
    database = tmp_path / "leads.db"
    gone = tmp_path / "routing.yml"

    result = runner.invoke(
        app,
        ["simulate", str(EXAMPLES / "demo-leads.csv")],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "LEADROUTER_RULES": str(gone)},
    )

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: {gone}: no such policy file, and no policy version is active in the database"
    )
    assert not database.exists()  # looked for, not made


def test_check_of_a_missing_file_while_the_database_holds_a_version_says_to_write_it_back(
    tmp_path: Path,
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}"}
    activated = runner.invoke(app, ["policy", "activate", POLICY], env=env)
    assert activated.exit_code == 0, activated.output
    version = activated.stdout.split("version ", 1)[1].split()[0]
    gone = tmp_path / "routing.yml"

    result = runner.invoke(app, ["check"], env={**env, "LEADROUTER_RULES": str(gone)})

    assert result.exit_code == 1
    # Not "start from the example": copied there, it would replace the policy being served.
    assert result.stderr.strip() == (
        f"{gone}: no such policy file. The database's active version is {version}: "
        f"`leadrouter policy show {version} > {gone}` writes it back there (or point "
        "LEADROUTER_RULES at your policy file)"
    )


def test_simulate_and_check_leads_count_one_lead_in_the_singular(tmp_path: Path) -> None:
    leads = tmp_path / "one.csv"
    leads.write_text("id,email,company\nS-1,s@initech.com,Initech\n")

    simulated = runner.invoke(app, ["simulate", str(leads), "--rules", POLICY])
    checked = runner.invoke(app, ["check", POLICY, "--leads", str(leads)])

    assert simulated.exit_code == checked.exit_code == 0, simulated.output + checked.output
    assert "1 lead routed" in simulated.stdout
    assert f"{leads}: 1 lead routed in memory" in checked.stdout
