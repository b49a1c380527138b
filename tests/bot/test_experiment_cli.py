"""`leadrouter experiment list`, `promote` and `stop`, and `report --by arm`, on a SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.policy_file import read_policy_text
from routing.experiments import CANDIDATE, CONTROL, position_of
from routing.policy_version import short_version, version_of
from tests.service.support import TRIO_POLICY

runner = CliRunner()
POLICY = TRIO_POLICY + (
    "experiments:\n"
    "  # least loaded on half the accounts\n"
    "  - name: loads\n"
    "    share: 50\n"
    "    team: trio\n"
    "    distribution: least_loaded\n"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY, encoding="utf-8")
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
        "LEADROUTER_RULES": str(rules),
    }


def rules_text(env: dict[str, str]) -> str:
    return Path(env["LEADROUTER_RULES"]).read_text(encoding="utf-8")


def test_promote_writes_and_activates_the_policy_with_the_candidate_applied(
    env: dict[str, str],
) -> None:
    result = runner.invoke(app, ["experiment", "promote", "loads", "--by", "mia"], env=env)

    assert result.exit_code == 0, result.output
    text = rules_text(env)
    assert "experiments" not in text and "distribution: least_loaded, manager: mia" in text
    version = short_version(version_of(text))
    assert result.stdout.strip().startswith(
        f"experiment loads promoted: version {version} activated (none was before) and written "
        f"to {env['LEADROUTER_RULES']}"
    )
    history = runner.invoke(app, ["policy", "history"], env=env)
    assert f"{version}" in history.stdout
    assert "leadrouter experiment promote by mia" in history.stdout


def test_stop_leaves_the_control_for_every_lead(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["experiment", "stop", "loads"], env=env)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("experiment loads stopped: version ")
    assert rules_text(env) == TRIO_POLICY


def test_an_unknown_experiment_is_a_sentence_and_changes_nothing(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["experiment", "promote", "lods"], env=env)

    assert result.exit_code == 1
    assert "the policy has no experiment named `lods` (its experiments: loads)" in result.stderr
    assert "Traceback" not in result.output
    assert rules_text(env) == POLICY
    history = runner.invoke(app, ["policy", "history"], env=env)
    assert "No policy version has been activated yet" in history.stdout


def test_list_and_report_by_arm_show_each_arms_leads_and_the_verdicts(
    tmp_path: Path, env: dict[str, str]
) -> None:
    domains = [f"firm{n}.com" for n in range(8)]
    rows = [f"L-{n},buyer{n}@{domains[n % 8]}" for n in range(40)]
    leads = tmp_path / "leads.csv"
    leads.write_text("id,email\n" + "\n".join(rows) + "\n", encoding="utf-8")
    imported = runner.invoke(app, ["import", str(leads)], env=env)
    assert imported.exit_code == 0, imported.output
    counts = {CONTROL: 0, CANDIDATE: 0}
    for n in range(40):
        arm = CANDIDATE if position_of("loads", f"domain {domains[n % 8]}") < 0.5 else CONTROL
        counts[arm] += 1

    listed = runner.invoke(app, ["experiment", "list"], env=env)
    report = runner.invoke(app, ["report", "--by", "arm"], env=env)

    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0] == "loads: team trio by least_loaded on 50% of leads, by account"
    for arm, count in counts.items():
        if count:
            assert any(line.startswith(f"  {arm}: {count} leads, claim SLA ") for line in lines)
    # 40 leads make two arms of fewer than 30: the sentence says so, and judges nothing.
    assert (
        f"  conversion: too few leads to tell yet ({counts[CONTROL]} in the control, "
        f"{counts[CANDIDATE]} in the candidate; 30 in each at least)" in listed.stdout
    )
    assert report.exit_code == 0, report.output
    assert "Experiment loads:" in report.stdout
    assert "claim SLA: no data in an arm yet" in report.stdout


def test_list_of_a_policy_without_experiments_says_so(env: dict[str, str]) -> None:
    Path(env["LEADROUTER_RULES"]).write_text(TRIO_POLICY, encoding="utf-8")

    result = runner.invoke(app, ["experiment", "list"], env=env)

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{env['LEADROUTER_RULES']} has no experiments."


CANDIDATE_FILE = TRIO_POLICY.replace("members: [ann, ben, cat]", "members: [ann, ben]")
WITH_CANDIDATE = TRIO_POLICY + (
    "experiments:\n  - name: duo\n    share: 20\n    by: lead\n    policy: candidate.yml\n"
)


def test_a_candidate_policy_is_read_beside_the_file_and_promote_makes_it_the_policy(
    tmp_path: Path, env: dict[str, str]
) -> None:
    Path(env["LEADROUTER_RULES"]).write_text(WITH_CANDIDATE, encoding="utf-8")
    (tmp_path / "candidate.yml").write_text(CANDIDATE_FILE, encoding="utf-8")
    checked = runner.invoke(app, ["check", env["LEADROUTER_RULES"]], env=env)
    assert checked.exit_code == 0, checked.output

    result = runner.invoke(app, ["experiment", "promote", "duo"], env=env)

    assert result.exit_code == 0, result.output
    assert rules_text(env) == CANDIDATE_FILE
    shown = runner.invoke(
        app, ["policy", "show", short_version(version_of(CANDIDATE_FILE))], env=env
    )
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == CANDIDATE_FILE


def test_a_missing_candidate_policy_file_is_a_sentence(env: dict[str, str]) -> None:
    Path(env["LEADROUTER_RULES"]).write_text(WITH_CANDIDATE, encoding="utf-8")

    result = runner.invoke(app, ["check", env["LEADROUTER_RULES"]], env=env)

    assert result.exit_code == 1
    assert "no candidate policy file candidate.yml" in result.output
    assert "Traceback" not in result.output


TWO_CANDIDATES = WITH_CANDIDATE + (
    "  - name: other\n    share: 10\n    by: lead\n    policy: other.yml\n"
)


def test_a_file_holding_its_candidates_still_reads_after_one_experiment_is_stopped(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """A stored version written back (`policy show VERSION > routing.yml`) holds its candidate
    policies; stopping one experiment keeps the other's candidate in the file."""
    rules = Path(env["LEADROUTER_RULES"])
    rules.write_text(TWO_CANDIDATES, encoding="utf-8")
    for name in ("candidate.yml", "other.yml"):
        (tmp_path / name).write_text(CANDIDATE_FILE, encoding="utf-8")
    activated = runner.invoke(app, ["policy", "activate", str(rules)], env=env)
    assert activated.exit_code == 0, activated.output
    version = short_version(version_of(read_policy_text(rules)))  # the file with its candidates
    shown = runner.invoke(app, ["policy", "show", version], env=env)
    assert shown.exit_code == 0, shown.output
    rules.write_text(shown.stdout, encoding="utf-8")
    for name in ("candidate.yml", "other.yml"):
        (tmp_path / name).unlink()  # the file alone must do

    stopped = runner.invoke(app, ["experiment", "stop", "duo"], env=env)

    assert stopped.exit_code == 0, stopped.output
    checked = runner.invoke(app, ["check", str(rules)], env=env)
    assert checked.exit_code == 0, checked.output
    assert "name: duo" not in rules_text(env) and "policy: other.yml" in rules_text(env)


