"""The README and docs/operations.md say what the code does: every setting in the README's table,
every metric /metrics exposes in the operations page's metrics table (and none it does not), the
backup commands the backup tests run, and where each file of ops/ is explained. The README's
example policy passes the policy's checks."""

from __future__ import annotations

import re

from bot.metrics import Metrics
from bot.settings import ENV_NAMES
from routing.policy import parse_policy
from tests.ops.test_deployment import ROOT

OPERATIONS = "docs/operations.md"


def section(title: str, document: str = "README.md") -> str:
    """The section of `document` under `title` (a heading line), up to the next heading of its
    level or above; lines in code blocks are not headings."""
    level = len(title.split(" ", 1)[0])
    lines = (ROOT / document).read_text().splitlines()
    start = lines.index(title) + 1
    fenced = False
    for end in range(start, len(lines)):
        line = lines[end]
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"(#+) ", line)
        if not fenced and heading and len(heading.group(1)) <= level:
            return "\n".join(lines[start:end])
    return "\n".join(lines[start:])


def test_the_settings_table_names_every_setting() -> None:
    table = section("### Settings")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    assert set(ENV_NAMES.values()) <= documented


def documented_metrics() -> set[str]:
    """The metric names of the operations page's table, `{a,b}` and `..._x` written out."""
    names: set[str] = set()
    for line in section("## Metrics and alerts", OPERATIONS).splitlines():
        if not line.startswith("| `"):
            continue
        cell = line.split("|")[1]
        previous = ""
        for written in re.findall(r"`([^`]+)`", cell):
            written = re.sub(r"\{\w+\}$", "", written)  # its labels
            if written.startswith("..._"):
                written = previous.rsplit("_", 2)[0] + written[3:]
            for name in _expanded(written):
                names.add(name)
            previous = written
    return names


def _expanded(name: str) -> list[str]:
    match = re.search(r"\{([\w,]*,[\w,]*)\}", name)
    if match is None:
        return [name]
    head, tail = name[: match.start()], name[match.end() :]
    return [n for part in match.group(1).split(",") for n in _expanded(head + part + tail)]


def exposed_metrics() -> set[str]:
    metrics = Metrics()
    metrics.watch_slack_connection(lambda: True)
    names = set()
    for family in metrics.registry.collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def test_the_metrics_table_lists_every_metric_and_only_those() -> None:
    assert documented_metrics() == exposed_metrics()


def test_the_backup_commands_are_those_the_backup_tests_run() -> None:
    backups = section("## Backups", OPERATIONS)
    for command in (
        ".backup '",
        "VACUUM INTO '",
        "pg_dump -U leadrouter --format=custom",
        "pg_restore -U leadrouter --clean --if-exists --create --no-owner",
        "pg_basebackup",
    ):
        assert command in backups, command


def test_operations_says_how_to_use_every_file_it_ships() -> None:
    operations = section("# Operations", OPERATIONS)
    for name in (
        "Dockerfile",
        "compose.yaml",
        ".env.example",
        "ops/Caddyfile",
        "ops/prometheus.yml",
        "ops/alerts.yml",
        "ops/grafana-dashboard.json",
        "LOG_FORMAT=json",
        "HUBSPOT_WEBHOOK_URL",
    ):
        assert name in operations, name
    for heading in ("Deployment", "TLS", "Backups", "Logs", "Metrics and alerts"):
        assert f"\n## {heading}" in operations, heading


def test_the_readmes_operations_section_points_at_each_part_of_the_operations_page() -> None:
    operations = section("## Operations")
    for name in (
        "Dockerfile",
        "compose.yaml",
        ".env.example",
        "ops/alerts.yml",
        "ops/grafana-dashboard.json",
        "LOG_FORMAT=json",
        "HUBSPOT_WEBHOOK_URL",
    ):
        assert name in operations, name
    for anchor in (
        "deployment",
        "tls-and-the-reverse-proxy-http-mode",
        "backups",
        "logs",
        "metrics-and-alerts",
        "retention-what-is-kept-and-for-how-long",
    ):
        assert f"]({OPERATIONS}#{anchor})" in operations, anchor


def test_the_readmes_example_policy_passes_the_policy_checks() -> None:
    (example,) = re.findall(r"```yaml\n(.*?)```", section("## The policy"), re.S)
    policy = parse_policy(example, source="README.md")
    assert len(policy.rules) == 3


def test_the_architecture_map_names_only_paths_that_exist() -> None:
    named = set(re.findall(r"\b((?:bot|routing|storage)/[\w/<>.-]*)", section("## Architecture")))
    assert len(named) > 15
    for path in named:
        if "<" in path:  # a pattern: bot/service/<family>.py
            continue
        assert (ROOT / path).exists(), f"the README's architecture map names {path}"
