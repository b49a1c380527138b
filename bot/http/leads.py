"""`POST /leads`. A request is checked in this order, and the first failure answers:

    503  no webhook secret configured (nothing can be authenticated)
    413  body over 1 MiB (declared or actually read)
    401  X-Leadrouter-Timestamp / X-Leadrouter-Signature missing, wrong or stale
    415  Content-Type is not application/json
    400  not JSON, a key twice in one object, or neither a lead object nor {"leads": [1..1000]}
    422  a lead is invalid: {"errors": [{"field", "message"}]}, every problem at once
    409  the id was routed before for another lead (reused, not a retry): another e-mail
         address, or without one on either, another name, company, phone or CRM record

The signature is checked on the raw bytes before any parsing, so an unauthenticated caller gets
nothing past a 401. Success, one lead: 201 with the decision (`LeadView.as_json()`), or 200 with
the stored decision when the external id was routed before. Success, a batch: 200 with
{"results": [...]}, one decision per lead in input order, each with "created": true|false (and
an "error" where its id had been used for another lead: not routed).

A batch is validated whole first: one invalid lead and nothing is stored. It is then routed in
one transaction (`bot.service.intake.intake_many`), in input order, so rotation follows the order
the caller sent and a repeated id later in the same batch comes back as a repeat of the first;
either every lead of the batch is stored or none is, and resending a batch is always safe.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from aiohttp import web

from bot.http.common import (
    APP_KEY,
    METRICS_KEY,
    BadBody,
    decode_json,
    error,
    json_content_problem,
    read_body,
    too_large,
)
from bot.service.intake import intake, intake_many
from routing.leads import FieldError, InvalidLead, parse_lead
from routing.model import Lead

MAX_BATCH = 1000
SIGNATURE_TOLERANCE_S = 300

TIMESTAMP_HEADER = "X-Leadrouter-Timestamp"
SIGNATURE_HEADER = "X-Leadrouter-Signature"


async def post_leads(request: web.Request) -> web.Response:
    app, metrics = request.app[APP_KEY], request.app[METRICS_KEY]
    secret = app.settings.webhook_secret
    if secret is None:
        return error(
            503,
            "LEADROUTER_WEBHOOK_SECRET is not set, so no lead can be authenticated; "
            "set it and restart the server",
        )
    body = await read_body(request)
    if body is None:
        return too_large()
    problem = signature_problem(
        secret.get_secret_value().encode(),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
        body=body,
        now=app.uow.clock().timestamp(),
    )
    if problem is not None:
        return error(401, problem)
    content_problem = json_content_problem(request, "the lead")
    if content_problem is not None:
        return error(415, content_problem)
    try:
        items, is_batch = _leads_of(decode_json(body))
    except BadBody as exc:
        return error(400, str(exc))

    leads, errors = _parse_all(items, is_batch=is_batch)
    if errors:
        metrics.lead("invalid", len(items) - len(leads))
        return web.json_response(
            {"errors": [{"field": e.field, "message": e.message} for e in errors]}, status=422
        )

    parsed = time.perf_counter()
    # One lead joins the group commit; a batch is its own transaction.
    results = await intake_many(app.uow, leads) if is_batch else [await intake(app.uow, leads[0])]
    elapsed = time.perf_counter() - parsed  # a batch's decisions all commit together
    for result in results:
        if result.created:
            metrics.decision_seconds.observe(elapsed)
            metrics.lead(result.lead.status)
        else:
            metrics.lead("reused" if result.clash else "repeat")
    if not is_batch:
        (only,) = results
        if only.clash:
            return error(409, _clash_message(only.lead.id, only.clash))
        return web.json_response(only.lead.as_json(), status=201 if only.created else 200)
    return web.json_response(
        {
            "results": [
                {**r.lead.as_json(), "created": r.created}
                | ({"error": _clash_message(r.lead.id, r.clash)} if r.clash else {})
                for r in results
            ]
        }
    )


def _clash_message(lead_id: str, told_apart: str) -> str:
    return (
        f"the id {lead_id!r} was already used for a lead with {told_apart}, so this one was "
        "not routed; give each lead its own id (a retry must resend the same lead)"
    )


def signature_problem(
    secret: bytes, *, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> str | None:
    """Why the request is not authentic, or None when it is. Never mentions the secret."""
    if not timestamp:
        return f"missing {TIMESTAMP_HEADER} header (the time of sending, in unix seconds)"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        # Date.now() and currentTimeMillis() count milliseconds: thirteen digits these days.
        unit = " (not milliseconds)" if timestamp.isdigit() and len(timestamp) == 13 else ""
        return f"{TIMESTAMP_HEADER} must be the time of sending in whole unix seconds{unit}"
    off = int(timestamp) - int(now)
    if abs(now - int(timestamp)) > SIGNATURE_TOLERANCE_S:
        # A captured request cannot be replayed once the window has passed.
        return (
            f"{TIMESTAMP_HEADER} is more than 5 minutes away from the server's clock: "
            f"{abs(off)} s {'ahead' if off > 0 else 'behind'} (the server reads {int(now)}); "
            "sign with the time of sending, from a clock kept right"
        )
    if not signature:
        return f"missing {SIGNATURE_HEADER} header"
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, "sha256").hexdigest()
    if not signature.strip().lower().startswith("sha256="):
        return f"{SIGNATURE_HEADER} has no sha256= prefix: send sha256= and the hex digest"
    # Hex is hex in either case (.NET's Convert.ToHexString writes upper case).
    given = signature.strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode(), given):
        return (
            f"{SIGNATURE_HEADER} does not match: it must be sha256= and the hex HMAC-SHA256, "
            f'keyed by the webhook secret, of "{{timestamp}}.{{body}}", over the exact bytes '
            "sent (JSON serialised again after signing, with other key order, spaces or "
            "\\u escapes, no longer matches)"
        )
    return None


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
