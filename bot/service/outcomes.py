"""What became of a lead after its hand-over: a first touch, an opportunity, won or lost, as a CRM
or `POST /events` reports it (`routing.report.EventKind`).

Reports come late, twice and out of order, and each is recorded as it comes: the story's
reading (`routing.report.outcomes_of`) settles what they add up to, whatever their order. A
report is stored once (`storage.repository.outcomes`): the same lead, kind, source and source
key again changes nothing. A touch later than the lead's first known touch is not stored
either: the first touch is the earliest, so it could change nothing.

A report about a lead not here (yet) waits for it: a sequencer's first e-mail can beat the
lead's own `POST /leads` (or its retry), a CRM's activity poll can read a call on a record its
lead poll has not brought in. Dropped, that touch would be lost for good and its rep found to
have missed the contact SLA. So it is kept (`repo.hold_events`), and `apply_waiting_events` (the
`waiting-events` job, every minute) records it as soon as its lead has arrived; one whose lead
has not arrived within `WAITING_HOLD` is dropped then, counted in the log. Most of what waits
will never have a lead here (a CRM's activity on records not routed here): the hold bounds it.

An amount its source says is in another currency than `LEADROUTER_CURRENCY` (`uow.currency`) is
left out: the event is stored without it (a deal won in pounds is still won), and an audit row
(`repo.AMOUNT_LEFT_OUT`) names both currencies, once per report, for the lead's story to count
and `why` to tell. Nothing is converted, and so nothing in two currencies is ever summed. An
amount whose currency is not named (a one-currency CRM) is taken to be in ours.

Each call records its reports in one transaction, with a CRM page's cursor where there is one,
so a poll or a request stopped half way leaves nothing half stored: sent again, each report is
stored once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from bot.logs import about
from bot.service.unit_of_work import Transaction, UnitOfWork
from routing.durations import format_duration
from routing.money import same_currency
from routing.report import EventKind, OutcomeEvent
from storage import repository as repo

log = logging.getLogger("bot.service")

# How long a report about a lead not here waits for it: a sender retrying `POST /leads`, or a CRM
# poll of leads behind its poll of activities, is much quicker than that.
WAITING_HOLD = timedelta(days=1)
WAITING_BATCH = 1000

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
    waiting: int = 0  # about no lead here yet: kept until it arrives (`WAITING_HOLD`)

    def __add__(self, other: Recorded) -> Recorded:
        return Recorded(
            self.stored + other.stored,
            self.repeated + other.repeated,
            self.waiting + other.waiting,
        )


@dataclass(frozen=True, slots=True)
class Applied:
    """What became of the waiting events: recorded now their lead is here, or given up."""

    recorded: Recorded = Recorded()
    dropped: int = 0  # their lead did not arrive within WAITING_HOLD


async def record_posted_events(uow: UnitOfWork, reports: Sequence[Reported]) -> Recorded:
    """Events posted to `/events`, their leads named by external id: all in one transaction."""
    now = uow.clock()

    def work(tx: Transaction) -> Recorded:
        ids = repo.lead_ids(session=tx.session, external_ids={r.lead for r in reports})
        matched = [(ids[r.lead], r) for r in reports if r.lead in ids]
        early = [r for r in reports if r.lead not in ids]
        repo.hold_events(
            session=tx.session, held=[_waiting({"lead": r.lead}, r) for r in early], now=now
        )
        return record(tx, matched, now=now, currency=uow.currency) + Recorded(waiting=len(early))

    return await uow.write(work, quick=len(reports) <= 10)


async def record_crm_events(uow: UnitOfWork, system: str, reports: Sequence[Reported]) -> Recorded:
    """Events a CRM announced (HubSpot's webhook), their leads named by CRM record id."""
    now = uow.clock()
    return await uow.write(
        lambda tx: _from_crm(tx, system, reports, now=now, currency=uow.currency)
    )


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
        recorded = _from_crm(tx, system, reports, now=now, currency=uow.currency)
        if read_up_to is not None:
            repo.move_crm_cursor(session=tx.session, name=cursor, watermark=read_up_to, now=now)
        return recorded

    return await uow.write(work)


async def apply_waiting_events(uow: UnitOfWork, *, batch: int = WAITING_BATCH) -> Applied:
    """Record the waiting events whose lead has arrived, batch by batch, each in one
    transaction with their waiting rows' deletion; then drop those that waited too long."""
    total = Recorded()
    while True:
        now = uow.clock()

        def work(tx: Transaction, now: datetime = now) -> tuple[Recorded, int]:
            found = repo.waiting_events_of_arrived_leads(session=tx.session, limit=batch)
            matched = [(lead_id, _reported(data)) for _, lead_id, data in found]
            taken = {waiting_id for waiting_id, _, _ in found}
            repo.drop_waiting_events(session=tx.session, ids=taken)
            return record(tx, matched, now=now, currency=uow.currency), len(taken)

        recorded, taken = await uow.write(work)
        total += recorded
        if taken < batch:  # neither kind of name filled its batch: none is left
            break
    since = uow.clock() - WAITING_HOLD
    dropped = await uow.write(
        lambda tx: repo.drop_waiting_events(session=tx.session, arrived_before=since)
    )
    if total.stored or total.repeated:
        log.info("recorded %d outcome event(s) that had arrived before their lead", total.stored)
    if dropped:
        log.info(
            "dropped %d events about leads that did not arrive within %s",
            dropped,
            format_duration(WAITING_HOLD.total_seconds()),
        )
    return Applied(total, dropped)


def record(
    tx: Transaction,
    matched: Sequence[tuple[int, Reported]],
    *,
    now: datetime,
    currency: str | None,
) -> Recorded:
    """In `tx`, store each report about a lead (its database id first) that says something new;
    an amount in another currency than `currency` is left out, and noted."""
    touches = _first_touches(tx.session, (lead for lead, r in matched if _is_touch(r)))
    rows = []
    left_out: list[tuple[tuple[int, str, str, str], dict[str, Any]]] = []
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
        if event.amount is not None and not same_currency(event.currency, currency):
            left_out.append((natural_key, _left_out(report, ours=currency)))
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
    # Only of an event stored now: a repeat stores nothing, and what its first report stored
    # stays (an amount kept before LEADROUTER_CURRENCY was set, or before the deal's changed).
    notes = [(key[0], data) for key, data in left_out if key in stored]
    if notes:
        for external_id, data in repo.note_amounts_left_out(
            session=tx.session, notes=notes, now=now
        ):
            # The lead's id and the report's name in its source, never what the lead is.
            log.info(
                "lead %s: the %s amount %s reported (%s) is in %s, not in %s "
                "(LEADROUTER_CURRENCY): its outcome is kept, its amount left out",
                external_id,
                data["event"],
                data["source"],
                data["source_key"],
                data["currency"],
                data["ours"],
                extra=about(external_id),
            )
    return Recorded(stored=len(stored), repeated=len(matched) - len(stored))


def _left_out(report: Reported, *, ours: str | None) -> dict[str, Any]:
    """What an audit row notes of an amount left out for its currency (`repo.AMOUNT_LEFT_OUT`)."""
    return {
        "event": report.event.kind.value,
        "currency": (report.event.currency or "").strip().upper(),
        "ours": ours,
        "source": report.source,
        "source_key": report.source_key,
    }


def _from_crm(
    tx: Transaction,
    system: str,
    reports: Sequence[Reported],
    *,
    now: datetime,
    currency: str | None,
) -> Recorded:
    leads = repo.lead_ids_of_crm_records(
        session=tx.session, crm_system=system, crm_ids={r.lead for r in reports}
    )
    matched = [(lead_id, r) for r in reports for lead_id in leads.get(r.lead, ())]
    early = [r for r in reports if r.lead not in leads]
    repo.hold_events(
        session=tx.session,
        held=[_waiting({"crm": system, "record": r.lead}, r) for r in early],
        now=now,
    )
    return record(tx, matched, now=now, currency=currency) + Recorded(waiting=len(early))


def _waiting(lead: Mapping[str, str], report: Reported) -> dict[str, Any]:
    """A report waiting for its lead, as JSON (`repo.WAITING_EVENT`)."""
    event = report.event
    return {
        **lead,
        "kind": event.kind.value,
        "at": event.at.isoformat(),
        "amount": str(event.amount) if event.amount is not None else None,
        "currency": event.currency,
        "close_date": event.close_date.isoformat() if event.close_date else None,
        "source": report.source,
        "source_key": report.source_key,
        "via": report.via,
    }


def _reported(data: Mapping[str, Any]) -> Reported:
    """A waiting report read back (`_waiting`'s inverse)."""
    amount, close_date = data.get("amount"), data.get("close_date")
    event = OutcomeEvent(
        EventKind(data["kind"]),
        datetime.fromisoformat(data["at"]),
        Decimal(amount) if amount is not None else None,
        date.fromisoformat(close_date) if close_date else None,
        data.get("currency"),
    )
    lead = data.get("lead") or data.get("record") or ""
    return Reported(lead, event, data["source"], data["source_key"], data.get("via"))


def _is_touch(report: Reported) -> bool:
    return report.event.kind is EventKind.FIRST_TOUCH


def _first_touches(session: Session, lead_ids: Iterable[int]) -> dict[int, datetime]:
    wanted = set(lead_ids)
    return repo.first_touches(session=session, lead_ids=wanted) if wanted else {}
