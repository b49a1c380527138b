"""What `GET /metrics` exposes, in Prometheus's text format.

Each `Metrics` has a registry of its own rather than prometheus-client's global one, so a process
(or a test) can build any number of apps without their series colliding. Counters describe this
process (sum them over the replicas): the HTTP handlers update theirs as they answer, a job that
fails counts itself, and the tallies the unit of work and the outbox workers keep (decisions, SLA
misses, deliveries failed and given up) are added at scrape time. Gauges describe the database
(open offers, outbox depth, the unmatched queue), so they are read from it at scrape time and are
right whichever process did the work. Series an alert reads exist at 0 from the first scrape, so
`increase()` sees their first change.

`ops/alerts.yml` and `ops/grafana-dashboard.json` read these names; `tests/ops` checks that they
read no other.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from bot.bootstrap import App
from bot.outbox import OutboxWorker
from bot.service.gauges import backlogs
from bot.service.kinds import OWNER_WRITE_KINDS, OutboxKind
from bot.service.unit_of_work import Tally, UnitOfWork
from storage.models import LeadStatus

log = logging.getLogger(__name__)

# Outcomes of `POST /leads`, per lead: the status a new lead was given, or what else happened.
# Created up front so every series exists (at 0) from the first scrape.
OUTCOMES = (
    LeadStatus.OFFERED.value,
    LeadStatus.QUEUED.value,
    LeadStatus.NURTURE.value,
    LeadStatus.DISQUALIFIED.value,
    "repeat",
    "reused",  # an id sent before for another lead: refused 409
    "invalid",
)

# The format generate_latest writes (prometheus-client names this constant only from 0.21 on).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A decision is one short transaction: tens of milliseconds, seconds when something is wrong.
DECISION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# (`Tally` attribute, metric name, help): how routing went in this process, for telling whether
# replicas wait for each other (lock waits) or throw work away (transactions retried, decisions
# redone), and what the watchdog found.
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
    (
        "sla_misses",
        "sla_misses",
        "Offers whose SLA lapsed unclaimed, found by this process's SLA sweeps (each is "
        "reassigned or queued).",
    ),
    (
        "contact_misses",
        "contact_sla_misses",
        "Claimed leads not touched (or touched late) by their contact SLA, found by this "
        "process's SLA sweeps.",
    ),
)

# Outbox kinds, as the metrics name them: (family, label) for each kind a worker carries out.
SLACK = "slack_deliveries"
WRITEBACKS = "crm_writebacks"
CONTACTS = "crm_contacts"
OUTBOX_SERIES: dict[str, tuple[str, str]] = {
    **{kind.value: (SLACK, kind.value.removeprefix("slack.")) for kind in OutboxKind},
    **{kind.value: (WRITEBACKS, system) for system, kind in OWNER_WRITE_KINDS.items()},
    OutboxKind.HUBSPOT_CONTACT.value: (CONTACTS, "hubspot"),
}
FAMILIES = {
    SLACK: ("kind", "Slack posts and card updates (by outbox kind)"),
    WRITEBACKS: ("crm", "Owner write-backs to a CRM record"),
    CONTACTS: ("crm", "Contacts a CRM announced by webhook, to fetch and route"),
}

SlackProbe = Callable[[], bool | Awaitable[bool]]


class Metrics:
    def __init__(self) -> None:
        # Without this, each counter and histogram has a `_created` twin in the text format, a
        # gauge of Unix times named like a count (`leadrouter_decisions_created`): twice the
        # series, and a misreading waiting to happen. Prometheus needs none of them.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
        self.registry = CollectorRegistry()
        self.leads = Counter(
            "leadrouter_leads_total",
            "Leads received by POST /leads, by outcome: the new lead's status, "
            "repeat (an external id already routed), reused (that id, another lead: 409) "
            "or invalid.",
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

        self.unmatched = Gauge(
            "leadrouter_unmatched_leads",
            "Leads waiting in a queue for a manager to assign them (read from the database).",
            registry=self.registry,
        )
        self.unmatched_oldest = Gauge(
            "leadrouter_unmatched_oldest_age_seconds",
            "How long the lead waiting longest in a queue has waited since it arrived; 0 when "
            "none waits (read from the database).",
            registry=self.registry,
        )
        self.job_failures = Counter(
            "leadrouter_job_failures_total",
            "Scheduled runs that failed (logged and rolled back; the job runs again at its "
            "next time), by job.",
            ["job"],
            registry=self.registry,
        )

        # The unit of work's tallies (`Tally.transactions` and the rest), added at scrape time.
        self.routing = {
            name: Counter(f"leadrouter_{metric}_total", help_text, registry=self.registry)
            for name, metric, help_text in ROUTING_COUNTERS
        }
        self._routing_seen: dict[str, float] = dict.fromkeys(self.routing, 0.0)

        # The outbox workers' tallies (`OutboxWorker.failed`, `.given_up`), by family and label.
        self.outbox_failed: dict[str, Counter] = {}
        self.outbox_given_up: dict[str, Counter] = {}
        for family, (label, what) in FAMILIES.items():
            self.outbox_failed[family] = Counter(
                f"leadrouter_{family}_failed_total",
                f"{what}: attempts that failed (tried again later unless given up).",
                [label],
                registry=self.registry,
            )
            self.outbox_given_up[family] = Counter(
                f"leadrouter_{family}_given_up_total",
                f"{what}: items given up (an error that will not pass, or too many attempts).",
                [label],
                registry=self.registry,
            )
        for family, label in OUTBOX_SERIES.values():
            self.outbox_failed[family].labels(label)
            self.outbox_given_up[family].labels(label)
        self._outbox_seen: dict[tuple[int, str, str], int] = {}

        self.slack_connected: Gauge | None = None  # only once an app says it has a connection
        self._slack_probe: SlackProbe | None = None

    def lead(self, outcome: str, count: int = 1) -> None:
        self.leads.labels(outcome).inc(count)

    def http_error(self, status: int) -> None:
        self.http_errors.labels(str(status)).inc()

    def watch_jobs(self, names: Iterable[str]) -> None:
        """The jobs this process runs: each has its failure count from the first scrape."""
        for name in names:
            self.job_failures.labels(name)

    def job_failed(self, name: str) -> None:
        self.job_failures.labels(name).inc()

    def watch_slack_connection(self, connected: SlackProbe) -> None:
        """Socket Mode: `connected()` (plain or async) says whether the websocket to Slack is
        open; each scrape reads it into `leadrouter_slack_connected` (1 or 0; 0 if it fails).
        Without one (HTTP mode, where Slack connects to us, or no Slack) the series is absent."""
        if self.slack_connected is None:
            self.slack_connected = Gauge(
                "leadrouter_slack_connected",
                "1 while the Socket Mode connection to Slack is open, else 0 (Socket Mode only).",
                registry=self.registry,
            )
        self._slack_probe = connected

    async def scrape(self, app: App) -> bytes:
        """Everything read afresh, in Prometheus's text format."""
        await self.read_database(app.uow)
        self.read_routing(app.uow.tally)
        self.read_workers(app.workers)
        await self.read_slack_connection()
        return self.render()

    async def read_database(self, uow: UnitOfWork) -> None:
        now = uow.clock()
        found = await backlogs(uow)
        self.open_offers.set(found.open_offers)
        self.outbox_depth.set(found.outbox_depth)
        self.unmatched.set(found.unmatched)
        oldest = found.unmatched_since
        self.unmatched_oldest.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)

    def read_routing(self, tally: Tally) -> None:
        for name, counter in self.routing.items():
            value = getattr(tally, name)
            counter.inc(max(0, value - self._routing_seen[name]))
            self._routing_seen[name] = value

    def read_workers(self, workers: Sequence[OutboxWorker]) -> None:
        for worker in workers:
            for counters, tally, which in (
                (self.outbox_failed, worker.failed, "failed"),
                (self.outbox_given_up, worker.given_up, "given_up"),
            ):
                for kind, value in tally.items():
                    series = OUTBOX_SERIES.get(kind)
                    if series is None:
                        continue
                    key = (id(worker), which, kind)
                    family, label = series
                    counters[family].labels(label).inc(value - self._outbox_seen.get(key, 0))
                    self._outbox_seen[key] = value

    async def read_slack_connection(self) -> None:
        if self.slack_connected is None or self._slack_probe is None:
            return
        try:
            answer = self._slack_probe()
            connected = await answer if inspect.isawaitable(answer) else answer
        except Exception:
            log.debug("metrics: the Slack connection could not be read", exc_info=True)
            connected = False
        self.slack_connected.set(1 if connected else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
