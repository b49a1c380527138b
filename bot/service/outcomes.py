"""What became of a lead after its hand-over: a first touch, an opportunity, won or lost, as a CRM
or `POST /events` reports it (`routing.report.EventKind`).

Reports come late, twice and out of order, and each is recorded as it comes: the story's
reading (`routing.report.outcomes_of`) settles what they add up to, whatever their order. A
report is stored once (`storage.repository.outcomes`): the same lead, kind, source and source
key again changes nothing. A touch later than the lead's first known touch is not stored
either: the first touch is the earliest, so it could change nothing. A report about a lead not
routed here is counted and dropped.

Each call records its reports in one transaction, with a CRM page's cursor where there is one,
so a poll or a request stopped half way leaves nothing half stored: sent again, each report is
stored once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from bot.service.unit_of_work import Transaction, UnitOfWork
from routing.report import EventKind, OutcomeEvent
from storage import repository as repo

# The amounts a lead's events can hold: 16 digits before the point, 2 after. A CRM's larger one
# (a typo in a deal) is left out rather than stop its page from ever being stored.
MAX_AMOUNT = Decimal(10) ** 16


@dataclass(frozen=True, slots=True)
class Reported:
    """One outcome event as its source reported it.

    `lead` is the lead's external id (`POST /events`) or, from a CRM, the id of its record
    there (Salesforce Lead, HubSpot contact). `source_key` names what the source reported it
    from ("Task/00T...", "calls/4821", the caller's own event id): a repeat has the same one.
    `via` says how, in a word for the lead's story ("call", "email", "meeting", "deal")."""

    lead: str
    event: OutcomeEvent
    source: str
    source_key: str
    via: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    stored: int = 0  # new events
    repeated: int = 0  # stored before, or a touch later than the lead's first
    unknown: int = 0  # about no lead routed here

    def __add__(self, other: Recorded) -> Recorded:
        return Recorded(
            self.stored + other.stored,
            self.repeated + other.repeated,
            self.unknown + other.unknown,
        )


async def record_posted_events(uow: UnitOfWork, reports: Sequence[Reported]) -> Recorded:
    """Events posted to `/events`, their leads named by external id: all in one transaction."""
    now = uow.clock()

    def work(tx: Transaction) -> Recorded:
        ids = repo.lead_ids(session=tx.session, external_ids={r.lead for r in reports})
        matched = [(ids[r.lead], r) for r in reports if r.lead in ids]
        return record(tx, matched, now=now, unknown=len(reports) - len(matched))

    return await uow.write(work, quick=len(reports) <= 10)


async def record_crm_events(uow: UnitOfWork, system: str, reports: Sequence[Reported]) -> Recorded:
    """Events a CRM announced (HubSpot's webhook), their leads named by CRM record id."""
    now = uow.clock()
    return await uow.write(lambda tx: _from_crm(tx, system, reports, now=now))


async def take_crm_events_page(
    uow: UnitOfWork,
    system: str,
    reports: Sequence[Reported],
    *,
    cursor: str,
    read_up_to: datetime | None,
) -> Recorded:
    """A page of a CRM's outcome events, polled: recorded, and the poll's cursor moved to
    `read_up_to` in the same transaction, so a page is either wholly taken or read again."""
    now = uow.clock()

    def work(tx: Transaction) -> Recorded:
        recorded = _from_crm(tx, system, reports, now=now)
        if read_up_to is not None:
            repo.move_crm_cursor(session=tx.session, name=cursor, watermark=read_up_to, now=now)
        return recorded

    return await uow.write(work)


def record(
    tx: Transaction, matched: Sequence[tuple[int, Reported]], *, now: datetime, unknown: int = 0
) -> Recorded:
    """In `tx`, store each report about a lead (its database id first) that says something new."""
    touches = _first_touches(tx.session, (lead for lead, r in matched if _is_touch(r)))
    rows = []
    seen: set[tuple[int, str, str, str]] = set()
    for lead_id, report in matched:
        event = report.event
        natural_key = (lead_id, event.kind.value, report.source, report.source_key)
        if natural_key in seen:
            continue
        if _is_touch(report):
            first = touches.get(lead_id)
            if first is not None and first <= event.at:
                continue
            touches[lead_id] = event.at
        seen.add(natural_key)
        if event.amount is not None and not Decimal(0) <= event.amount < MAX_AMOUNT:
            event = event._replace(amount=None)
        rows.append(
            repo.lead_event_values(
                lead_id=lead_id,
                event=event,
                source=report.source,
                source_key=report.source_key,
                via=report.via,
                now=now,
            )
        )
    stored = repo.insert_lead_events(session=tx.session, rows=rows)
    return Recorded(stored=stored, repeated=len(matched) - stored, unknown=unknown)


def _from_crm(
    tx: Transaction, system: str, reports: Sequence[Reported], *, now: datetime
) -> Recorded:
    leads = repo.lead_ids_of_crm_records(
        session=tx.session, crm_system=system, crm_ids={r.lead for r in reports}
    )
    matched = [(lead_id, r) for r in reports for lead_id in leads.get(r.lead, ())]
    unknown = sum(1 for r in reports if r.lead not in leads)
    return record(tx, matched, now=now, unknown=unknown)


def _is_touch(report: Reported) -> bool:
    return report.event.kind is EventKind.FIRST_TOUCH


def _first_touches(session: Session, lead_ids: Iterable[int]) -> dict[int, datetime]:
    wanted = set(lead_ids)
    return repo.first_touches(session=session, lead_ids=wanted) if wanted else {}
