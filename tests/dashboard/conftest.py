"""The dashboard on a real loopback port, over the test's SQLite database, with the settings and
figures each test gives it; and Slack's side of Sign in with Slack (`FakeSlackSignIn`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.bootstrap import App, bootstrap
from bot.dashboard.figures import Figures
from bot.dashboard.routes import register
from bot.http import build_http_app
from bot.metrics import Metrics
from bot.policy_file import load_policy
from bot.service.intake import intake
from bot.settings import Settings
from routing.leads import parse_lead
from routing.policy import Policy
from storage.db import Database
from tests.bot.conftest import EXAMPLES, TUESDAY, Clock
from tests.bot.webhook import free_port
from tests.databases import sqlite_database
from tests.fakes.slack_sign_in import CLIENT_ID, CLIENT_SECRET, FakeSlackSignIn

TOKEN = "dashboard-token-for-tests-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
# The example policy's one manager.
MARIA = ("U01MARIA", "maria@example.com")


@dataclass
class Dashboard:
    """A running server with the dashboard: `client` to ask it, `url` for a browser."""

    client: TestClient
    app: App

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")


MakeDashboard = Callable[..., Awaitable[Dashboard]]


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY)


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(EXAMPLES / "routing.yml")


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    async with sqlite_database(tmp_path / "leads.db") as db:
        yield db


@pytest.fixture
async def sign_in() -> AsyncIterator[FakeSlackSignIn]:
    """Slack's side, for a dashboard on the port `sign_in_port` gives."""
    async with FakeSlackSignIn(redirect_uri="") as fake:
        yield fake


@pytest.fixture
async def make_dashboard(
    tmp_path: Path, sqlite_db: Database, policy: Policy, clock: Clock
) -> AsyncIterator[MakeDashboard]:
    """`await make_dashboard(...)`: the dashboard with the settings given (the dashboard token
    unless told otherwise), and `figures` plugged in; through `build_http_app` (as `serve` has
    it) when no figures are given. Over the test's SQLite database, or `db` (a replica's)."""
    clients: list[TestClient] = []
    apps: list[App] = []

    async def make(
        *,
        token: str | None = TOKEN,
        sign_in: FakeSlackSignIn | None = None,
        public_url: str | None = None,
        figures: Figures | None = None,
        wall_clock: Callable[[], float] | None = None,
        with_policy: Callable[[], Policy] | None = None,
        db: Database | None = None,
        **settings: Any,
    ) -> Dashboard:
        port = free_port()
        if sign_in is not None:
            public_url = public_url or f"http://127.0.0.1:{port}"
            sign_in.redirect_uri = f"{public_url}/dashboard/sign-in/slack/callback"
            settings.update(
                slack_client_id=CLIENT_ID,
                slack_client_secret=SecretStr(CLIENT_SECRET),
                slack_api_url=sign_in.api_url,
            )
        app = bootstrap(
            Settings(
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
                rules=EXAMPLES / "routing.yml",
                dashboard_token=SecretStr(token) if token is not None else None,
                public_url=public_url,
                **settings,
            ),
            db=db or sqlite_db,
            policy=policy,
            clock=clock,
        )
        apps.append(app)
        if with_policy is not None:
            app.reader.policy = with_policy
        if figures is None and wall_clock is None:
            http = build_http_app(app, metrics=Metrics())
        else:
            http = web.Application()
            extra: Mapping[str, Any] = {"wall_clock": wall_clock} if wall_clock else {}
            register(http, app, figures=figures, **extra)
        client = TestClient(TestServer(http, port=port))
        await client.start_server()
        clients.append(client)
        return Dashboard(client, app)

    yield make
    for client in clients:
        await client.close()
    for app in apps:
        await app.uow.aclose()


async def queue_leads(app: App, *leads: Mapping[str, Any]) -> None:
    """Leads that no rule takes, into the unmatched queue (APAC: no rule of the example policy)."""
    for fields in leads:
        result = await intake(app.uow, parse_lead({"country": "JP", **fields}))
        assert result.lead.status == "queued", result.lead


async def carded_lead(app: App, clock: Clock, fields: dict[str, Any]) -> None:
    """A lead through intake, its card posted in the rep's DM now (a 15-minute claim SLA)."""
    from bot.service.unit_of_work import Transaction
    from storage import repository as repo
    from tests.service.support import offers_of

    await intake(app.uow, parse_lead(fields))
    offer_id = (await offers_of(app.db, fields["id"]))[-1].id or 0
    now = clock()

    def card_posted(tx: Transaction) -> None:
        repo.record_card_posted(
            session=tx.session,
            offer_id=offer_id,
            team_copy=False,
            channel="D1",
            ts=f"{offer_id}.0",
            sla_due_at=now + timedelta(minutes=15),
            posted_at=now,
        )

    await app.uow.write(card_posted)


async def a_morning_reported(app: App, clock: Clock) -> None:
    """Leads through the real use cases, then the report brought up to date: two EMEA leads and
    two small-business ones carded at once, one of each claimed 3 minutes later; a lead no rule
    takes waiting in the queue. The clock ends 10 minutes on."""
    from bot.service.offers import claim
    from bot.service.report import refresh_report
    from tests.service.support import offers_of

    leads = {
        "E-1": {"country": "DE"},
        "E-2": {"country": "FR"},
        "S-1": {"country": "US", "employees": 20},
        "S-2": {"country": "US", "employees": 30},
    }
    for lead_id, fields in leads.items():
        await carded_lead(
            app, clock, {"id": lead_id, "email": f"x@{lead_id.lower()}.example", **fields}
        )
    await queue_leads(app, {"id": "Q-1"})
    clock.advance(minutes=3)
    for lead_id in ("E-1", "S-1"):
        offer = (await offers_of(app.db, lead_id))[-1]
        await claim(app.uow, lead_id, by=offer.rep_id)
    clock.advance(minutes=7)
    await refresh_report(app.uow)
