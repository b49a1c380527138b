"""`leadrouter policy activate`, `history` and `show` on a SQLite file: what they print, what they
refuse, and that `show` gives back the very text activated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from routing.policy_version import short_version, version_of
from tests.service.support import TRIO_POLICY

runner = CliRunner()
DUO_POLICY = TRIO_POLICY.replace("members: [ann, ben, cat]", "members: [ann, ben]")
BAD_POLICY = TRIO_POLICY.replace("members: [ann, ben, cat]", "members: [ann, ben, zed]")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    rules = tmp_path / "routing.yml"
    rules.write_text(TRIO_POLICY, encoding="utf-8")
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
        "LEADROUTER_RULES": str(rules),
    }


def policy_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_activate_makes_a_file_the_active_version_and_says_so_once(
    tmp_path: Path, env: dict[str, str]
) -> None:
    first = runner.invoke(
        app, ["policy", "activate", env["LEADROUTER_RULES"], "--by", "ann"], env=env
    )
    again = runner.invoke(app, ["policy", "activate", env["LEADROUTER_RULES"]], env=env)

    version = short_version(version_of(TRIO_POLICY))
    assert first.exit_code == 0, first.output
    assert first.stdout.strip().endswith(
        f"routing.yml: version {version} activated (none was before); running servers switch to "
        "it within 2 s"
    )
    assert again.exit_code == 0, again.output
    assert again.stdout.strip().endswith(f"version {version} is the active version already")


def test_activate_of_another_file_than_the_servers_warns_that_a_restart_brings_that_back(
    tmp_path: Path, env: dict[str, str]
) -> None:
    duo = policy_file(tmp_path, "duo.yml", DUO_POLICY)

    result = runner.invoke(app, ["policy", "activate", duo], env=env)

    assert result.exit_code == 0, result.output
    assert "activated (none was before)" in result.stdout
    assert "note: " in result.stderr and "a server starting on it activates again" in result.stderr


def test_activate_of_a_file_without_a_rep_says_their_unclaimed_leads_move_on(
    tmp_path: Path, env: dict[str, str]
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "id,email\n" + "".join(f"L-{n},buyer{n}@firm{n}.com\n" for n in range(6)),
        encoding="utf-8",
    )
    serving = runner.invoke(app, ["policy", "activate", env["LEADROUTER_RULES"]], env=env)
    imported = runner.invoke(app, ["import", str(leads)], env=env)
    assert serving.exit_code == 0 and imported.exit_code == 0, serving.output + imported.output
    without_cat = TRIO_POLICY.replace("  - {id: cat, name: Cat Cole}\n", "").replace(
        "[ann, ben, cat]", "[ann, ben]"
    )

    result = runner.invoke(
        app, ["policy", "activate", policy_file(tmp_path, "duo.yml", without_cat)], env=env
    )

    assert result.exit_code == 0, result.output
    assert (
        "note: cat (Cat Cole) is not a rep of it: the 2 leads offered to them and not yet "
        "claimed move on to others as the servers switch to it (claimed leads stay theirs)"
    ) in " ".join(result.stderr.split())


def test_activate_of_a_file_keeping_every_rep_holding_leads_says_nothing_of_them(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = runner.invoke(
        app, ["policy", "activate", policy_file(tmp_path, "duo.yml", DUO_POLICY)], env=env
    )

    assert result.exit_code == 0, result.output
    assert "move on to others" not in result.stderr


def test_activate_refuses_a_file_that_fails_its_checks_with_every_problem(
    tmp_path: Path, env: dict[str, str]
) -> None:
    runner.invoke(app, ["policy", "activate", env["LEADROUTER_RULES"]], env=env)
    bad = policy_file(tmp_path, "bad.yml", BAD_POLICY)

    result = runner.invoke(app, ["policy", "activate", bad], env=env)

    assert result.exit_code == 1
    assert "bad.yml:" in result.stderr and "`zed` is not a rep defined under reps" in result.stderr
    assert "1 error: not activated; the active version goes on serving" in result.stderr
    history = runner.invoke(app, ["policy", "history"], env=env)
    assert len(history.stdout.splitlines()) == 1


def test_activate_of_a_missing_file_is_one_sentence(tmp_path: Path, env: dict[str, str]) -> None:
    result = runner.invoke(app, ["policy", "activate", str(tmp_path / "nope.yml")], env=env)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.yml'}: no such policy file"


def test_activate_of_a_stored_version_instead_of_a_file_says_how_to_serve_it_again(
    tmp_path: Path, env: dict[str, str]
) -> None:
    first = runner.invoke(app, ["policy", "activate", env["LEADROUTER_RULES"]], env=env)
    duo = runner.invoke(
        app, ["policy", "activate", policy_file(tmp_path, "duo.yml", DUO_POLICY)], env=env
    )
    assert first.exit_code == 0 and duo.exit_code == 0, first.output + duo.output
    version = short_version(version_of(TRIO_POLICY))

    result = runner.invoke(app, ["policy", "activate", version], env=env)

    assert result.exit_code == 1
    rules = env["LEADROUTER_RULES"]
    assert " ".join(result.stderr.split()) == (
        f"error: {version} is a stored policy version, not a file: to serve it again, "
        f"`leadrouter policy show {version} > {rules}`, then `leadrouter policy activate "
        f"{rules}` (or `/routing policy activate {version}` in Slack)"
    )
    history = runner.invoke(app, ["policy", "history"], env=env)
    assert history.stdout.startswith(f"* {short_version(version_of(DUO_POLICY))} ")


def test_history_and_show_on_a_database_that_is_not_there_say_so_and_make_none(
    tmp_path: Path, env: dict[str, str]
) -> None:
    for command in (["policy", "history"], ["policy", "show", "abcdef12"]):
        result = runner.invoke(app, command, env=env)

        assert result.exit_code == 1
        assert f"no database at {tmp_path / 'leads.db'}" in result.stderr
    assert not (tmp_path / "leads.db").exists()


def test_history_on_a_database_without_versions_says_none_was_activated(
    tmp_path: Path, env: dict[str, str]
) -> None:
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0

    empty = runner.invoke(app, ["policy", "history"], env=env)

    assert empty.exit_code == 0 and "No policy version has been activated yet" in empty.stdout


def test_history_lists_activations_newest_first_with_the_active_one_starred(
    tmp_path: Path, env: dict[str, str]
) -> None:
    duo = policy_file(tmp_path, "duo.yml", DUO_POLICY)
    runner.invoke(app, ["policy", "activate", env["LEADROUTER_RULES"], "--by", "ann"], env=env)
    runner.invoke(app, ["policy", "activate", duo, "--by", "ben"], env=env)

    result = runner.invoke(app, ["policy", "history"], env=env)

    assert result.exit_code == 0, result.output
    newest, oldest = result.stdout.splitlines()
    line = r"([* ]) ([0-9a-f]{12})  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  (.+) by (\w+) · (.+)"
    assert re.fullmatch(line, newest).groups() == (  # type: ignore[union-attr]
        "*",
        short_version(version_of(DUO_POLICY)),
        "leadrouter policy activate",
        "ben",
        duo,
    )
    assert re.fullmatch(line, oldest).groups() == (  # type: ignore[union-attr]
        " ",
        short_version(version_of(TRIO_POLICY)),
        "leadrouter policy activate",
        "ann",
        env["LEADROUTER_RULES"],
    )
    limited = runner.invoke(app, ["policy", "history", "--limit", "1"], env=env)
    assert limited.stdout.splitlines() == [newest]


def test_show_prints_a_version_exactly_as_activated_and_where_it_came_from(
    tmp_path: Path, env: dict[str, str]
) -> None:
    runner.invoke(app, ["policy", "activate", env["LEADROUTER_RULES"], "--by", "ann"], env=env)
    version = version_of(TRIO_POLICY)

    result = runner.invoke(app, ["policy", "show", version[:7]], env=env)

    assert result.exit_code == 0, result.output
    assert result.stdout == TRIO_POLICY
    assert f"version {version} (active), read from {env['LEADROUTER_RULES']}" in result.stderr
    assert "leadrouter policy activate by ann" in result.stderr


@pytest.mark.parametrize(
    ("version", "problem"),
    [("zz", "is not a version"), ("0000000", "no stored policy version starts with 0000000")],
)
def test_show_of_no_stored_version_is_one_sentence(
    env: dict[str, str], version: str, problem: str
) -> None:
    runner.invoke(app, ["policy", "activate", env["LEADROUTER_RULES"]], env=env)
    if version_of(TRIO_POLICY).startswith(version):
        pytest.skip("the hash happens to start so")

    result = runner.invoke(app, ["policy", "show", version], env=env)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and problem in result.stderr


def test_the_version_an_import_decides_by_is_kept_to_show_and_not_activated(
    tmp_path: Path, env: dict[str, str]
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("id,company\nL-1,Acme\n", encoding="utf-8")
    imported = runner.invoke(app, ["import", str(leads)], env=env)
    assert imported.exit_code == 0, imported.output

    shown = runner.invoke(app, ["policy", "show", version_of(TRIO_POLICY)[:8]], env=env)

    assert shown.exit_code == 0, shown.output
    assert shown.stdout == TRIO_POLICY
    assert "never activated" in shown.stderr
    history = runner.invoke(app, ["policy", "history"], env=env)
    assert "No policy version has been activated yet" in history.stdout


def test_an_import_by_another_file_than_the_active_version_says_which_version_serves(
    tmp_path: Path, env: dict[str, str]
) -> None:
    duo = policy_file(tmp_path, "duo.yml", DUO_POLICY)
    activated = runner.invoke(app, ["policy", "activate", duo], env=env)
    assert activated.exit_code == 0, activated.output
    leads = tmp_path / "leads.csv"
    leads.write_text("id,company\nL-1,Acme\n", encoding="utf-8")

    by_the_file = runner.invoke(app, ["import", str(leads)], env=env)
    by_the_active_one = runner.invoke(app, ["import", str(leads), "--rules", duo], env=env)

    version = short_version(version_of(DUO_POLICY))
    assert by_the_file.exit_code == 0, by_the_file.output
    assert (
        f"note: {env['LEADROUTER_RULES']} is not the policy serving: version {version} is (read "
        f"from {duo})." in by_the_file.stderr
    )
    assert by_the_active_one.exit_code == 0, by_the_active_one.output
    assert "not the policy serving" not in by_the_active_one.stderr
