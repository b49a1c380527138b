"""The HTTP front door: `POST /leads`, `GET /healthz`, `GET /metrics`.

A request is checked in this order, and the first failure answers:

    503  no webhook secret configured (nothing can be authenticated)
    413  body over 1 MiB (declared or actually read)
    401  X-Leadrouter-Timestamp / X-Leadrouter-Signature missing, wrong or stale
    415  Content-Type is not application/json
    400  not JSON, or JSON that is neither a lead object nor {"leads": [1..1000 objects]}
    422  a lead is invalid: {"errors": [{"field", "message"}]}, every problem at once

The signature is checked on the raw bytes before any parsing, so an unauthenticated caller gets
nothing past a 401. Success, one lead: 201 with the decision (`LeadView.as_json()`), or 200 with
the stored decision when the external id was routed before. Success, a batch: 200 with
{"results": [...]}, one decision per lead in input order, each with "created": true|false.

A batch is validated whole first: one invalid lead and nothing is stored. It is then routed in
one transaction (`Service.intake_many`), in input order, so rotation follows the order the caller
sent and a repeated id later in the same batch comes back as a repeat of the first; either every
lead of the batch is stored or none is, and resending a batch is always safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import json
import logging
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.bootstrap import App
from bot.crm.base import is_hubspot_id
from bot.dashboard.routes import register as register_dashboard
from bot.metrics import CONTENT_TYPE, Metrics
from routing.leads import FieldError, InvalidLead, parse_lead
from routing.model import Lead

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
MAX_BATCH = 1000
SIGNATURE_TOLERANCE_S = 300
# Deeper JSON than any lead needs would only reach the recursion limit further down.
MAX_DEPTH = 32
# RFC 8259: integers beyond ±2^53 do not survive other JSON implementations, and Python's own
# float() overflows on the far larger ones it would otherwise accept.
MAX_SAFE_INTEGER = 2**53
SHUTDOWN_TIMEOUT_S = 30.0

TIMESTAMP_HEADER = "X-Leadrouter-Timestamp"
SIGNATURE_HEADER = "X-Leadrouter-Signature"

APP_KEY = web.AppKey("leadrouter", App)
METRICS_KEY = web.AppKey("metrics", Metrics)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadBody(ValueError):
    """The body is not a lead or a batch of leads (400); the message says what it must be."""


def build_http_app(
    app: App, *, metrics: Metrics, run_jobs: bool = False, connect_slack: bool = False
) -> web.Application:
    """The aiohttp application. With `run_jobs` (`leadrouter serve`), the scheduled jobs (the SLA
    watchdog, digests) run beside it from start-up to shutdown; with `connect_slack`, the link to
    Slack is kept up in the background (the Socket Mode websocket), never delaying the start."""
    http = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_errors_middleware])
    http[APP_KEY] = app
    http[METRICS_KEY] = metrics
    http.router.add_post("/leads", post_leads)
    http.router.add_get("/healthz", healthz)
    http.router.add_get("/metrics", metrics_text)
    if app.slack is not None and not app.settings.socket_mode:
        http.router.add_post("/slack/events", slack_events)
    http.router.add_post("/webhooks/hubspot", hubspot_webhook)
    register_dashboard(http, app)
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
HUBSPOT_SKEW_MS = 5 * 60 * 1000


async def slack_events(request: web.Request) -> web.Response:
    """Slack's events, actions, view submissions and slash commands, handed to Bolt, which checks
    the signature (401 when it is wrong or stale, and nothing runs) and acks."""
    slack = request.app[APP_KEY].slack
    assert slack is not None
    if not request.headers.get(SLACK_TIMESTAMP_HEADER, "").strip().isdigit():
        # Bolt would fail on it with a 500; nothing unsigned gets further than this.
        return _error(401, "missing or malformed X-Slack-Request-Timestamp")
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
    (`Service.summarise_backlog`). Nothing of it may stop the server from starting."""
    try:
        await http[APP_KEY].service.summarise_backlog()
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
    scheduler = start_scheduler(jobs, app.service, failed=metrics.job_failed)
    yield
    await scheduler.stop()


