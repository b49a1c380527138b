from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.bootstrap import App, bootstrap
from bot.http import build_http_app
from bot.metrics import Metrics
from bot.policy_file import load_policy
from bot.settings import Settings
from routing.policy import Policy, parse_policy
from storage.db import Database
from tests.bot.webhook import SECRET
from tests.databases import sqlite_database
from tests.fakes.slack import FakeSlack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Tuesday 17 Nov 2026, 17:15 UTC: Alice (Los Angeles) and Bob (New York) are working.
TUESDAY = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)

Client = TestClient
MakeClient = Callable[..., Awaitable[Client]]


class Clock:
    """A clock the tests move by hand; it dates both the decisions and the signatures."""

    def __init__(self, now: datetime = TUESDAY) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def timestamp(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(EXAMPLES / "routing.yml")


@pytest.fixture
def database_path(tmp_path: Path) -> Path:
    return tmp_path / "leads.db"


@pytest.fixture
async def sqlite_db(database_path: Path) -> AsyncIterator[Database]:
    async with sqlite_database(database_path) as db:
        yield db


def settings_for(database_path: Path, *, secret: str | None = SECRET) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{database_path}",
        webhook_secret=SecretStr(secret) if secret is not None else None,
        rules=EXAMPLES / "routing.yml",
    )


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def make_client(
    database_path: Path, sqlite_db: Database, policy: Policy, clock: Clock, metrics: Metrics
) -> AsyncIterator[MakeClient]:
    """The real aiohttp app on a real loopback port, over the test's SQLite database."""
    clients: list[Client] = []

    async def make(*, secret: str | None = SECRET, app: App | None = None) -> Client:
        application = app or bootstrap(
            settings_for(database_path, secret=secret), db=sqlite_db, policy=policy, clock=clock
        )
        client = TestClient(TestServer(build_http_app(application, metrics=metrics)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client()


# --- the Slack app against the fake Slack --------------------------------------------------------

SLACK_SIGNING_SECRET = "slack-signing-secret-for-tests"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def app(
    tmp_path: Path, sqlite_db: Database, clock: Clock, slack: FakeSlack, slack_policy: str
) -> AsyncIterator[App]:
    """The application with Slack on, for a module that names its policy in `slack_policy`.
    The Web API client is the one built from the settings, retry handlers and all."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
        slack_bot_token=SecretStr("xoxb-test-token"),
        slack_signing_secret=SecretStr(SLACK_SIGNING_SECRET),
        slack_api_url=slack.api_url,
    )
    application = bootstrap(settings, db=sqlite_db, policy=parse_policy(slack_policy), clock=clock)
    yield application
    await application.uow.aclose()


@pytest.fixture
async def http(app: App) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(build_http_app(app, metrics=Metrics())))
    await client.start_server()
    yield client
    await client.close()
