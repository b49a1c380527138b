"""The metrics an operator alerts on, at `GET /metrics`: Slack deliveries failed and given up,
SLA misses, the unmatched queue's size and oldest age, job failures, CRM write-backs given up,
and Slack's connection in Socket Mode."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot.bootstrap import App, bootstrap
from bot.http import build_http_app
from bot.metrics import Metrics
from bot.service.intake import intake
from bot.service.offers import assign
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.watchdog import sweep
from bot.settings import Settings, SettingsError, load_settings
from routing.leads import parse_lead
from routing.policy import parse_policy
from storage.db import Database, open_database
from tests.bot.conftest import Clock, settings_for
from tests.bot.test_serve import Server, Servers, post, terminate, wait_until_ready
from tests.fakes.slack import FakeSlack

T = TypeVar("T")

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
managers:
  - {id: mia, name: Mia Moss}
teams:
  solo: {members: [ann]}
sla: {default: 5m}
rules:
  - name: Web leads
    when: {source: web}
    assign: {team: solo}
fallback:
  queue: unmatched
"""


@pytest.fixture
def slack_policy() -> str:
    return POLICY


def samples(text: bytes | str) -> dict[str, float]:
    """Every sample of a scrape, by name and labels as Prometheus shows them."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(
        text.decode() if isinstance(text, bytes) else text
    ):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


async def web_lead(app: App, lead_id: str, source: str = "web") -> None:
    await intake(app.uow, parse_lead({"id": lead_id, "company": "Acme", "source": source}))


# --- from the first scrape -----------------------------------------------------------------------


async def test_every_series_an_alert_reads_is_there_at_zero_from_the_first_scrape(
    app: App,
) -> None:
    scraped = samples(await Metrics().scrape(app))
    for name in (
        'leadrouter_slack_deliveries_failed_total{kind="offer_card"}',
        'leadrouter_slack_deliveries_given_up_total{kind="offer_card"}',
        'leadrouter_slack_deliveries_given_up_total{kind="manager_alert"}',
        'leadrouter_crm_writebacks_given_up_total{crm="salesforce"}',
        'leadrouter_crm_writebacks_given_up_total{crm="hubspot"}',
        "leadrouter_sla_misses_total",
        "leadrouter_unmatched_leads",
        "leadrouter_unmatched_oldest_age_seconds",
    ):
        assert scraped.get(name) == 0.0, name
    # Only a Socket Mode app has a connection of its own to report.
    assert not [name for name in scraped if name.startswith("leadrouter_slack_connected")]


# --- Slack deliveries -----------------------------------------------------------------------------


async def test_a_post_slack_fails_is_counted_and_one_it_refuses_for_good_is_given_up(
    app: App, slack: FakeSlack, clock: Clock
) -> None:
    assert app.delivery is not None
    metrics = Metrics()
    slack.fail("chat.postMessage", status=503)
    await web_lead(app, "L-1")
    await app.delivery.deliver_due()
    clock.advance(minutes=5)
    await app.delivery.deliver_due()  # posted on the second try
    slack.fail("chat.postMessage", status=200, error="channel_not_found")
    await web_lead(app, "L-2")
    clock.advance(seconds=2)  # past the DM's pace of one post a second
    await app.delivery.deliver_due()

    scraped = samples(await metrics.scrape(app))
    assert scraped['leadrouter_slack_deliveries_failed_total{kind="offer_card"}'] == 2.0
    assert scraped['leadrouter_slack_deliveries_given_up_total{kind="offer_card"}'] == 1.0
    # Counted once: a second scrape adds only what happened since the first.
    assert samples(await metrics.scrape(app)) == scraped


# --- the SLA watchdog and the unmatched queue ---------------------------------------------------


async def test_each_offer_whose_sla_lapsed_is_an_sla_miss(
    app: App, slack: FakeSlack, clock: Clock
) -> None:
    assert app.delivery is not None
    metrics = Metrics()
    await web_lead(app, "L-1")
    await app.delivery.deliver_due()  # the SLA runs from the card's post
    clock.advance(minutes=6)
    assert (await sweep(app.uow)).expired == 1
    assert samples(await metrics.scrape(app))["leadrouter_sla_misses_total"] == 1.0


async def test_the_unmatched_queues_size_and_oldest_age_are_read_from_the_database(
    database_path: Path, sqlite_db: Database, clock: Clock
) -> None:
    app = bootstrap(
        settings_for(database_path), db=sqlite_db, policy=parse_policy(POLICY), clock=clock
    )
    metrics = Metrics()
    await web_lead(app, "Q-1", source="fair")
    clock.advance(minutes=20)
    await web_lead(app, "Q-2", source="fair")
    await web_lead(app, "W-1")  # offered, not queued
    clock.advance(minutes=10)

    # Any replica sees the same: the figures are the database's, not this process's.
    scraped = samples(await Metrics().scrape(app))
    assert scraped["leadrouter_unmatched_leads"] == 2.0
    assert scraped["leadrouter_unmatched_oldest_age_seconds"] == 30 * 60
    await assign(app.uow, "Q-1", rep_id="ann", by="mia")
    scraped = samples(await metrics.scrape(app))
    assert scraped["leadrouter_unmatched_leads"] == 1.0
    assert scraped["leadrouter_unmatched_oldest_age_seconds"] == 10 * 60


# --- jobs ---------------------------------------------------------------------------------------


class RoutingBroken(UnitOfWork):
    """Every routing transaction fails (the sweep's among them); other writes and reads work."""

    async def routing(
        self, work: Callable[[Transaction], T], what: str, *, quick: bool = False
    ) -> T:
        raise RuntimeError("the database went away")


async def test_a_scheduled_run_that_fails_is_counted_by_job_and_the_scheduler_goes_on(
    database_path: Path, sqlite_db: Database, clock: Clock
) -> None:
    policy = parse_policy(POLICY)
    app = bootstrap(settings_for(database_path), db=sqlite_db, policy=policy, clock=clock)
    app.uow = RoutingBroken(db=sqlite_db, policy=lambda: policy, clock=clock)
    client = TestClient(TestServer(build_http_app(app, metrics=Metrics(), run_jobs=True)))
    await client.start_server()
    try:
        deadline = time.monotonic() + 5
        while True:
            scraped = samples(await (await client.get("/metrics")).text())
            if scraped.get('leadrouter_job_failures_total{job="sla-sweep"}'):
                break
            assert time.monotonic() < deadline, "the failed sweep was not counted"
            await asyncio.sleep(0.05)
        assert scraped['leadrouter_job_failures_total{job="retention"}'] == 0.0
    finally:
        await client.close()


# --- Slack's connection -------------------------------------------------------------------------


async def test_the_slack_connection_gauge_reads_what_the_app_tells_it_at_each_scrape(
    app: App,
) -> None:
    metrics = Metrics()
    connected = False
    metrics.watch_slack_connection(lambda: connected)
    assert samples(await metrics.scrape(app))["leadrouter_slack_connected"] == 0.0
    connected = True
    assert samples(await metrics.scrape(app))["leadrouter_slack_connected"] == 1.0

    async def socket_is_open() -> bool:  # slack_sdk's Socket Mode client asks asynchronously
        return True

    metrics.watch_slack_connection(socket_is_open)
    assert samples(await metrics.scrape(app))["leadrouter_slack_connected"] == 1.0

    def broken() -> bool:
        raise ConnectionError("the handler is gone")

    metrics.watch_slack_connection(broken)
    assert samples(await metrics.scrape(app))["leadrouter_slack_connected"] == 0.0


async def test_serve_in_socket_mode_reports_its_connection_to_slack_in_the_metrics(
    servers: Servers, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.yml"
    rules.write_text(POLICY)
    with FakeSlack.in_thread() as slack:
        server = servers.start(
            tmp_path / "leads.db",
            extra_env={
                "SLACK_BOT_TOKEN": "xoxb-metrics-test-token",
                "SLACK_APP_TOKEN": "xapp-1-A0001-metrics-test-token",
                "SLACK_API_URL": slack.api_url,
                "LEADROUTER_RULES": str(rules),
            },
        )
        await wait_until_ready(server)
        await slack.wait_for_connection(timeout=15)
        async with aiohttp.ClientSession() as session:
            status, _ = await post(session, server, {"id": "L-1", "source": "web"})
            assert status == 201
            scraped = samples(await _scrape(session, server))
        assert scraped["leadrouter_slack_connected"] == 1.0
        assert terminate(server) == 0, server.output()


async def _scrape(session: aiohttp.ClientSession, server: Server) -> str:
    async with session.get(f"{server.url}/metrics") as response:
        assert response.status == 200
        return await response.text()


# --- the exposition itself -------------------------------------------------------------------


async def test_every_series_has_help_and_type_and_counters_end_in_total_with_no_created_twin(
    app: App,
) -> None:
    text = (await Metrics().scrape(app)).decode()
    helped = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    typed = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE "))
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    histogram_parts = ("_bucket", "_count", "_sum")

    def family(name: str) -> str:
        for part in histogram_parts:
            if name.removesuffix(part) in typed and typed[name.removesuffix(part)] == "histogram":
                return name.removesuffix(part)
        return name

    assert {family(name) for name in names} <= helped & typed.keys()
    # A `leadrouter_decisions_created` gauge of Unix times reads as a count of decisions made.
    assert not [name for name in typed if name.endswith("_created")]
    assert [n for n, kind in typed.items() if kind == "counter" and not n.endswith("_total")] == []


async def test_while_the_database_does_not_answer_a_scrape_is_a_503_saying_so_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A PostgreSQL nobody listens for, on loopback: every connection is refused at once.
    url = "postgresql+asyncpg://leadrouter@127.0.0.1:1/leadrouter"
    db = open_database(url)
    app = bootstrap(Settings(database_url=url), db=db, policy=parse_policy(POLICY))
    client = TestClient(TestServer(build_http_app(app, metrics=Metrics())))
    await client.start_server()
    try:
        with caplog.at_level(logging.INFO):
            response = await client.get("/metrics")
            answer = await response.json()
    finally:
        await client.close()
        await db.dispose()

    assert response.status == 503
    assert answer == {"error": "the database does not answer"}
    assert "internal error" not in caplog.text
    assert not [record for record in caplog.records if record.exc_info]


# --- a token in front of the scrape ----------------------------------------------------------

SCRAPE_TOKEN = "m" * 40


async def test_with_a_metrics_token_a_scrape_needs_it_as_a_bearer_and_healthz_stays_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}"
    db = open_database(url)
    await db.create_tables()
    settings = Settings(database_url=url, metrics_token=SCRAPE_TOKEN)
    app = bootstrap(settings, db=db, policy=parse_policy(POLICY))
    client = TestClient(TestServer(build_http_app(app, metrics=Metrics())))
    await client.start_server()
    try:
        with caplog.at_level(logging.INFO):
            bare = await client.get("/metrics")
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            basic = await client.get("/metrics", headers={"Authorization": f"Basic {SCRAPE_TOKEN}"})
            right = await client.get(
                "/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}
            )
            health = await client.get("/healthz")
            answers = [await bare.json(), await wrong.json(), await basic.json()]
            scraped = samples(await right.text())
    finally:
        await client.close()
        await db.dispose()

    assert [bare.status, wrong.status, basic.status] == [401, 401, 401]
    assert all("LEADROUTER_METRICS_TOKEN" in answer["error"] for answer in answers)
    assert "`Authorization: Bearer <token>`" in answers[0]["error"]
    assert bare.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert right.status == 200 and "leadrouter_unmatched_leads" in scraped
    assert health.status == 200
    assert SCRAPE_TOKEN not in caplog.text and "nope" not in caplog.text


def test_a_metrics_token_too_short_to_be_secret_stops_the_start_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match=r"LEADROUTER_METRICS_TOKEN.*at least 32"):
        load_settings(metrics_token="short")
