"""Outcome events recorded once each, on SQLite and PostgreSQL: repeated, late and out-of-order
reports give the same rows and the same story; a later touch changes nothing; reports about
leads not here yet wait for them, a day at most; a polled page and its cursor commit together."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.policy_file import load_policy
from bot.reading import Reader, Viewer
from bot.service.crm import crm_cursor
from bot.service.intake import intake, intake_from_crm
from bot.service.outcomes import (
    Applied,
    Recorded,
    Reported,
    apply_waiting_events,
    record_crm_events,
    record_posted_events,
    take_crm_events_page,
)
from bot.service.unit_of_work import UnitOfWork
from routing.report import EventKind, OutcomeEvent, outcomes_of
from storage import repository as repo
from storage.db import Database
from storage.models import AuditEventRow, LeadEventRow, LeadRow
from tests.service.conftest import TUESDAY, Clock
from tests.service.support import TRIO_POLICY, new_lead, write_policy

FIRST_TOUCH, CONVERTED, WON, LOST = (
    EventKind.FIRST_TOUCH,
    EventKind.CONVERTED,
    EventKind.WON,
    EventKind.LOST,
)


@pytest.fixture
def uow(db: Database, tmp_path: Path, clock: Clock) -> UnitOfWork:
    policy = load_policy(write_policy(tmp_path, TRIO_POLICY))
    return UnitOfWork(db=db, policy=lambda: policy, clock=clock)


def at(minutes: float) -> datetime:
    return TUESDAY + timedelta(minutes=minutes)


def posted(
    lead: str,
    kind: EventKind,
    minutes: float,
    *,
    key: str | None = None,
    amount: str | None = None,
    close_date: date | None = None,
    source: str = "api",
) -> Reported:
    event = OutcomeEvent(kind, at(minutes), Decimal(amount) if amount else None, close_date)
    return Reported(lead, event, source, key or f"{kind.value}@{minutes}")


async def rows_of(db: Database, external_id: str) -> list[LeadEventRow]:
    async with db.reading() as session:
        found = await session.execute(
            select(LeadEventRow)
            .join(LeadRow, col(LeadRow.id) == col(LeadEventRow.lead_id))
            .where(col(LeadRow.external_id) == external_id)
            .order_by(col(LeadEventRow.id))
        )
        return list(found.scalars().all())


async def waiting_rows(db: Database) -> int:
    """How many reports wait for their lead."""
    async with db.reading() as session:
        found = await session.execute(
            select(AuditEventRow).where(col(AuditEventRow.kind) == repo.WAITING_EVENT)
        )
        return len(found.all())


async def settled(db: Database, external_id: str) -> object:
    return outcomes_of(repo.outcome_event(row) for row in await rows_of(db, external_id))


def what_rows_say(rows: list[LeadEventRow]) -> set[tuple[object, ...]]:
    return {(r.kind, r.at, r.amount, r.close_date, r.source, r.source_key) for r in rows}


async def test_an_event_is_stored_once_however_often_it_is_posted(
    uow: UnitOfWork, db: Database
) -> None:
    await intake(uow, new_lead("L-1"))
    won = posted("L-1", WON, 90, key="opp-7", amount="12000.50", close_date=date(2026, 12, 1))

    first = await record_posted_events(uow, [won])
    again = await record_posted_events(uow, [won, won])

    assert first == Recorded(stored=1)
    assert again == Recorded(repeated=2)
    (row,) = await rows_of(db, "L-1")
    assert (row.kind, row.at, row.amount, row.close_date) == (
        "won",
        at(90),
        Decimal("12000.50"),
        date(2026, 12, 1),
    )
    assert (row.source, row.source_key, row.recorded_at) == ("api", "opp-7", TUESDAY)


async def test_events_in_any_order_and_repeated_leave_the_same_rows_and_the_same_outcome(
    uow: UnitOfWork, db: Database
) -> None:
    reports = [
        posted("{lead}", FIRST_TOUCH, 12, key="call-1"),
        posted("{lead}", CONVERTED, 60, key="opp-7"),
        posted("{lead}", LOST, 200, key="opp-7", amount="900"),
        posted("{lead}", WON, 300, key="opp-7", amount="1500", close_date=date(2026, 12, 1)),
    ]
    orders = [reports, list(reversed(reports)), [reports[2], reports[0], reports[3], reports[1]]]
    seen = []
    for number, order in enumerate(orders):
        lead = f"L-{number}"
        await intake(uow, new_lead(lead))
        mine = [Reported(lead, r.event, r.source, r.source_key) for r in order]
        for report in [*mine, *mine[:2]]:  # one at a time, then some again
            await record_posted_events(uow, [report])
        rows = await rows_of(db, lead)
        seen.append((what_rows_say(rows), await settled(db, lead)))
    assert seen[0] == seen[1] == seen[2]
    outcome = seen[0][1]
    assert outcome == outcomes_of(r.event for r in reports)
    assert (outcome.won_at, outcome.lost_at, outcome.amount) == (at(300), None, Decimal(1500))


async def test_a_touch_after_the_first_is_not_stored_and_an_earlier_one_arriving_late_is(
    uow: UnitOfWork, db: Database
) -> None:
    await intake(uow, new_lead("L-1"))
    assert await record_posted_events(uow, [posted("L-1", FIRST_TOUCH, 30)]) == Recorded(1)
    later = await record_posted_events(uow, [posted("L-1", FIRST_TOUCH, 45)])
    earlier = await record_posted_events(uow, [posted("L-1", FIRST_TOUCH, 5)])

    assert later == Recorded(repeated=1)
    assert earlier == Recorded(stored=1)
    lead_id = (await rows_of(db, "L-1"))[0].lead_id
    first = await uow.read(lambda session: repo.first_touch_at(session=session, lead_id=lead_id))
    assert first == at(5)
    assert [row.at for row in await rows_of(db, "L-1")] == [at(30), at(5)]


async def test_a_batch_keeps_only_the_earliest_touch_of_each_lead_whatever_its_order(
    uow: UnitOfWork, db: Database
) -> None:
    await intake(uow, new_lead("L-1"))
    batch = [posted("L-1", FIRST_TOUCH, m) for m in (20, 8, 8, 15)]
    assert await record_posted_events(uow, batch) == Recorded(stored=2, repeated=2)
    assert sorted(row.at for row in await rows_of(db, "L-1")) == [at(8), at(20)]


async def test_events_about_leads_not_here_yet_are_counted_and_wait_for_them(
    uow: UnitOfWork, db: Database
) -> None:
    await intake(uow, new_lead("L-1"))
    recorded = await record_posted_events(
        uow, [posted("L-404", WON, 10), posted("L-1", CONVERTED, 10)]
    )
    assert recorded == Recorded(stored=1, waiting=1)
    async with db.reading() as session:
        assert len((await session.execute(select(LeadEventRow))).all()) == 1
    assert await waiting_rows(db) == 1


async def test_a_touch_posted_before_its_lead_is_recorded_once_the_lead_arrives(
    uow: UnitOfWork, db: Database, clock: Clock
) -> None:
    # A sequencer's first e-mail beat the lead's own POST /leads, and was sent twice.
    early = [posted("L-1", FIRST_TOUCH, 2, key="email-1"), posted("L-1", WON, 9, amount="900")]
    assert await record_posted_events(uow, early) == Recorded(waiting=2)
    assert await record_posted_events(uow, early[:1]) == Recorded(waiting=1)
    assert await apply_waiting_events(uow) == Applied()  # no lead yet: they wait
    assert await waiting_rows(db) == 3

    await intake(uow, new_lead("L-1"))
    clock.advance(minutes=5)
    applied = await apply_waiting_events(uow)

    assert applied == Applied(Recorded(stored=2, repeated=1))
    rows = await rows_of(db, "L-1")
    assert [(r.kind, r.at, r.source_key) for r in rows] == [
        ("first_touch", at(2), "email-1"),
        ("won", at(9), "won@9"),
    ]
    assert rows[1].amount == Decimal("900")
    assert {row.recorded_at for row in rows} == {clock()}  # when the report can first see them
    assert await waiting_rows(db) == 0
    assert await apply_waiting_events(uow) == Applied()  # nothing twice


async def test_a_crm_event_read_before_its_lead_came_from_the_crm_waits_for_it(
    uow: UnitOfWork, db: Database
) -> None:
    touch = Reported("00Q7", OutcomeEvent(FIRST_TOUCH, at(3)), "salesforce", "Task/00T1", "call")
    assert await record_crm_events(uow, "salesforce", [touch]) == Recorded(waiting=1)
    # A HubSpot contact with the same record id is another record: it takes nothing.
    await intake_from_crm(uow, [new_lead("hubspot:00Q7", crm_system="hubspot", crm_id="00Q7")])
    assert await apply_waiting_events(uow) == Applied()

    await intake_from_crm(
        uow, [new_lead("salesforce:00Q7", crm_system="salesforce", crm_id="00Q7")]
    )
    assert await apply_waiting_events(uow) == Applied(Recorded(stored=1))
    (row,) = await rows_of(db, "salesforce:00Q7")
    assert (row.kind, row.at, row.source, row.via) == ("first_touch", at(3), "salesforce", "call")
    assert await rows_of(db, "hubspot:00Q7") == []


async def test_a_waiting_crm_event_reaches_every_lead_its_record_came_in_as_however_batched(
    uow: UnitOfWork, db: Database
) -> None:
    won = Reported("00Q9", OutcomeEvent(WON, at(30), Decimal(500)), "salesforce", "Opp/006")
    touch = Reported("00Q8", OutcomeEvent(FIRST_TOUCH, at(3)), "salesforce", "Task/00T2")
    assert await record_crm_events(uow, "salesforce", [won, touch]) == Recorded(waiting=2)
    # The record came in twice, by POST /leads under two ids (the crm fields given).
    for external_id in ("L-a", "L-b"):
        await intake(uow, new_lead(external_id, crm_system="salesforce", crm_id="00Q9"))
    await intake(uow, new_lead("L-c", crm_system="salesforce", crm_id="00Q8"))

    assert await apply_waiting_events(uow, batch=1) == Applied(Recorded(stored=3))
    for external_id, kind in (("L-a", "won"), ("L-b", "won"), ("L-c", "first_touch")):
        assert [row.kind for row in await rows_of(db, external_id)] == [kind]
    assert await waiting_rows(db) == 0


async def test_a_waiting_touch_later_than_the_leads_first_is_not_kept_and_an_earlier_one_is(
    uow: UnitOfWork, db: Database
) -> None:
    await record_posted_events(
        uow,
        [posted("L-1", FIRST_TOUCH, 30, key="late"), posted("L-1", FIRST_TOUCH, 5, key="early")],
    )
    await intake(uow, new_lead("L-1"))
    await record_posted_events(uow, [posted("L-1", FIRST_TOUCH, 10, key="on-time")])

    assert await apply_waiting_events(uow) == Applied(Recorded(stored=1, repeated=1))
    assert sorted(row.at for row in await rows_of(db, "L-1")) == [at(5), at(10)]


async def test_an_event_whose_lead_never_arrives_is_dropped_after_a_day_and_counted(
    uow: UnitOfWork, db: Database, clock: Clock
) -> None:
    await record_posted_events(uow, [posted("L-404", FIRST_TOUCH, 1)])
    clock.advance(hours=23)
    await record_posted_events(uow, [posted("L-405", FIRST_TOUCH, 2)])
    clock.advance(hours=1, seconds=1)

    assert await apply_waiting_events(uow) == Applied(dropped=1)
    assert await waiting_rows(db) == 1  # L-405's, 1 hour old, still waits
    await intake(uow, new_lead("L-405"))
    assert await apply_waiting_events(uow) == Applied(Recorded(stored=1))
    await intake(uow, new_lead("L-404"))  # too late: its event is gone
    assert await apply_waiting_events(uow) == Applied()
    assert await rows_of(db, "L-404") == []


async def test_waiting_events_are_taken_in_batches_each_once(uow: UnitOfWork, db: Database) -> None:
    await record_posted_events(
        uow, [posted(f"L-{n}", CONVERTED, n, key=f"opp-{n}") for n in range(7)]
    )
    for n in range(7):
        await intake(uow, new_lead(f"L-{n}"))

    assert await apply_waiting_events(uow, batch=3) == Applied(Recorded(stored=7))
    for n in range(7):
        assert [row.source_key for row in await rows_of(db, f"L-{n}")] == [f"opp-{n}"]


async def test_a_crm_event_finds_its_lead_by_the_crm_record_it_arrived_as(
    uow: UnitOfWork, db: Database
) -> None:
    lead = new_lead("hubspot:501", crm_system="hubspot", crm_id="501")
    await intake_from_crm(uow, [lead])
    touch = Reported("501", OutcomeEvent(FIRST_TOUCH, at(3)), "hubspot", "calls/9", "call")
    elsewhere = Reported("999", OutcomeEvent(FIRST_TOUCH, at(3)), "hubspot", "calls/10", "call")

    assert await record_crm_events(uow, "hubspot", [touch, elsewhere]) == Recorded(1, 0, 1)
    # The same record id in another CRM is another record.
    assert await record_crm_events(uow, "salesforce", [touch]) == Recorded(waiting=1)
    (row,) = await rows_of(db, "hubspot:501")
    assert (row.source, row.source_key, row.via) == ("hubspot", "calls/9", "call")


async def test_a_polled_page_and_its_cursor_are_committed_together(
    uow: UnitOfWork, db: Database
) -> None:
    await intake_from_crm(
        uow, [new_lead("salesforce:00Q1", crm_system="salesforce", crm_id="00Q1")]
    )
    page = [Reported("00Q1", OutcomeEvent(CONVERTED, at(50)), "salesforce", "Lead/00Q1")]

    await take_crm_events_page(
        uow, "salesforce", page, cursor="salesforce:events:Lead", read_up_to=at(55)
    )
    again = await take_crm_events_page(
        uow, "salesforce", page, cursor="salesforce:events:Lead", read_up_to=at(51)
    )

    assert again == Recorded(repeated=1)
    assert await crm_cursor(uow, "salesforce:events:Lead") == at(55)  # never back
    assert len(await rows_of(db, "salesforce:00Q1")) == 1


async def test_replicas_recording_the_same_reports_at_once_store_each_once(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    policy = load_policy(write_policy(tmp_path, TRIO_POLICY))
    first = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    await intake(first, new_lead("L-1"))
    reports = [posted("L-1", CONVERTED, 10 + n, key=f"opp-{n}") for n in range(20)]
    replicas = [UnitOfWork(db=db, policy=lambda: policy, clock=clock) for _ in range(4)]
    results = await asyncio.gather(*(record_posted_events(r, reports) for r in replicas))
    assert sum(result.stored for result in results) == 20
    assert len(await rows_of(db, "L-1")) == 20


async def test_why_tells_the_first_touch_the_opportunity_and_the_win_once_each(
    uow: UnitOfWork, db: Database, clock: Clock
) -> None:
    await intake(uow, new_lead("L-1"))
    await record_posted_events(
        uow,
        [
            posted("L-1", WON, 300, key="opp-7", amount="12000", close_date=date(2026, 12, 1)),
            posted("L-1", FIRST_TOUCH, 20, key="call-2"),
            posted("L-1", FIRST_TOUCH, 7, key="call-1", source="outreach"),
            posted("L-1", CONVERTED, 60, key="opp-7"),
            posted("L-1", LOST, 200, key="opp-7"),
        ],
    )
    reader = Reader(db=db, policy=uow.policy, clock=clock)
    story = await reader.story("L-1", Viewer(rep=None, manager="mia"))
    assert story is not None
    told = [(event.at, event.what) for event in story.events if event.at > TUESDAY]
    assert told == [
        (at(7), "First touch (outreach)"),
        (at(60), "Converted: an opportunity (api)"),
        (at(300), "Won · 12,000.00 · close date 2026-12-01 (api)"),
    ]


async def test_why_names_how_and_in_which_crm_each_outcome_was_told(
    uow: UnitOfWork, db: Database, clock: Clock
) -> None:
    await intake_from_crm(
        uow, [new_lead("salesforce:00Q1", crm_system="salesforce", crm_id="00Q1")]
    )
    touch = OutcomeEvent(FIRST_TOUCH, at(9))
    converted = OutcomeEvent(CONVERTED, at(99))
    await record_crm_events(
        uow,
        "salesforce",
        [
            Reported("00Q1", touch, "salesforce", "Task/00T1", "call"),
            Reported("00Q1", converted, "salesforce", "Opportunity/0061", "opportunity"),
        ],
    )
    reader = Reader(db=db, policy=uow.policy, clock=clock)
    story = await reader.story("salesforce:00Q1", Viewer(rep=None, manager="mia"))
    assert story is not None
    assert [(e.at, e.what) for e in story.events if e.at > TUESDAY] == [
        (at(9), "First touch (call, Salesforce)"),
        (at(99), "Converted: an opportunity (Salesforce)"),
    ]


# --- currencies --------------------------------------------------------------------------------


def in_currency(event: OutcomeEvent, currency: str | None) -> OutcomeEvent:
    return event._replace(currency=currency)


async def left_out_rows(db: Database) -> list[AuditEventRow]:
    async with db.reading() as session:
        found = await session.execute(
            select(AuditEventRow).where(col(AuditEventRow.kind) == repo.AMOUNT_LEFT_OUT)
        )
        return list(found.scalars().all())


@pytest.fixture
def in_dollars(uow: UnitOfWork) -> UnitOfWork:
    uow.currency = "USD"
    return uow


async def test_a_crm_deal_in_another_currency_keeps_its_win_but_not_its_amount(
    in_dollars: UnitOfWork, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await intake_from_crm(in_dollars, [new_lead("hubspot:501", crm_system="hubspot", crm_id="501")])
    won = in_currency(OutcomeEvent(WON, at(30), Decimal("9000"), date(2026, 12, 1)), "GBP")

    with caplog.at_level("INFO", logger="bot.service"):
        recorded = await record_crm_events(
            in_dollars, "hubspot", [Reported("501", won, "hubspot", "deals/77", "deal")]
        )

    assert recorded == Recorded(stored=1)
    (row,) = await rows_of(db, "hubspot:501")
    assert (row.kind, row.at, row.amount, row.close_date) == (
        "won",
        at(30),
        None,
        date(2026, 12, 1),
    )
    (note,) = await left_out_rows(db)
    assert note.lead_id == row.lead_id
    assert (note.data["currency"], note.data["ours"]) == ("GBP", "USD")
    [line] = [r for r in caplog.records if "GBP" in r.getMessage()]
    assert line.getMessage().startswith("lead hubspot:501: the won amount hubspot reported")
    assert "USD" in line.getMessage() and "deals/77" in line.getMessage()
    assert getattr(line, "lead_id", None) == "hubspot:501"


async def test_a_deal_reported_again_in_another_currency_is_noted_once(
    in_dollars: UnitOfWork, db: Database
) -> None:
    await intake_from_crm(in_dollars, [new_lead("hubspot:502", crm_system="hubspot", crm_id="502")])
    won = in_currency(OutcomeEvent(WON, at(30), Decimal("10")), "EUR")
    report = Reported("502", won, "hubspot", "deals/78", "deal")

    await record_crm_events(in_dollars, "hubspot", [report])
    await record_crm_events(in_dollars, "hubspot", [report, report])

    assert len(await left_out_rows(db)) == 1


@pytest.mark.parametrize("named", ["USD", "usd", None])
async def test_an_amount_in_our_currency_or_in_none_named_is_kept(
    in_dollars: UnitOfWork, db: Database, named: str | None
) -> None:
    await intake_from_crm(
        in_dollars, [new_lead("salesforce:00Q5", crm_system="salesforce", crm_id="00Q5")]
    )
    won = in_currency(OutcomeEvent(WON, at(30), Decimal("700.25")), named)

    await record_crm_events(
        in_dollars, "salesforce", [Reported("00Q5", won, "salesforce", "Opportunity/0065")]
    )

    (row,) = await rows_of(db, "salesforce:00Q5")
    assert row.amount == Decimal("700.25")
    assert await left_out_rows(db) == []


async def test_without_a_currency_set_every_amount_is_kept_whatever_currency_it_names(
    uow: UnitOfWork, db: Database
) -> None:
    await intake_from_crm(uow, [new_lead("hubspot:503", crm_system="hubspot", crm_id="503")])
    won = in_currency(OutcomeEvent(WON, at(30), Decimal("42")), "GBP")

    await record_crm_events(uow, "hubspot", [Reported("503", won, "hubspot", "deals/79")])

    (row,) = await rows_of(db, "hubspot:503")
    assert row.amount == Decimal("42")
    assert await left_out_rows(db) == []


async def test_a_deal_in_another_currency_that_waited_for_its_lead_is_left_out_when_it_arrives(
    in_dollars: UnitOfWork, db: Database
) -> None:
    lost = in_currency(OutcomeEvent(LOST, at(40), Decimal("5000")), "JPY")
    report = Reported("00Q6", lost, "salesforce", "Opportunity/0066", "opportunity")
    assert await record_crm_events(in_dollars, "salesforce", [report]) == Recorded(waiting=1)

    await intake_from_crm(
        in_dollars, [new_lead("salesforce:00Q6", crm_system="salesforce", crm_id="00Q6")]
    )
    await apply_waiting_events(in_dollars)

    (row,) = await rows_of(db, "salesforce:00Q6")
    assert (row.kind, row.amount) == ("lost", None)
    (note,) = await left_out_rows(db)
    assert (note.data["currency"], note.data["ours"]) == ("JPY", "USD")


async def test_why_writes_amounts_with_the_currency_and_says_which_were_left_out(
    in_dollars: UnitOfWork, db: Database, clock: Clock
) -> None:
    for lead in ("501", "502"):
        await intake_from_crm(
            in_dollars, [new_lead(f"hubspot:{lead}", crm_system="hubspot", crm_id=lead)]
        )
    dollars = in_currency(OutcomeEvent(WON, at(30), Decimal("12000")), "USD")
    pounds = in_currency(OutcomeEvent(WON, at(30), Decimal("9000")), "GBP")
    await record_crm_events(
        in_dollars,
        "hubspot",
        [
            Reported("501", dollars, "hubspot", "deals/1", "deal"),
            Reported("502", pounds, "hubspot", "deals/2", "deal"),
        ],
    )
    reader = Reader(db=db, policy=in_dollars.policy, clock=clock, currency="USD")
    manager = Viewer(rep=None, manager="mia")

    in_ours = await reader.story("hubspot:501", manager)
    in_theirs = await reader.story("hubspot:502", manager)

    assert in_ours is not None and in_theirs is not None
    assert "Won · 12,000.00 USD (HubSpot)" in [event.what for event in in_ours.events]
    told = [event.what for event in in_theirs.events]
    assert "Won (HubSpot)" in told
    assert any(
        what.startswith("Amount left out") and "GBP" in what and "USD" in what for what in told
    )
    assert not any("9,000" in what for what in told)


async def test_an_amount_stored_before_the_currency_was_set_and_reported_again_is_not_said_left_out(
    uow: UnitOfWork, db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Setting LEADROUTER_CURRENCY later leaves amounts stored before as they are (docs/crm.md):
    a repeat of their report stores nothing, so nothing of it is left out, and neither the
    log nor the lead's story may say so beside the amount it still shows."""
    await intake_from_crm(uow, [new_lead("hubspot:504", crm_system="hubspot", crm_id="504")])
    won = in_currency(OutcomeEvent(WON, at(30), Decimal("9000")), "GBP")
    report = Reported("504", won, "hubspot", "deals/80", "deal")
    await record_crm_events(uow, "hubspot", [report])  # no currency set yet: kept as it came

    uow.currency = "USD"
    with caplog.at_level("INFO", logger="bot.service"):
        again = await record_crm_events(uow, "hubspot", [report])

    assert again == Recorded(repeated=1)
    (row,) = await rows_of(db, "hubspot:504")
    assert row.amount == Decimal("9000")
    assert await left_out_rows(db) == []
    assert not [r for r in caplog.records if "left out" in r.getMessage()]
    reader = Reader(db=db, policy=uow.policy, clock=clock, currency="USD")
    story = await reader.story("hubspot:504", Viewer(rep=None, manager="mia"))
    assert story is not None
    assert not [event.what for event in story.events if event.what.startswith("Amount left out")]