# --- POST /webhooks/hubspot --------------------------------------------------------------------

HUBSPOT_SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
HUBSPOT_TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_WEBHOOK_EVENTS = 1000


async def hubspot_webhook(request: web.Request) -> web.Response:
    """HubSpot's webhook: contact.creation events queue each contact to be fetched and routed.
    Answers at once (HubSpot waits 5 seconds at most); other subscription types are ignored."""
    app = request.app[APP_KEY]
    secret = app.settings.hubspot_client_secret
    if secret is None or "hubspot" not in app.crm:
        return _error(
            503,
            "HubSpot webhooks need HUBSPOT_CLIENT_SECRET (to check them) and "
            "HUBSPOT_ACCESS_TOKEN (to fetch the contacts); set both and restart",
        )
    body = await _read_body(request)
    if body is None:
        return _too_large()
    problem = hubspot_signature_problem(
        secret.get_secret_value(),
        signature=request.headers.get(HUBSPOT_SIGNATURE_HEADER),
        timestamp=request.headers.get(HUBSPOT_TIMESTAMP_HEADER),
        body=body,
        uri=app.settings.hubspot_webhook_url or str(request.url),
    )
    if problem is not None:
        return _error(401, problem)
    try:
        events = decode_json(body)
    except BadBody as exc:
        return _error(400, str(exc))
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return _error(400, "a HubSpot webhook body is a JSON array of event objects")
    if len(events) > MAX_WEBHOOK_EVENTS:
        return _error(413, f"at most {MAX_WEBHOOK_EVENTS} events per request")
    contacts = [
        str(event["objectId"])
        for event in events
        if event.get("subscriptionType") == "contact.creation"
        and is_hubspot_id(str(event.get("objectId", "")))
    ]
    queued = await app.service.queue_crm_contacts(contacts)
    ignored = len(events) - len(contacts)
    return web.json_response(
        {"queued": queued, "repeated": len(contacts) - queued, "ignored": ignored}
    )


def hubspot_signature_problem(
    secret: str, *, signature: str | None, timestamp: str | None, body: bytes, uri: str
) -> str | None:
    """Why HubSpot's v3 signature does not hold (None when it does), by HubSpot's own helper:
    base64 HMAC-SHA256 of method, URI, body and timestamp, the timestamp within 5 minutes."""
    if not signature or not timestamp:
        return f"missing {HUBSPOT_SIGNATURE_HEADER} or {HUBSPOT_TIMESTAMP_HEADER}"
    # HubSpot's helper refuses only old timestamps; one from the future is refused here too.
    if not timestamp.isdigit() or abs(int(timestamp) - time.time() * 1000) > HUBSPOT_SKEW_MS:
        return "the request timestamp is malformed or more than 5 minutes off"
    # Imported here: the hubspot package costs ~80 ms to import, which a server without
    # HubSpot need not pay at start-up.
    from hubspot.exceptions import InvalidSignatureTimestampError
    from hubspot.utils.signature import Signature

    try:
        valid = Signature.is_valid(
            signature=signature,
            client_secret=secret,
            request_body=body.decode("utf-8"),
            http_uri=uri,
            http_method="POST",
            signature_version="v3",
            timestamp=timestamp,
        )
    except (InvalidSignatureTimestampError, OSError):  # OSError: beyond the platform's time_t
        return "the request timestamp is missing, malformed or older than 5 minutes"
    except UnicodeDecodeError:
        return "the body is not UTF-8, so it cannot carry a valid signature"
    return None if valid else "the signature does not match (check HUBSPOT_CLIENT_SECRET)"


# --- POST /leads ---------------------------------------------------------------------------------


