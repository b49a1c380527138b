"""`POST /events`: what became of leads after the hand-over, reported by anything that knows (a
sequencer, another CRM). Signed as `POST /leads` is, and checked in the same order:

    503  no webhook secret configured
    413  body over 1 MiB
    401  X-Leadrouter-Timestamp / X-Leadrouter-Signature missing, wrong or stale
    415  Content-Type is not application/json
    400  not JSON, a key twice in one object, or neither an event nor {"events": [1..1000]}
    422  an event is invalid: {"errors": [{"field", "message"}]}, every problem at once

An event: {"lead": its id as sent to /leads, "kind": "first_touch" | "converted" | "won" | "lost",
"at": ISO-8601 with its offset, and optionally "amount", "currency" (the amount's, ISO 4217),
"close_date" (won, lost, converted), "id" (the sender's id for it), "source" (who tells it; "api"
by default), "via" ("call"...)}. With `LEADROUTER_CURRENCY` set, an amount in another currency
is refused (422, naming both): leadrouter converts nothing, and sums no two currencies.

A batch is checked whole, then recorded in one transaction: all of it or none. Success is 200
{"accepted": n} whether the events were new, repeats, or about leads not here yet (those wait
for their lead, a day at most: `bot.service.outcomes`): the answer never says which leads
exist. An event is stored once: the same lead, kind, source and id (or, without an id, the same
time) again changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from bot.http.common import (
    APP_KEY,
    BadBody,
    decode_json,
    error,
    json_content_problem,
    read_body,
    too_large,
)
from bot.http.leads import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_problem
from bot.service.outcomes import MAX_AMOUNT, WAITING_HOLD, Reported, record_posted_events
from routing.durations import format_duration
from routing.leads import FieldError
from routing.money import currency_code, same_currency
from routing.report import EventKind, OutcomeEvent

log = logging.getLogger(__name__)

MAX_BATCH = 1000
MAX_LEAD_ID = 255
MAX_EVENT_ID = 200
# Clocks disagree a little; an event further ahead than the signature's tolerance has not happened.
FUTURE_TOLERANCE = timedelta(minutes=5)
FIELDS = ("lead", "kind", "at", "amount", "currency", "close_date", "id", "source", "via")
DEFAULT_SOURCE = "api"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_WORD = re.compile(r"[a-z][a-z _-]{0,31}")

Refuse = Callable[[str, str], None]  # (field, message): one more problem with the event


async def post_events(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    secret = app.settings.webhook_secret
    if secret is None:
        return error(
            503,
            "LEADROUTER_WEBHOOK_SECRET is not set, so no event can be authenticated; "
            "set it and restart the server",
        )
    body = await read_body(request)
    if body is None:
        return too_large()
    now = app.uow.clock()
    problem = signature_problem(
        secret.get_secret_value().encode(),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
        body=body,
        now=now.timestamp(),
    )
    if problem is not None:
        return error(401, problem)
    content_problem = json_content_problem(request, "the events")
    if content_problem is not None:
        return error(415, content_problem)
    try:
        items, is_batch = _events_of(decode_json(body))
    except BadBody as exc:
        return error(400, str(exc))
    reports: list[Reported] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        found = parse_event(
            item,
            now=now,
            where=f"events[{index}]." if is_batch else "",
            currency=app.settings.currency,
        )
        if isinstance(found, Reported):
            reports.append(found)
        else:
            errors.extend(found)
    if errors:
        return web.json_response(
            {"errors": [{"field": e.field, "message": e.message} for e in errors]}, status=422
        )
    recorded = await record_posted_events(app.uow, reports)
    if recorded.waiting:
        log.info(
            "POST /events: %d of %d events name no lead here yet; kept until it arrives "
            "(for up to %s)",
            recorded.waiting,
            len(reports),
            format_duration(WAITING_HOLD.total_seconds()),
        )
    return web.json_response({"accepted": len(reports)})


def _events_of(data: Any) -> tuple[list[Any], bool]:
    """The events in the body and whether it was a batch, or BadBody."""
    if not isinstance(data, dict):
        raise BadBody('the body must be one event as a JSON object, or {"events": [...]}')
    if list(data) != ["events"]:
        return [data], False
    items = data["events"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise BadBody(f'"events" must be a list of 1 to {MAX_BATCH} events')
    return items, True


def parse_event(
    item: Any, *, now: datetime, where: str = "", currency: str | None = None
) -> Reported | list[FieldError]:
    """One posted event as a report, or every problem with it (fields named after `where`);
    `currency`, what amounts here are in (`LEADROUTER_CURRENCY`), refuses an amount in another."""
    if not isinstance(item, dict):
        return [FieldError(where.rstrip(".") or "event", "an event is a JSON object of fields")]
    errors: list[FieldError] = []

    def refuse(name: str, message: str) -> None:
        errors.append(FieldError(f"{where}{name}", message))

    for name in item:
        if name not in FIELDS:
            refuse(name, f"is not a field of an event ({', '.join(FIELDS)})")
    given = item.get("lead")
    # As /leads reads a lead's id: text or a whole number, without surrounding blanks.
    readable = isinstance(given, str | int) and not isinstance(given, bool)
    lead = str(given).strip() if readable else ""
    if not lead:
        refuse("lead", "is required: the lead's id, as it was sent to /leads")
    elif len(lead) > MAX_LEAD_ID:
        refuse("lead", f"is longer than {MAX_LEAD_ID} characters")
    kind = _kind(item.get("kind"), refuse)
    at = _time(item.get("at"), now, refuse)
    amount = _amount(item.get("amount"), refuse)
    theirs = _currency(item.get("currency"), refuse)
    if amount is not None and not same_currency(theirs, currency):
        refuse(
            "amount",
            f"is in {theirs}, and amounts here are in {currency} (LEADROUTER_CURRENCY): "
            f"send it in {currency}, or send the event without its amount",
        )
    close_date = _date(item.get("close_date"), refuse)
    if kind is EventKind.FIRST_TOUCH:
        for name in ("amount", "currency", "close_date"):
            if item.get(name) is not None:
                refuse(name, "is for converted, won or lost, not a first touch")
    event_id = _text(item.get("id"), "id", MAX_EVENT_ID, refuse)
    source = item.get("source", DEFAULT_SOURCE)
    if not isinstance(source, str) or not _NAME.fullmatch(source):
        refuse("source", "must be a name of letters, digits, '.', '_' or '-' (up to 64)")
    via = item.get("via")
    if via is not None and (not isinstance(via, str) or not _WORD.fullmatch(via)):
        refuse("via", 'must be a word or two in lower case ("call", "email", "meeting")')
    if errors or kind is None or at is None:
        return errors
    return Reported(
        lead=lead,
        event=OutcomeEvent(kind, at, amount, close_date, theirs),
        source=str(source),
        # Without an id, the time it happened names it: the same instant however it is written.
        source_key=event_id if event_id is not None else at.astimezone(UTC).isoformat(),
        via=via,
    )


def _kind(value: Any, refuse: Refuse) -> EventKind | None:
    try:
        return EventKind(value)
    except ValueError:
        refuse("kind", f"must be one of {', '.join(kind.value for kind in EventKind)}")
        return None


def _time(value: Any, now: datetime, refuse: Refuse) -> datetime | None:
    if not isinstance(value, str):
        refuse("at", "is required: when it happened, ISO-8601 (2026-11-17T17:15:00Z)")
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        refuse("at", f"{value[:40]!r} is not an ISO-8601 time (2026-11-17T17:15:00Z)")
        return None
    if moment.tzinfo is None:
        refuse("at", "must carry its offset from UTC (a Z, or +01:00)")
        return None
    if moment > now + FUTURE_TOLERANCE:
        refuse("at", "is in the future")
        return None
    return moment


def _amount(value: Any, refuse: Refuse) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        refuse("amount", "must be a number (12000.50) or a decimal in a string")
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        refuse("amount", f"{str(value)[:40]!r} is not a number")
        return None
    if not amount.is_finite() or amount < 0 or amount >= MAX_AMOUNT:
        refuse("amount", "must be 0 or more, and less than 10^16")
        return None
    if amount != amount.quantize(Decimal("0.01")):
        refuse("amount", "has more than 2 decimal places")
        return None
    return amount


def _currency(value: Any, refuse: Refuse) -> str | None:
    if value is None:
        return None
    code = currency_code(value) if isinstance(value, str) else None
    if code is None:
        refuse("currency", "must be an ISO 4217 currency code, such as USD or EUR")
    return code


def _date(value: Any, refuse: Refuse) -> date | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    refuse("close_date", "must be a date, YYYY-MM-DD")
    return None


def _text(value: Any, name: str, longest: int, refuse: Refuse) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > longest:
        refuse(name, f"must be text of 1 to {longest} characters")
        return None
    return value