def test_promoting_a_candidate_policy_beside_other_experiments_is_refused(
    tmp_path: Path, env: dict[str, str]
) -> None:
    Path(env["LEADROUTER_RULES"]).write_text(TWO_CANDIDATES, encoding="utf-8")
    for name in ("candidate.yml", "other.yml"):
        (tmp_path / name).write_text(CANDIDATE_FILE, encoding="utf-8")

    result = runner.invoke(app, ["experiment", "promote", "duo"], env=env)

    assert result.exit_code == 1
    assert "stop or promote other first" in result.output and "Traceback" not in result.output
    assert rules_text(env) == TWO_CANDIDATES


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (POLICY + "teams: [\n", "not valid YAML"),
        (WITH_CANDIDATE.replace("candidate.yml", "../elsewhere.yml"), "not an absolute path"),
    ],
)
def test_a_broken_file_is_a_sentence_for_stop_and_changes_nothing(
    env: dict[str, str], text: str, said: str
) -> None:
    Path(env["LEADROUTER_RULES"]).write_text(text, encoding="utf-8")

    result = runner.invoke(app, ["experiment", "stop", "duo"], env=env)

    assert result.exit_code == 1
    assert said in result.output and "Traceback" not in result.output
    assert rules_text(env) == text


def test_an_experiment_whose_candidate_file_is_gone_can_still_be_stopped(
    env: dict[str, str],
) -> None:
    Path(env["LEADROUTER_RULES"]).write_text(WITH_CANDIDATE, encoding="utf-8")  # no candidate.yml

    result = runner.invoke(app, ["experiment", "stop", "duo"], env=env)

    assert result.exit_code == 0, result.output
    assert "experiments" not in rules_text(env)
    promoted = runner.invoke(app, ["experiment", "promote", "duo"], env=env)
    assert promoted.exit_code == 1 and "Traceback" not in promoted.output


def serving_elsewhere(tmp_path: Path, env: dict[str, str]) -> str:
    """Activate, from another file, the policy with a rule of its own changed: the version
    every server serves, which the file at LEADROUTER_RULES is not. Returns its version."""
    other = tmp_path / "weekly.yml"
    other.write_text(POLICY.replace("name: Everyone", "name: Every lead"), encoding="utf-8")
    activated = runner.invoke(app, ["policy", "activate", str(other)], env=env)
    assert activated.exit_code == 0, activated.output
    return short_version(version_of(other.read_text(encoding="utf-8")))