async def post_leads(request: web.Request) -> web.Response:
    app, metrics = request.app[APP_KEY], request.app[METRICS_KEY]
    secret = app.settings.webhook_secret
    if secret is None:
        return _error(
            503,
            "LEADROUTER_WEBHOOK_SECRET is not set, so no lead can be authenticated; "
            "set it and restart the server",
        )
    body = await _read_body(request)
    if body is None:
        return _too_large()
    problem = signature_problem(
        secret.get_secret_value().encode(),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
        body=body,
        now=app.service.clock().timestamp(),
    )
    if problem is not None:
        return _error(401, problem)
    if request.content_type != "application/json":
        return _error(415, "send the lead as JSON, with Content-Type: application/json")
    try:
        items, is_batch = _leads_of(decode_json(body))
    except BadBody as exc:
        return _error(400, str(exc))

    leads, errors = _parse_all(items, is_batch=is_batch)
    if errors:
        metrics.lead("invalid", len(items) - len(leads))
        return web.json_response(
            {"errors": [{"field": e.field, "message": e.message} for e in errors]}, status=422
        )

    parsed = time.perf_counter()
    # One lead joins the service's group commit; a batch is its own transaction.
    results = (
        await app.service.intake_many(leads) if is_batch else [await app.service.intake(leads[0])]
    )
    elapsed = time.perf_counter() - parsed  # a batch's decisions all commit together
    for result in results:
        if result.created:
            metrics.decision_seconds.observe(elapsed)
            metrics.lead(result.lead.status)
        else:
            metrics.lead("repeat")
    if not is_batch:
        (only,) = results
        return web.json_response(only.lead.as_json(), status=201 if only.created else 200)
    return web.json_response(
        {"results": [{**r.lead.as_json(), "created": r.created} for r in results]}
    )


def signature_problem(
    secret: bytes, *, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> str | None:
    """Why the request is not authentic, or None when it is. Never mentions the secret."""
    if not timestamp:
        return f"missing {TIMESTAMP_HEADER} header (the time of sending, in unix seconds)"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return f"{TIMESTAMP_HEADER} must be the time of sending in whole unix seconds"
    if abs(now - int(timestamp)) > SIGNATURE_TOLERANCE_S:
        # A captured request cannot be replayed once the window has passed.
        return f"{TIMESTAMP_HEADER} is more than 5 minutes away from the server's clock"
    if not signature:
        return f"missing {SIGNATURE_HEADER} header"
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, "sha256").hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
        return (
            f"{SIGNATURE_HEADER} does not match: it must be sha256= and the hex HMAC-SHA256, "
            f'keyed by the webhook secret, of "{{timestamp}}.{{body}}"'
        )
    return None


