"""`POST /webhooks/hubspot`: contacts HubSpot announces, queued to be fetched and routed, and
changes of a contact's lifecycle stage or lead status, recorded as what became of its lead."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from bot.crm.base import is_hubspot_id
from bot.crm.hubspot_outcomes import outcomes_of_property_changes
from bot.http.common import APP_KEY, BadBody, decode_json, error, read_body, too_large
from bot.service.crm import queue_crm_contacts
from bot.service.outcomes import Reported, record_crm_events

HUBSPOT_SKEW_MS = 5 * 60 * 1000
HUBSPOT_SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
HUBSPOT_TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_WEBHOOK_EVENTS = 1000


async def hubspot_webhook(request: web.Request) -> web.Response:
    """HubSpot's webhook: contact.creation events queue each contact to be fetched and routed;
    contact.propertyChange events of `lifecyclestage` and `hs_lead_status` are recorded as the
    outcome events they say (`bot.crm.hubspot_outcomes`), once each however often HubSpot sends
    them. Answers at once (HubSpot waits 5 seconds at most); other events are ignored. The
    answer counts contacts queued and repeated, events ignored, and, where the batch had any,
    the outcome events it told (`events`)."""
    app = request.app[APP_KEY]
    secret = app.settings.hubspot_client_secret
    if secret is None or "hubspot" not in app.crm:
        return error(
            503,
            "HubSpot webhooks need HUBSPOT_CLIENT_SECRET (to check them) and "
            "HUBSPOT_ACCESS_TOKEN (to fetch the contacts); set both and restart",
        )
    body = await read_body(request)
    if body is None:
        return too_large()
    problem = hubspot_signature_problem(
        secret.get_secret_value(),
        signature=request.headers.get(HUBSPOT_SIGNATURE_HEADER),
        timestamp=request.headers.get(HUBSPOT_TIMESTAMP_HEADER),
        body=body,
        uri=app.settings.hubspot_webhook_url or str(request.url),
    )
    if problem is not None:
        return error(401, problem)
    try:
        events = decode_json(body)
    except BadBody as exc:
        return error(400, str(exc))
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return error(400, "a HubSpot webhook body is a JSON array of event objects")
    if len(events) > MAX_WEBHOOK_EVENTS:
        return error(413, f"at most {MAX_WEBHOOK_EVENTS} events per request")
    contacts = [
        str(event["objectId"])
        for event in events
        if event.get("subscriptionType") == "contact.creation"
        and is_hubspot_id(str(event.get("objectId", "")))
    ]
    outcomes = outcomes_of_property_changes(events)
    queued = await queue_crm_contacts(app.uow, contacts) if contacts else 0
    if outcomes:
        reports = [Reported(o.record_id, o.event, "hubspot", o.key, o.via) for o in outcomes]
        await record_crm_events(app.uow, "hubspot", reports)
    ignored = len(events) - len(contacts) - len(outcomes)
    answer = {"queued": queued, "repeated": len(contacts) - queued, "ignored": ignored}
    return web.json_response({**answer, "events": len(outcomes)} if outcomes else answer)


def hubspot_signature_problem(
    secret: str, *, signature: str | None, timestamp: str | None, body: bytes, uri: str
) -> str | None:
    """Why HubSpot's v3 signature does not hold (None when it does), by HubSpot's own helper:
    base64 HMAC-SHA256 of method, URI, body and timestamp, the timestamp within 5 minutes."""
    if not signature or not timestamp:
        return f"missing {HUBSPOT_SIGNATURE_HEADER} or {HUBSPOT_TIMESTAMP_HEADER}"
    # HubSpot's helper refuses only old timestamps; one from the future is refused here too.
    # isascii(): str.isdigit() also accepts digits int() cannot read ("²"); and int() refuses
    # over 4,300 digits: either would be a 500. Milliseconds have 13 digits until the year 2286.
    if (
        not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15)
        or abs(int(timestamp) - time.time() * 1000) > HUBSPOT_SKEW_MS
    ):
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
    if valid:
        return None
    # The address is in what HubSpot signs: behind a proxy it differs from the one seen here.
    # Named without its query, which an unsigned caller should not be shown.
    parts = urlsplit(uri)
    address = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))[:300]
    return (
        f"the signature does not match: check HUBSPOT_CLIENT_SECRET, and that {address} is "
        "the address HubSpot posts to (behind a proxy, set HUBSPOT_WEBHOOK_URL to the public one)"
    )
