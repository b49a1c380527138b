"""The dashboard on a real loopback port, over the test's SQLite database, with the settings and
figures each test gives it; and Slack's side of Sign in with Slack (`FakeSlackSignIn`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
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
    it) when no figures are given."""
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
            db=sqlite_db,
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
