"""The Prometheus alert rules, the Prometheus configuration and the Grafana dashboard shipped in
ops/: each parses, every PromQL expression in them parses as Prometheus would read it, and reads
only metrics that `GET /metrics` of a fully configured app exposes; the alerts cover what an
operator must hear of, and the dashboard shows what the alerts read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from ruamel.yaml import YAML

from bot.bootstrap import bootstrap
from bot.http import build_http_app
from bot.metrics import Metrics
from bot.settings import Settings
from routing.policy import parse_policy
from tests.databases import sqlite_database
from tests.fakes.slack import FakeSlack
from tests.ops.test_deployment import ROOT, compose, leadrouter_services

# Series Prometheus makes itself for every target.
SYNTHETIC = {"up"}
# The names a family's samples take, by its type.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
# Grafana's own variables, as Prometheus would see them once Grafana fills them in.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
# What an operator must be told of (the list), by the metric that says it.
MUST_ALERT_ON = {
    "leadrouter_slack_deliveries_given_up_total",
    "leadrouter_slack_deliveries_failed_total",
    "leadrouter_sla_misses_total",
    "leadrouter_unmatched_leads",
    "leadrouter_unmatched_oldest_age_seconds",
    "leadrouter_job_failures_total",
    "leadrouter_crm_writebacks_given_up_total",
    "leadrouter_slack_connected",
}
POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA, digest: "0 9 * * mon-fri"}
teams:
  solo: {members: [ann], manager: mia}
rules:
  - name: Everyone
    assign: {team: solo}
"""


@pytest.fixture
async def exposed(tmp_path: Path) -> set[str]:
    """The name of every sample `GET /metrics` shows for an app with Slack, its jobs running
    and a Socket Mode connection to report."""
    settings = Settings(
        SLACK_BOT_TOKEN=SecretStr("xoxb-monitoring-test"),
        SLACK_SIGNING_SECRET=SecretStr("monitoring-test-signing-secret"),
    )
    async with FakeSlack() as slack, sqlite_database(tmp_path / "leads.db") as db:
        settings.slack_api_url = slack.api_url
        app = bootstrap(settings, db=db, policy=parse_policy(POLICY))
        metrics = Metrics()
        metrics.watch_slack_connection(lambda: True)
        client = TestClient(TestServer(build_http_app(app, metrics=metrics, run_jobs=True)))
        await client.start_server()
        try:
            text = await (await client.get("/metrics")).text()
        finally:
            await client.close()
            await app.uow.aclose()
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        # A labelled family with no series yet (HTTP errors before the first) has its name.
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr!r}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def alert_rules() -> list[dict[str, Any]]:
    loaded = YAML(typ="safe").load((ROOT / "ops" / "alerts.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "ops" / "grafana-dashboard.json").read_text())
    return loaded


def dashboard_exprs() -> list[str]:
    exprs = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            exprs.append(expr)
    return exprs


# --- alert rules ----------------------------------------------------------------------------------


def test_every_alert_parses_and_says_what_it_is_how_bad_and_what_to_do() -> None:
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        promql_parser.parse(rule["expr"])
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])


def test_an_alerts_text_names_only_labels_its_expression_keeps() -> None:
    for rule in alert_rules():
        expr = promql_parser.parse(rule["expr"])
        aggregate = expr.lhs if isinstance(expr, promql_parser.BinaryExpr) else expr
        if not isinstance(aggregate, promql_parser.AggregateExpr):
            continue  # not aggregated: the series' own labels are all there
        kept = set(aggregate.modifier.labels) if aggregate.modifier else set()
        text = " ".join(rule["annotations"].values())
        named = set(re.findall(r"\$labels\.(\w+)", text))
        assert named <= kept, (rule["alert"], named - kept)


def test_alerts_read_only_metrics_leadrouter_exposes(exposed: set[str]) -> None:
    for rule in alert_rules():
        assert metric_names(rule["expr"]) <= exposed | SYNTHETIC, rule["alert"]


def test_there_is_an_alert_for_everything_an_operator_must_hear_of() -> None:
    read = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    assert read >= MUST_ALERT_ON


def test_prometheus_scrapes_each_replica_and_loads_the_rules_compose_mounts() -> None:
    config = YAML(typ="safe").load((ROOT / "ops" / "prometheus.yml").read_text())
    prometheus = compose()["services"]["prometheus"]
    mounts = dict(volume.split(":")[:2] for volume in prometheus["volumes"])
    assert config["rule_files"] == [mounts["./ops/alerts.yml"]]
    assert mounts["./ops/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "leadrouter" and job["metrics_path"] == "/metrics"
    (targets,) = (static["targets"] for static in job["static_configs"])
    assert set(targets) == {
        f"{name}:{service['environment']['PORT']}"
        for name, service in leadrouter_services().items()
    }
    # The alert on a replica that is down selects this job.
    (down,) = [rule for rule in alert_rules() if metric_names(rule["expr"]) == {"up"}]
    assert f'job="{job["job_name"]}"' in down["expr"]


# --- the Grafana dashboard ------------------------------------------------------------------------


def test_the_dashboard_imports_asking_for_its_prometheus_data_source() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] == "leadrouter"
    (source,) = board["__inputs"]
    assert (source["type"], source["pluginId"]) == ("datasource", "prometheus")
    reference = {"type": "prometheus", "uid": "${" + source["name"] + "}"}
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == reference, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == reference, panel["title"]


def test_the_dashboards_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_the_dashboard_reads_only_metrics_leadrouter_exposes(exposed: set[str]) -> None:
    for expr in dashboard_exprs():
        assert metric_names(expr) <= exposed | SYNTHETIC, expr


def test_the_dashboard_shows_every_metric_an_alert_reads() -> None:
    shown = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    alerted = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    assert alerted <= shown


def test_a_misspelt_metric_would_be_caught(exposed: set[str]) -> None:
    # The check above is only worth something if a name leadrouter does not expose fails it.
    assert not metric_names("sum(rate(leadrouter_lead_total[5m]))") <= exposed | SYNTHETIC
