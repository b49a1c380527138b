"""What HubSpot tells of leads (contacts) after the hand-over: which objects and properties, and
what each says (`CrmOutcome`). `HubSpotCrm.outcomes_since` polls, `POST /webhooks/hubspot` hears
the rest; neither imports more than this module to read them.

By webhook, where HubSpot announces a change (`contact.propertyChange`, dated `occurredAt`):

    lifecyclestage  "opportunity": converted; "customer": won (HubSpot moves a contact there
                    when one of its deals is won; the deal itself, polled, brings the amount)
    hs_lead_status  "ATTEMPTED_TO_CONTACT", "CONNECTED", "IN_PROGRESS" or "OPEN_DEAL": touched
                    ("NEW", "OPEN", "UNQUALIFIED", "BAD_TIMING" can be set without reaching
                    anyone, so they are not a touch)

By polling, where no webhook tells of it: engagements and deals are not contact properties,
and a legacy app's webhooks cover contacts, companies and deals' properties, not the calls
logged against a contact. Each stream is searched (`POST /crm/v3/objects/{type}/search`) for
objects whose `hs_lastmodifieddate` is at or after its cursor, oldest first, and each page's
contacts are read in one call (`POST /crm/v4/associations/{type}/contacts/batch/read`):

    calls     `hs_timestamp` (when the call was made), unless `hs_call_status` says it never
              happened (CANCELED, FAILED, QUEUED): a touch, by `hubspot_owner_id`
    emails    outgoing ones only (`hs_email_direction` EMAIL: a reply or a forward is the lead
              writing), sent (`hs_email_status` not SCHEDULED or FAILED), at `hs_timestamp`
    meetings  when it was booked (the object's creation: booking took reaching the lead; the
              meeting's own `hs_timestamp` may be weeks ahead)
    deals     converted when the deal was created; won or lost once `hs_is_closed` is true
              (`hs_is_closed_won` says which), at `closedate`, with `amount` and the close date;
              the amount in `deal_currency_code` (an account with several currencies sets it;
              where it is empty, the amount is in the account's one currency)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.crm.base import CrmOutcome, is_hubspot_id
from routing.report import EventKind, OutcomeEvent

CALLS, EMAILS, MEETINGS, DEALS = "calls", "emails", "meetings", "deals"
STREAMS: tuple[str, ...] = (CALLS, EMAILS, MEETINGS, DEALS)
PROPERTIES = {
    CALLS: ["hs_timestamp", "hs_call_status", "hubspot_owner_id", "hs_lastmodifieddate"],
    EMAILS: [
        "hs_timestamp",
        "hs_email_direction",
        "hs_email_status",
        "hubspot_owner_id",
        "hs_lastmodifieddate",
    ],
    MEETINGS: ["hs_timestamp", "hubspot_owner_id", "hs_lastmodifieddate"],
    DEALS: [
        "dealstage",
        "amount",
        "deal_currency_code",
        "closedate",
        "hs_is_closed",
        "hs_is_closed_won",
        "hs_lastmodifieddate",
    ],
}
_VIA = {CALLS: "call", EMAILS: "email", MEETINGS: "meeting"}
_NOT_A_CALL = frozenset({"CANCELED", "FAILED", "QUEUED"})
_NOT_SENT = frozenset({"SCHEDULED", "FAILED"})
TOUCH_STATUSES = frozenset({"ATTEMPTED_TO_CONTACT", "CONNECTED", "IN_PROGRESS", "OPEN_DEAL"})
LIFECYCLE = {"opportunity": EventKind.CONVERTED, "customer": EventKind.WON}
WATCHED_PROPERTIES = ("lifecyclestage", "hs_lead_status")


@dataclass(frozen=True, slots=True)
class Found:
    """One object a search found: its id, properties (text, as HubSpot keeps them), times."""

    id: str
    properties: Mapping[str, str | None]
    created_at: datetime
    updated_at: datetime


def outcomes_of(
    stream: str, found: Sequence[Found], contacts_of: Mapping[str, Sequence[str]]
) -> list[CrmOutcome]:
    """What a page of `stream`'s objects tells of the contacts each is associated with."""
    outcomes: list[CrmOutcome] = []
    for item in found:
        contacts = contacts_of.get(item.id, ())
        for event, via, by in _events(stream, item):
            key = f"{stream}/{item.id}"
            outcomes.extend(CrmOutcome(contact, event, key, via, by) for contact in contacts)
    return outcomes


def _events(stream: str, item: Found) -> list[tuple[OutcomeEvent, str, str | None]]:
    properties = item.properties
    owner = properties.get("hubspot_owner_id") or None
    if stream == DEALS:
        return _deal_events(item)
    if stream == CALLS and properties.get("hs_call_status") in _NOT_A_CALL:
        return []
    if stream == EMAILS and (
        properties.get("hs_email_direction") != "EMAIL"
        or properties.get("hs_email_status") in _NOT_SENT
    ):
        return []
    at = item.created_at if stream == MEETINGS else parse_time(properties.get("hs_timestamp"))
    if at is None:
        return []
    return [(OutcomeEvent(EventKind.FIRST_TOUCH, at), _VIA[stream], owner)]


def _deal_events(deal: Found) -> list[tuple[OutcomeEvent, str, str | None]]:
    properties = deal.properties
    events: list[tuple[OutcomeEvent, str, str | None]] = [
        (OutcomeEvent(EventKind.CONVERTED, deal.created_at), "deal", None)
    ]
    if properties.get("hs_is_closed") != "true":
        return events
    closed_at = parse_time(properties.get("closedate"))
    kind = EventKind.WON if properties.get("hs_is_closed_won") == "true" else EventKind.LOST
    event = OutcomeEvent(
        kind,
        closed_at or deal.updated_at,
        _amount(properties.get("amount")),
        closed_at.date() if closed_at is not None else None,
        properties.get("deal_currency_code") or None,
    )
    return [*events, (event, "deal", None)]


def outcomes_of_property_changes(events: Sequence[Mapping[str, Any]]) -> list[CrmOutcome]:
    """What HubSpot's `contact.propertyChange` webhook events tell (others are not read here)."""
    outcomes = []
    for event in events:
        contact = str(event.get("objectId", ""))
        name, value = event.get("propertyName"), event.get("propertyValue")
        occurred = event.get("occurredAt")
        if (
            event.get("subscriptionType") != "contact.propertyChange"
            or not is_hubspot_id(contact)
            or not isinstance(occurred, int)
            or isinstance(occurred, bool)
        ):
            continue
        at = datetime.fromtimestamp(occurred / 1000, UTC)
        if name == "lifecyclestage" and value in LIFECYCLE:
            kind, via = LIFECYCLE[value], "lifecycle stage"
        elif name == "hs_lead_status" and value in TOUCH_STATUSES:
            kind, via = EventKind.FIRST_TOUCH, "lead status"
        else:
            continue
        # Keyed by the value reached: the first time a contact became an opportunity is its
        # conversion, and HubSpot's retries, or a later return to the same value, change nothing.
        key = f"contact/{contact}/{name}/{value}"
        outcomes.append(CrmOutcome(contact, OutcomeEvent(kind, at), key, via))
    return outcomes


def parse_time(value: str | None) -> datetime | None:
    """A HubSpot date-time property (ISO-8601, or milliseconds since the epoch)."""
    if not value:
        return None
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _amount(value: str | None) -> Decimal | None:
    try:
        amount = Decimal(value) if value else None
    except InvalidOperation:
        return None
    if amount is None or not amount.is_finite() or amount < 0:
        return None
    return amount.quantize(Decimal("0.01"))
