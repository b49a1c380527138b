"""The one place that wires real parts together; tests call it with fakes instead.

app = bootstrap(settings)                  # the database, the policy, the unit of work
app = bootstrap(settings, clock=FakeClock(), policy=policy_for_test)

Every part reads the policy through one `LivePolicy` (`app.live`), so a new version (`serve`'s
`PolicyWatch`) reaches all of them at once.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from pydantic import SecretStr

from bot.crm.link import CrmLink
from bot.crm_links import CrmLinks, record_url
from bot.dashboard.figures import Figures
from bot.live_policy import LivePolicy
from bot.outbox import OutboxWorker, Taker
from bot.policy_file import load_policy
from bot.reading import Reader
from bot.service.escalations import escalate
from bot.service.offers import card_undeliverable
from bot.service.report import report_rows
from bot.service.unit_of_work import UnitOfWork
from bot.service.views import NewOffer
from bot.settings import Settings
from routing.policy import Policy
from storage.db import Database, open_database

# Only types, and no cycle: Slack's parts are imported (at a cost of about a second) only where
# SLACK_BOT_TOKEN is set, below, and a server without Slack never loads them.
if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.connection import SlackConnection
    from bot.slack.delivery import CardDelivery


@dataclass
class App:
    settings: Settings
    db: Database
    uow: UnitOfWork  # what every use case takes (`bot.service`)
    live: LivePolicy  # the policy serving now
    reader: Reader
    # What the dashboard's overview and fairness pages show: the routing report's groups.
    figures: Figures | None = None
    slack: AsyncApp | None = None  # None when SLACK_BOT_TOKEN is not set
    delivery: CardDelivery | None = None
    slack_link: SlackConnection | None = None  # kept up beside the server by `serve`
    crm: dict[str, CrmLink] = field(default_factory=dict)  # by system, the configured CRMs
    crm_workers: list[OutboxWorker] = field(default_factory=list)  # owner write-backs, contacts

    @property
    def policy(self) -> Policy:
        """The policy serving now, as its file says it (`uow.policy()` adds the Slack ids of
        people it names by e-mail alone, once found)."""
        return self.live.current()

    @property
    def workers(self) -> list[OutboxWorker]:
        """Everything that carries out the outbox, to run beside the server."""
        return [*([self.delivery] if self.delivery else []), *self.crm_workers]

    def slack_state(self) -> str:
        """How Slack stands, for /healthz and the metrics: off (no SLACK_BOT_TOKEN),
        connecting, connected or unreachable (see `bot.slack.connection`). Unreachable too while
        the delivery finds the bot token refused: in Socket Mode the websocket may stay open on
        the app-level token all the same, and nothing can be posted."""
        if self.slack_link is None:
            return "off"
        if self.delivery is not None and self.delivery.token_refused is not None:
            return "unreachable"
        return self.slack_link.state.value

    def wake_workers(self) -> None:
        for worker in self.workers:
            worker.wake()

    def takers(self) -> dict[str, Taker]:
        """The kinds a worker running here carries out: the unit of work hands those over."""
        return {kind: w for w in self.workers if w.running for kind in w.kinds}

    async def close(self) -> None:
        await self.uow.aclose()
        for link in self.crm.values():
            link.calls.close()
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
    live = LivePolicy(policy if policy is not None else load_policy(settings.rules))
    database = db if db is not None else open_database(settings.database_url)
    now = clock or (lambda: datetime.now(UTC))
    crm = crm_links(settings, live.current)
    if crm:

        def reconfigure(_before: Policy, now: Policy) -> None:
            # A new version may name other fields or another queue: the CRMs read by it now.
            for link in crm.values():
                link.crm.configure(now.crm)

        live.on_switch(reconfigure)
    people = None
    current: Callable[[], Policy] = live.current
    if settings.slack_enabled:
        from bot.slack.app import build_client
        from bot.slack.people import SlackPeople

        client = slack_client or build_client(settings)
        # The policy with the member ids of people it names by e-mail alone, once found.
        people = SlackPeople(base=live.current, client=client)
        current = people.policy
    # Cards always start the SLA, whoever posts them: a lead routed where no Slack app runs
    # (an import, a server without SLACK_BOT_TOKEN) waits for its card before it is charged.
    uow = UnitOfWork(
        db=database,
        policy=current,
        clock=now,
        crms=frozenset(crm),
        cards=True,
        currency=settings.currency,
    )
    reader = Reader(
        db=database,
        policy=current,
        clock=now,
        crm_links=record_links(settings),
        crms=frozenset(crm),
        currency=settings.currency,
    )
    slack_app = delivery = slack_link = None
    if people is not None:
        from bot.slack.app import build_slack_app
        from bot.slack.connection import SlackConnection
        from bot.slack.delivery import CardDelivery
        from bot.slack.parts import SlackParts

        parts = SlackParts(uow=uow, reader=reader, policy=current, clock=now, people=people)
        slack_app = build_slack_app(settings, parts, people.client)
        # The outbox retries posts itself, honouring Retry-After and looking for a post whose
        # answer was lost before posting again: a client retrying on its own could post twice.
        delivery_client = slack_client or build_client(settings, retries=False)
        delivery = CardDelivery(
            db=database,
            reader=reader,
            client=delivery_client,
            policy=current,
            clock=now,
            on_undeliverable=_escalated(uow),
            on_given_up=partial(escalate, uow),
            people=people,
        )
        app_token = settings.slack_app_token
        slack_link = SlackConnection(
            client=delivery_client,
            app=slack_app if app_token is not None else None,
            app_token=app_token.get_secret_value() if app_token is not None else None,
        )
        uow.on_new_offers = _remembered_while_running(delivery, reader)
    crm_workers: list[OutboxWorker] = []
    if crm:
        from bot.crm.writeback import CrmWorker

        crm_workers = [
            CrmWorker(db=database, clock=now, uow=uow, link=link) for link in crm.values()
        ]
    # Everything loaded so far lives as long as the process: keep the collector from walking it
    # on every full collection (it doubled the time per decision in the routing benchmark).
    gc.collect()
    gc.freeze()
    app = App(
        settings=settings,
        db=database,
        uow=uow,
        live=live,
        reader=reader,
        figures=partial(report_rows, uow),
        slack=slack_app,
        delivery=delivery,
        slack_link=slack_link,
        crm=crm,
        crm_workers=crm_workers,
    )
    if app.workers:
        uow.on_outbox = app.wake_workers
        uow.takers = app.takers
    return app


def _escalated(uow: UnitOfWork) -> Callable[[int, str], Awaitable[None]]:
    async def escalate(offer_id: int, why: str) -> None:
        await card_undeliverable(uow, offer_id, why)

    return escalate


def _remembered_while_running(
    delivery: CardDelivery, reader: Reader
) -> Callable[[Sequence[NewOffer]], None]:
    """New offers are remembered for their cards only while the delivery runs here, when their
    cards are handed over at commit and posted straight away (see `Reader.new_offer_card`)."""

    def remember(offers: Sequence[NewOffer]) -> None:
        if delivery.running:
            reader.remember_new_offers(offers)

    return remember


def crm_links(settings: Settings, policy: Callable[[], Policy]) -> dict[str, CrmLink]:
    """The CRMs the settings hold credentials for, each with its call runner and owner map.
    Nothing connects here: the first call logs in."""
    if not (settings.salesforce_enabled or settings.hubspot_enabled):
        return {}
    from bot.crm import hubspot, salesforce
    from bot.crm.base import CrmCalls, CrmClient
    from bot.crm.owners import OwnerDirectory

    clients: list[CrmClient] = []
    if settings.salesforce_enabled:
        connect = salesforce.connector(
            instance_url=settings.salesforce_instance_url,
            access_token=_secret(settings.salesforce_access_token),
            username=settings.salesforce_username,
            password=_secret(settings.salesforce_password),
            security_token=_secret(settings.salesforce_security_token),
            client_id=settings.salesforce_client_id,
            client_secret=_secret(settings.salesforce_client_secret),
            domain=settings.salesforce_domain,
        )
        clients.append(salesforce.SalesforceCrm(connect))
    if settings.hubspot_access_token is not None:
        client = hubspot.client(
            access_token=settings.hubspot_access_token.get_secret_value(),
            api_url=settings.hubspot_api_url,
            concurrency=settings.crm_concurrency,
        )
        clients.append(hubspot.HubSpotCrm(client, portal_id=settings.hubspot_portal_id))
    links = {}
    for crm in clients:
        crm.configure(policy().crm)
        calls = CrmCalls(concurrency=settings.crm_concurrency)
        links[crm.system] = CrmLink(crm, calls, OwnerDirectory(crm, calls, policy))
    return links


def record_links(settings: Settings) -> CrmLinks:
    """`record_url` with the settings' addresses filled in."""
    return partial(
        record_url,
        salesforce_instance_url=settings.salesforce_instance_url,
        hubspot_portal_id=settings.hubspot_portal_id,
        hubspot_app_url=settings.hubspot_app_url,
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
