"""The one place that wires real parts together; tests call it with fakes instead.

app = bootstrap(settings)                  # the database, the policy, the service
app = bootstrap(settings, clock=FakeClock(), policy=policy_for_test)
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.crm_links import links_from
from bot.reading import Reader
from bot.service import Service
from bot.settings import Settings
from routing.policy import Policy, load_policy
from storage.db import Database, open_database

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.delivery import CardDelivery


@dataclass
class App:
    settings: Settings
    db: Database
    service: Service
    policy: Policy
    reader: Reader
    slack: AsyncApp | None = None  # None when SLACK_BOT_TOKEN is not set
    delivery: CardDelivery | None = None

    async def close(self) -> None:
        await self.service.aclose()
        await self.db.dispose()


def bootstrap(
    settings: Settings,
    *,
    policy: Policy | None = None,
    db: Database | None = None,
    clock: Callable[[], datetime] | None = None,
    slack_client: AsyncWebClient | None = None,
) -> App:
    """Build the application from settings. Raises PolicyError for a bad policy file.

    With SLACK_BOT_TOKEN set, also the Slack app and the card delivery; `slack_client` replaces
    the Web API client built from the settings (tests point one at a fake Slack)."""
    loaded = policy if policy is not None else load_policy(settings.rules)
    database = db if db is not None else open_database(settings.database_url)
    now = clock or (lambda: datetime.now(UTC))
    service = Service(db=database, policy=lambda: loaded, clock=now)
    reader = Reader(db=database, policy=lambda: loaded, clock=now, crm_links=links_from(settings))
    slack_app = delivery = None
    if settings.slack_enabled:
        from bot.slack.app import SlackParts, build_client, build_slack_app
        from bot.slack.delivery import CardDelivery

        client = slack_client or build_client(settings)
        parts = SlackParts(service=service, reader=reader, policy=lambda: loaded, clock=now)
        slack_app = build_slack_app(settings, parts, client)
        delivery = CardDelivery(
            db=database, reader=reader, client=client, policy=lambda: loaded, clock=now
        )
        service.on_outbox = delivery.wake
    # Everything loaded so far lives as long as the process: keep the collector from walking it
    # on every full collection (it doubled the time per decision in the routing benchmark).
    gc.collect()
    gc.freeze()
    return App(
        settings=settings,
        db=database,
        service=service,
        policy=loaded,
        reader=reader,
        slack=slack_app,
        delivery=delivery,
    )
