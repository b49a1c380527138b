"""What Salesforce records tell of leads after the hand-over: the SOQL that finds them and what
each record found says (`CrmOutcome`). `SalesforceCrm.outcomes_since` runs them.

Four reads, each polled from a cursor of its own on `SystemModstamp` (the one time Salesforce
moves for every change, the system's own included), oldest change first:

    Task         closed Tasks on leads (a call logged, an e-mail sent): a touch
    Event        Events on leads (a meeting booked with the lead): a touch
    Lead         leads converted with an opportunity; and, where the policy names
                 `contacted_statuses`, leads whose Status is one of them: a touch
    Opportunity  closed opportunities, each found back to the lead converted into it: won or lost

A touch's time is when it happened, to the second: a Task's `CompletedDateTime` (the call or
e-mail saved as done), else its `CreatedDate`; an Event's `CreatedDate` (when the meeting was
booked, which took reaching the lead; its `StartDateTime` may be weeks ahead). `ActivityDate`
is no use here: a date without a time, for a Task its due date.

An opportunity's amount is in its `CurrencyIsoCode`, a field only a multi-currency org has (in a
one-currency org every amount is in the org's currency, and naming the field fails the query
with INVALID_FIELD): `soql(..., currency=True)` asks for it, and `SalesforceCrm` learns which
kind of org it reads from the first answer.

A Lead or Opportunity carries no time of its conversion or close beyond a date (`ConvertedDate`,
`CloseDate`), so they are dated by `LastModifiedDate` as the poll first finds them converted or
closed: a converted lead is locked, so for it that is the conversion itself; an opportunity is
dated no earlier than it closed, and within a poll of it while polling keeps up. A report is
stored once, by the record that tells it, so a later edit of either changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from simple_salesforce.format import format_soql

from bot.crm.base import CrmOutcome
from routing.report import EventKind, OutcomeEvent

TASKS, EVENTS, LEADS, OPPORTUNITIES = "Task", "Event", "Lead", "Opportunity"
STREAMS: tuple[str, ...] = (TASKS, EVENTS, LEADS, OPPORTUNITIES)
CURRENCY_FIELD = "CurrencyIsoCode"  # a multi-currency org's records only
IDS_PER_QUERY = 200  # an IN list this long keeps the query's URL well within Salesforce's limit
_VIA = {"Call": "call", "Email": "email", "ListEmail": "email"}


def soql(
    stream: str,
    since: datetime,
    *,
    contacted_statuses: Sequence[str] = (),
    currency: bool = False,
) -> str:
    """The query of `stream` for records changed at or after `since`, oldest change first;
    `currency`: an opportunity's `CurrencyIsoCode` too (a multi-currency org's)."""
    changed = f"SystemModstamp >= {soql_time(since)}"
    order = "ORDER BY SystemModstamp, Id"
    if stream == TASKS:
        columns = "Id, WhoId, OwnerId, TaskSubtype, CreatedDate, CompletedDateTime, SystemModstamp"
        where = f"IsClosed = true AND Who.Type = 'Lead' AND {changed}"
    elif stream == EVENTS:
        columns = "Id, WhoId, OwnerId, CreatedDate, SystemModstamp"
        where = f"Who.Type = 'Lead' AND {changed}"
    elif stream == LEADS:
        columns = (
            "Id, Status, IsConverted, ConvertedDate, ConvertedOpportunityId, LastModifiedDate, "
            "SystemModstamp"
        )
        converted = "IsConverted = true AND ConvertedOpportunityId != null"
        if contacted_statuses:
            statuses = format_soql("Status IN {statuses}", statuses=list(contacted_statuses))
            converted = f"(({converted}) OR {statuses})"
        where = f"{converted} AND {changed}"
    elif stream == OPPORTUNITIES:
        columns = (
            "Id, StageName, IsClosed, IsWon, Amount, CloseDate, LastModifiedDate, SystemModstamp"
        )
        if currency:
            columns = f"{columns}, {CURRENCY_FIELD}"
        where = f"IsClosed = true AND {changed}"
    else:
        raise ValueError(f"no Salesforce outcome stream {stream!r}")
    return f"SELECT {columns} FROM {stream} WHERE {where} {order}"


def converted_into(opportunity_ids: Sequence[str]) -> str:
    """The leads converted into these opportunities (at most IDS_PER_QUERY of them)."""
    return format_soql(
        "SELECT Id, ConvertedOpportunityId FROM Lead WHERE ConvertedOpportunityId IN {ids}",
        ids=list(opportunity_ids),
    )


def outcomes_of(
    stream: str,
    records: Sequence[dict[str, Any]],
    *,
    contacted_statuses: Sequence[str] = (),
    leads_of_opportunity: dict[str, list[str]] | None = None,
) -> list[CrmOutcome]:
    """What a page of `stream`'s records tells; for opportunities, of the leads in
    `leads_of_opportunity` (those converted into each; several leads may be converted into one)."""
    found: list[CrmOutcome] = []
    for record in records:
        record_id = str(record["Id"])
        if stream in (TASKS, EVENTS):
            when = record.get("CompletedDateTime") or record["CreatedDate"]
            via = (
                _VIA.get(record.get("TaskSubtype") or "", "task") if stream == TASKS else "meeting"
            )
            found.append(
                CrmOutcome(
                    str(record["WhoId"]),
                    OutcomeEvent(EventKind.FIRST_TOUCH, parse_time(when)),
                    f"{stream}/{record_id}",
                    via,
                    by=record.get("OwnerId") or None,
                )
            )
        elif stream == LEADS:
            found.extend(_lead_outcomes(record, contacted_statuses))
        elif stream == OPPORTUNITIES:
            leads = (leads_of_opportunity or {}).get(record_id, [])
            found.extend(_closed(lead, record) for lead in leads)
    return found


def _lead_outcomes(record: dict[str, Any], contacted_statuses: Sequence[str]) -> list[CrmOutcome]:
    lead_id, modified = str(record["Id"]), parse_time(record["LastModifiedDate"])
    found = []
    opportunity = record.get("ConvertedOpportunityId")
    if record.get("IsConverted") and opportunity:
        event = OutcomeEvent(EventKind.CONVERTED, modified)
        found.append(CrmOutcome(lead_id, event, f"Opportunity/{opportunity}", "opportunity"))
    if record.get("Status") in contacted_statuses:
        event = OutcomeEvent(EventKind.FIRST_TOUCH, modified)
        found.append(CrmOutcome(lead_id, event, f"Lead/{lead_id}/Status", "lead status"))
    return found


def _closed(lead_id: str, record: dict[str, Any]) -> CrmOutcome:
    kind = EventKind.WON if record.get("IsWon") else EventKind.LOST
    amount = record.get("Amount")
    close_date = record.get("CloseDate")
    event = OutcomeEvent(
        kind,
        parse_time(record["LastModifiedDate"]),
        Decimal(str(amount)).quantize(Decimal("0.01")) if amount is not None else None,
        date.fromisoformat(close_date) if close_date else None,
        record.get(CURRENCY_FIELD) or None,
    )
    return CrmOutcome(lead_id, event, f"Opportunity/{record['Id']}", "opportunity")


def soql_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: str) -> datetime:
    # Salesforce writes 2026-11-20T09:15:00.000+0000
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)
