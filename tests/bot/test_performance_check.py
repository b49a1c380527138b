"""`leadrouter check` on a policy with a performance team: accepted as written, and its mistakes
each reported with their line, no traceback."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()

GOOD = """\
reps: [{id: ana}, {id: ben}]
teams:
  ae:
    members: [ana, ben]
    distribution: performance
    performance: {prior: 30, window: 60d}
    fairness: {floor: 0.5, ceiling: 2.0}
rules:
  - {name: All, assign: {team: ae}}
"""


def test_check_accepts_a_performance_team(tmp_path: Path) -> None:
    policy = tmp_path / "routing.yml"
    policy.write_text(GOOD)
    result = runner.invoke(app, ["check", str(policy)])
    assert result.exit_code == 0, result.output
    assert "ok: 2 reps, 1 team, 1 rule" in result.stdout


def test_check_reports_each_bad_performance_key_with_its_line(tmp_path: Path) -> None:
    policy = tmp_path / "routing.yml"
    policy.write_text(
        GOOD.replace("prior: 30", "prior: -3").replace("ceiling: 2.0", "ceilling: 2.0")
    )
    result = runner.invoke(app, ["check", str(policy)])
    assert result.exit_code == 1
    assert (
        f"{policy}:6:19: teams.ae.performance.prior: the prior is a number of leads from 0 to "
        "100000, not -3" in result.stderr
    ), result.stderr
    assert (
        f"{policy}:7:28: teams.ae.fairness.ceilling: unknown key `ceilling` (did you mean "
        "`ceiling`?)" in result.stderr
    ), result.stderr
    assert "Traceback" not in result.output
