"""What `GET /metrics` exposes, in Prometheus's text format.

Each `Metrics` has a registry of its own rather than prometheus-client's global one, so a process
(or a test) can build any number of apps without their series colliding. Counters and the
histogram are updated by the HTTP handlers; the two gauges describe the database, not this
process, so they are read from it at scrape time and are right whichever process did the work.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.service import Service
from storage import repository as repo
from storage.db import Database
from storage.models import LeadStatus

# Outcomes of `POST /leads`, per lead: the status a new lead was given, or what else happened.
# Created up front so every series exists (at 0) from the first scrape.
OUTCOMES = (
    LeadStatus.OFFERED.value,
    LeadStatus.QUEUED.value,
    LeadStatus.NURTURE.value,
    LeadStatus.DISQUALIFIED.value,
    "repeat",
    "invalid",
)

# The format generate_latest writes (prometheus-client names this constant only from 0.21 on).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A decision is one short transaction: tens of milliseconds, seconds when something is wrong.
DECISION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# (Service attribute, metric name, help): how routing went in this process, for telling whether
# replicas wait for each other (lock waits) or throw work away (transactions retried, decisions
# redone).
ROUTING_COUNTERS = (
    ("transactions", "routing_transactions", "Routing transactions committed by this process."),
    (
        "conflicts",
        "routing_retries",
        "Routing transactions rolled back and run again (a race lost, a scope found busy).",
    ),
    ("decisions", "decisions", "Decisions committed by this process."),
    (
        "decisions_redone",
        "decisions_redone",
        "Decisions thrown away with a rolled-back routing transaction and made again.",
    ),
    (
        "decisions_replanned",
        "decisions_replanned",
        "Decisions made again within their transaction after taking the team scope they "
        "landed in (PostgreSQL).",
    ),
    (
        "lock_waits",
        "routing_lock_waits",
        "Team scopes that were held by another transaction when a routing transaction asked "
        "for them (PostgreSQL).",
    ),
    (
        "lock_wait_seconds",
        "routing_lock_wait_seconds",
        "Time routing transactions spent waiting for team scopes held by another transaction.",
    ),
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.leads = Counter(
            "leadrouter_leads_total",
            "Leads received by POST /leads, by outcome: the new lead's status, "
            "repeat (an external id already routed) or invalid.",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.leads.labels(outcome)
        self.decision_seconds = Histogram(
            "leadrouter_decision_seconds",
            "Time from a new lead parsed to its decision committed.",
            buckets=DECISION_BUCKETS,
            registry=self.registry,
        )
        self.open_offers = Gauge(
            "leadrouter_open_offers",
            "Offers offered to a rep or claimed and not yet closed (read from the database).",
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "leadrouter_outbox_depth",
            "Side effects (Slack cards, CRM writes) waiting to be carried out "
            "(read from the database).",
            registry=self.registry,
        )
        self.http_errors = Counter(
            "leadrouter_http_errors_total",
            "HTTP responses with a 4xx or 5xx status, by status.",
            ["status"],
            registry=self.registry,
        )

        # The service's own tallies (`Service.transactions` and the rest), added at scrape time.
        self.routing = {
            name: Counter(f"leadrouter_{metric}_total", help_text, registry=self.registry)
            for name, metric, help_text in ROUTING_COUNTERS
        }
        self._routing_seen: dict[str, float] = dict.fromkeys(self.routing, 0.0)

    def lead(self, outcome: str, count: int = 1) -> None:
        self.leads.labels(outcome).inc(count)

    def http_error(self, status: int) -> None:
        self.http_errors.labels(str(status)).inc()

    async def read_database(self, db: Database) -> None:
        async with db.reading() as session:
            self.open_offers.set(await repo.count_open_offers(session=session))
            self.outbox_depth.set(await repo.outbox_depth(session=session))

    def read_routing(self, service: Service) -> None:
        for name, counter in self.routing.items():
            value = getattr(service, name)
            counter.inc(max(0, value - self._routing_seen[name]))
            self._routing_seen[name] = value

    def render(self) -> bytes:
        return generate_latest(self.registry)