def decode_json(body: bytes) -> Any:
    """The body as JSON that every part below can store and answer with, or BadBody."""
    try:
        data = json.loads(
            body,
            parse_constant=_no_constant,
            parse_int=_safe_int,
            parse_float=_finite_float,
        )
    except RecursionError:
        raise BadBody(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None
    except BadBody:
        raise
    except ValueError as exc:  # JSONDecodeError, and bytes that are not UTF-8/16/32
        raise BadBody(f"the body is not valid JSON ({_first_line(exc)})") from None
    _check_values(data)
    return data


def _no_constant(name: str) -> Any:
    raise BadBody(f"the body is not valid JSON ({name} is not a JSON number)")


def _safe_int(text: str) -> int:
    # Checked on the text, before int() could spend time on a very long one.
    if len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_SAFE_INTEGER:
        raise BadBody(f"the number {text[:20]} is too large; numbers must be within ±2^53")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BadBody(f"the number {text[:20]} is too large")
    return value


def _check_values(data: Any) -> None:
    """Depth, and text the databases can store: no lone surrogates (not UTF-8 at all) and no
    NUL characters (which PostgreSQL text cannot hold)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadBody(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise BadBody("text in the body must not contain the NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadBody("text in the body must be valid Unicode (it has a lone surrogate)") from None


def _first_line(exc: ValueError) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _leads_of(data: Any) -> tuple[list[Any], bool]:
    """The leads in the body and whether it was a batch, or BadBody."""
    if not isinstance(data, dict):
        raise BadBody('the body must be one lead as a JSON object, or {"leads": [...]}')
    # Only an object whose one key is "leads" is a batch: a single lead may well carry a
    # custom field called "leads".
    if list(data) != ["leads"]:
        return [data], False
    items = data["leads"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise BadBody(f'"leads" must be a list of 1 to {MAX_BATCH} leads')
    return items, True


def _parse_all(items: list[Any], *, is_batch: bool) -> tuple[list[Lead], list[FieldError]]:
    leads: list[Lead] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        prefix = f"leads[{index}]" if is_batch else ""
        if not isinstance(item, dict):
            errors.append(FieldError(prefix or "lead", "a lead is a JSON object of fields"))
            continue
        try:
            leads.append(parse_lead(item))
        except InvalidLead as exc:
            errors.extend(
                FieldError(f"{prefix}.{e.field}" if prefix else e.field, e.message)
                for e in exc.errors
            )
    return leads, errors


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
    text = await request.app[METRICS_KEY].scrape(request.app[APP_KEY])
    # Set whole: aiohttp's content_type= would drop the version parameter Prometheus reads.
    return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE})


# --- errors ------------------------------------------------------------------------------------


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answers JSON: aiohttp's own (404, 405) too, and an unknown exception becomes a
    500 with an id that finds its traceback in the log. 4xx and 5xx are counted."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = _error(exc.status, exc.reason)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    except Exception:
        error_id = secrets.token_hex(6)
        log.exception("internal error %s on %s %s", error_id, request.method, request.path)
        response = web.json_response({"error": "internal error", "id": error_id}, status=500)
    if response.status >= 400:
        request.app[METRICS_KEY].http_error(response.status)
    return response


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _read_body(request: web.Request) -> bytes | None:
    """The request's body; None when it is larger than MAX_BODY_BYTES."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return None
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None


def _too_large() -> web.Response:
    return _error(
        413, f"the body is larger than 1 MiB ({MAX_BODY_BYTES} bytes); send fewer leads at once"
    )


# --- running -----------------------------------------------------------------------------------


class ListenError(Exception):
    """The address cannot be listened on; the message says why and what to change."""


@dataclass
class Listener:
    """Sockets bound and listening, before anything else starts: a port in use or an address
    not of this machine is found before the database is migrated or a job is scheduled."""

    sockets: list[socket.socket]
    url: str

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


LISTEN_BACKLOG = 128


def listen(host: str, port: int) -> Listener:
    """Bind every address `host` resolves to (as asyncio's create_server would), or ListenError."""
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(
            f"cannot listen on {where}: {host} is not an address of this machine nor a name "
            f"it can look up ({exc.strerror}); set HOST to 0.0.0.0 for every address, or to "
            "127.0.0.1"
        ) from None
    sockets: list[socket.socket] = []
    bound: set[tuple[int, Any]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in bound:
                continue
            bound.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # One socket per family, as asyncio does: an IPv6 one would take IPv4 too.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ListenError(f"cannot listen on {where}: {_why_not(exc, host)}") from None
    shown_host = f"[{host}]" if ":" in host else host
    return Listener(sockets, f"http://{shown_host}:{port}")


def _why_not(exc: OSError, host: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "another program listens there already; stop it, or set PORT to a free port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host} is not an address of this machine; set HOST to one of its addresses, "
            "or to 0.0.0.0 for all of them"
        )
    if exc.errno == errno.EACCES:
        return "not allowed (ports below 1024 need more rights); set PORT to 1024 or above"
    return exc.strerror or str(exc)


async def run(http: web.Application, listener: Listener, *, started: Callable[[str], None]) -> None:
    """Serve on the listener's sockets until SIGTERM or SIGINT, then stop accepting, finish the
    requests in flight (up to SHUTDOWN_TIMEOUT_S) and run the app's cleanup. `started` gets the
    URL once it serves."""
    received: list[signal.Signals] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(sig, received, stop))
    runner = web.AppRunner(http, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    try:
        await runner.setup()
        for sock in listener.sockets:
            await web.SockSite(runner, sock).start()
        started(listener.url)
        await stop.wait()
        log.info(
            "%s received: stopping (no new requests; those in flight have %g s to finish)",
            received[0].name,
            SHUTDOWN_TIMEOUT_S,
        )
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _stopper(
    sig: signal.Signals, received: list[signal.Signals], stop: asyncio.Event
) -> Callable[[], None]:
    def handle() -> None:
        received.append(sig)
        stop.set()

    return handle