@pytest.mark.parametrize("command", ["stop", "promote"])
def test_ending_an_experiment_from_a_file_that_is_not_the_version_serving_changes_nothing(
    tmp_path: Path, env: dict[str, str], command: str
) -> None:
    serving = serving_elsewhere(tmp_path, env)

    result = runner.invoke(app, ["experiment", command, "loads"], env=env)

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert (
        f"{env['LEADROUTER_RULES']} is not the policy serving: version {serving} is"
        in result.stderr
    )
    assert f"`leadrouter policy show {serving} > {env['LEADROUTER_RULES']}`" in result.stderr
    assert "nothing changed" in result.stderr
    assert rules_text(env) == POLICY
    history = runner.invoke(app, ["policy", "history"], env=env)
    assert history.stdout.startswith(f"* {serving} ")
    assert len(history.stdout.splitlines()) == 1


def test_ending_an_experiment_from_the_file_serving_goes_ahead(env: dict[str, str]) -> None:
    activated = runner.invoke(app, ["policy", "activate", env["LEADROUTER_RULES"]], env=env)
    assert activated.exit_code == 0, activated.output

    result = runner.invoke(app, ["experiment", "stop", "loads"], env=env)

    assert result.exit_code == 0, result.output
    assert rules_text(env) == TRIO_POLICY


def test_list_says_when_the_file_is_not_the_version_serving(
    tmp_path: Path, env: dict[str, str]
) -> None:
    serving = serving_elsewhere(tmp_path, env)

    result = runner.invoke(app, ["experiment", "list"], env=env)

    assert result.exit_code == 0, result.output
    assert (
        f"note: {env['LEADROUTER_RULES']} is not the policy serving: version {serving} is "
        f"(read from {tmp_path / 'weekly.yml'})"
    ) in " ".join(result.stderr.split())


def test_list_goes_on_showing_an_ended_experiment_whose_leads_are_in_the_window(
    tmp_path: Path, env: dict[str, str]
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "id,email\n" + "".join(f"L-{n},buyer{n}@firm{n}.com\n" for n in range(12)),
        encoding="utf-8",
    )
    assert runner.invoke(app, ["import", str(leads)], env=env).exit_code == 0
    stopped = runner.invoke(app, ["experiment", "stop", "loads"], env=env)
    assert stopped.exit_code == 0, stopped.output

    result = runner.invoke(app, ["experiment", "list"], env=env)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "loads: no longer in the policy; its leads since 7d"
    shown = [line for line in lines if line.startswith(("  control: ", "  candidate: "))]
    assert sum(int(line.split(": ")[1].split(" leads")[0]) for line in shown) == 12
    assert any(line.startswith("  conversion: too few leads to tell yet") for line in lines)


def test_list_of_a_policy_without_experiments_and_none_in_the_window_says_so(
    env: dict[str, str],
) -> None:
    assert runner.invoke(app, ["experiment", "stop", "loads"], env=env).exit_code == 0

    result = runner.invoke(app, ["experiment", "list"], env=env)

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{env['LEADROUTER_RULES']} has no experiments."


def test_promote_on_too_few_leads_says_so_and_promotes(tmp_path: Path, env: dict[str, str]) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "id,email\n" + "".join(f"L-{n},buyer{n}@firm{n}.com\n" for n in range(12)),
        encoding="utf-8",
    )
    assert runner.invoke(app, ["import", str(leads)], env=env).exit_code == 0
    arms = {CONTROL: 0, CANDIDATE: 0}
    for n in range(12):
        arms[CANDIDATE if position_of("loads", f"domain firm{n}.com") < 0.5 else CONTROL] += 1

    result = runner.invoke(app, ["experiment", "promote", "loads"], env=env)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("experiment loads promoted: version ")
    assert (
        f"note: experiment loads had {arms[CONTROL]} leads in the control and "
        f"{arms[CANDIDATE]} in the candidate since 7d: too few to tell whether the candidate "
        "does better (30 in each at least; `leadrouter experiment list`)"
    ) in " ".join(result.stderr.split())


def test_promote_without_leads_in_the_window_says_there_were_none(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["experiment", "promote", "loads"], env=env)

    assert result.exit_code == 0, result.output
    assert "note: experiment loads had 0 leads in the control and 0 in the candidate" in " ".join(
        result.stderr.split()
    )


def test_list_without_the_policy_file_lists_the_active_versions_experiments(
    env: dict[str, str],
) -> None:
    activated = runner.invoke(app, ["policy", "activate", env["LEADROUTER_RULES"]], env=env)
    assert activated.exit_code == 0, activated.output
    Path(env["LEADROUTER_RULES"]).unlink()

    result = runner.invoke(app, ["experiment", "list"], env=env)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "loads: team trio by least_loaded on 50% of leads, by account"
    )
    assert result.stderr.startswith(f"note: no policy file at {env['LEADROUTER_RULES']}: using")
