"""The HTTP front door: the aiohttp application, and what runs beside it from start to shutdown.

    POST /leads              new leads, signed (`bot.http.leads`)
    POST /events             what became of leads: first touch, opportunity, won, lost (signed)
    POST /webhooks/hubspot   contacts HubSpot announces (`bot.http.hubspot`)
    POST /slack/events       Slack's events, actions and commands, handed to Bolt (HTTP mode)
    GET  /healthz, /metrics  whether the database answers; what Prometheus scrapes
    /dashboard               the managers' dashboard (`bot.dashboard`)

Every error answers JSON, an unknown one a 500 with an id that finds its traceback in the log.
Binding the sockets and serving until SIGTERM is `bot.http.serving`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import ClientSession, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.bootstrap import App
from bot.dashboard.routes import register as register_dashboard
from bot.http.common import APP_KEY, MAX_BODY_BYTES, METRICS_KEY, error
from bot.http.events import post_events
from bot.http.hubspot import hubspot_webhook
from bot.http.leads import post_leads
from bot.metrics import CONTENT_TYPE, Metrics
from bot.service.watchdog import summarise_backlog
from routing.policy import Policy
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_http_app(
    app: App,
    *,
    metrics: Metrics,
    run_jobs: bool = False,
    connect_slack: bool = False,
    watch_policy: bool = False,
) -> web.Application:
    """The aiohttp application. With `run_jobs` (`leadrouter serve`), the scheduled jobs (the SLA
    watchdog, digests) run beside it from start-up to shutdown; with `connect_slack`, the link to
    Slack is kept up in the background (the Socket Mode websocket), never delaying the start;
    with `watch_policy`, the policy file (`LEADROUTER_RULES`) and the active version are looked
    at while it runs, and SIGHUP reads the file at once (`bot.live_policy`)."""
    http = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_errors_middleware])
    http[APP_KEY] = app
    http[METRICS_KEY] = metrics
    http.router.add_post("/leads", post_leads)
    http.router.add_post("/events", post_events)
    http.router.add_get("/healthz", healthz)
    http.router.add_get("/metrics", metrics_text)
    if app.slack is not None and not app.settings.socket_mode:
        http.router.add_post("/slack/events", slack_events)
    http.router.add_post("/webhooks/hubspot", hubspot_webhook)
    register_dashboard(http, app, figures=app.figures)
    if watch_policy:
        http.cleanup_ctx.append(_keep_policy_live)  # first: what follows reads the policy
    if app.slack is not None:
        http.cleanup_ctx.append(_keep_slack_connections)
    if connect_slack and app.slack_link is not None:
        http.cleanup_ctx.append(_keep_slack_linked)
    if run_jobs and app.delivery is not None:
        http.cleanup_ctx.append(_summarise_backlog)  # before the workers post the backlog
    if app.workers:
        http.cleanup_ctx.append(_run_workers)
    if run_jobs:
        http.cleanup_ctx.append(_run_jobs)
    return http


# --- Slack --------------------------------------------------------------------------------------


SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"


async def slack_events(request: web.Request) -> web.Response:
    """Slack's events, actions, view submissions and slash commands, handed to Bolt, which checks
    the signature (401 when it is wrong or stale, and nothing runs) and acks."""
    slack = request.app[APP_KEY].slack
    assert slack is not None
    timestamp = request.headers.get(SLACK_TIMESTAMP_HEADER, "").strip()
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        # Bolt's int() would fail on it with a 500 (on "²" too, which isdigit() takes, and on
        # over 4,300 digits); nothing unsigned gets further than this.
        return error(401, "missing or malformed X-Slack-Request-Timestamp")
    response = await slack.async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(response)


async def _keep_slack_connections(http: web.Application) -> AsyncIterator[None]:
    """One HTTP session for every Web API call, the answers to people's and the outbox's posts
    alike, so connections to Slack are kept open and reused: slack_sdk's client otherwise
    opens (and closes) a connection per call."""
    app = http[APP_KEY]
    assert app.slack is not None
    clients = [app.slack.client]
    if app.delivery is not None and app.delivery.client is not app.slack.client:
        clients.append(app.delivery.client)
    session = ClientSession()
    for client in clients:
        client.session = session
    yield
    for client in clients:
        client.session = None  # a call still under way after this opens its own
    await session.close()


async def _keep_slack_linked(http: web.Application) -> AsyncIterator[None]:
    link = http[APP_KEY].slack_link
    assert link is not None
    task = asyncio.create_task(link.run(), name="slack:link")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _summarise_backlog(http: web.Application) -> AsyncIterator[None]:
    """Cards queued while no Slack app ran go out from here: their managers hear of them once
    (`summarise_backlog`). Nothing of it may stop the server from starting."""
    try:
        await summarise_backlog(http[APP_KEY].uow)
    except Exception:
        log.exception("the backlog could not be summarised; its cards go out all the same")
    yield


async def _run_workers(http: web.Application) -> AsyncIterator[None]:
    """The outbox workers (Slack cards, CRM writes) run beside the server, start to shutdown."""
    tasks = [
        asyncio.create_task(worker.run(), name=f"outbox:{','.join(worker.kinds)}")
        for worker in http[APP_KEY].workers
    ]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _run_jobs(http: web.Application) -> AsyncIterator[None]:
    from bot.jobs import declare_jobs, start_scheduler

    app, metrics = http[APP_KEY], http[METRICS_KEY]
    jobs = declare_jobs(app.policy, app.crm, app.settings.retention)
    metrics.watch_jobs(job.name for job in jobs)
    scheduler = start_scheduler(jobs, app.uow, failed=metrics.job_failed)

    def declare_again(_before: Policy, policy: Policy) -> None:
        # A new version of the policy has its own SLA check, digests and CRM polls.
        jobs = declare_jobs(policy, app.crm, app.settings.retention)
        metrics.watch_jobs(job.name for job in jobs)
        scheduler.declare(jobs)

    stop_declaring = app.live.on_switch(declare_again)
    yield
    stop_declaring()
    await scheduler.stop()


async def _keep_policy_live(http: web.Application) -> AsyncIterator[None]:
    """The policy file activated if it is not the active version, then looked at (with the
    active version) every LEADROUTER_POLICY_CHECK_SECONDS, and at once on SIGHUP."""
    from bot.jobs import runner_name
    from bot.live_policy import PolicyWatch

    app = http[APP_KEY]
    watch = PolicyWatch(
        app.live,
        app.uow,
        app.settings.rules,
        every_s=app.settings.policy_check_seconds,
        runner=runner_name(),
    )
    try:
        await watch.start()
    except Exception:
        # The file read at start serves all the same; the looks that follow try again.
        log.exception("policy: the policy file could not be activated at start")
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, watch.wake)
    task = asyncio.create_task(watch.run(), name="policy:watch")
    yield
    loop.remove_signal_handler(signal.SIGHUP)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --- GET /healthz, GET /metrics --------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """200 while the database answers, whatever Slack's state (`slack`): leads are taken and
    stored without Slack, and their cards wait in the outbox until it is back."""
    app = request.app[APP_KEY]
    if await app.db.ping():
        return web.json_response({"status": "ok", "slack": app.slack_state()})
    return web.json_response(
        {
            "status": "unavailable",
            "error": "the database does not answer",
            "slack": app.slack_state(),
        },
        status=503,
    )


async def metrics_text(request: web.Request) -> web.Response:
    """Prometheus's text; 503 while the database does not answer (its gauges are read from it),
    as /healthz says, rather than a 500 and a traceback at every scrape."""
    app = request.app[APP_KEY]
    token = app.settings.metrics_token
    if token is not None and not _bears(request, token.get_secret_value()):
        return error(
            401,
            "GET /metrics needs the header `Authorization: Bearer <token>`, the token being "
            "LEADROUTER_METRICS_TOKEN's value",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    if not await app.db.ping():
        log.warning("GET /metrics: the database does not answer")
        return error(503, "the database does not answer")
    text = await request.app[METRICS_KEY].scrape(app)
    # Set whole: aiohttp's content_type= would drop the version parameter Prometheus reads.
    return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE})


def _bears(request: web.Request, token: str) -> bool:
    """Whether the request carries the token as its bearer. Digests of equal length compared in
    constant time, as the dashboard's token is: not even the token's length is told."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        hashlib.sha256(given.strip().encode("utf-8", "surrogatepass")).digest(),
        hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest(),
    )


# --- errors ------------------------------------------------------------------------------------


RETRY_AFTER_DATABASE_S = 5  # what a 503 for a database out of reach asks the caller to wait


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answers JSON: aiohttp's own (404, 405) too, a database out of reach a 503,
    and an unknown exception a 500 with an id that finds its traceback in the log. 4xx and 5xx
    are counted."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = error(exc.status, exc.reason)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    except Exception as exc:
        if isinstance(exc, DatabaseUnavailable):
            # No fault of ours or the caller's to trace: nothing was written (what was under way
            # was rolled back), and asked again in a moment it may well be.
            log.warning("%s %s: %s", request.method, request.path, exc)
            response = error(
                503,
                "the database cannot be reached just now; send it again shortly",
                headers={"Retry-After": str(RETRY_AFTER_DATABASE_S)},
            )
        else:
            error_id = secrets.token_hex(6)
            log.exception("internal error %s on %s %s", error_id, request.method, request.path)
            response = web.json_response({"error": "internal error", "id": error_id}, status=500)
    if response.status >= 400:
        request.app[METRICS_KEY].http_error(response.status)
    return response
