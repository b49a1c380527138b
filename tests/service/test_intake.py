from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, func, select

from bot.service.intake import intake
from bot.service.unit_of_work import UnitOfWork
from routing.leads import parse_lead
from storage.db import Database
from storage.models import DecisionRow, LeadRow, OfferRow, OutboxRow
from tests.sqlite_trace import opening, sqlite_statements


def lead(**fields: Any) -> Any:
    fields.setdefault("id", "L-1")
    return parse_lead(fields)


ENTERPRISE = {
    "email": "cto@bigco.com",
    "country": "US",
    "employees": 5000,
    "source": "demo_request",
}


async def count(db: Database, table: Any) -> int:
    async with db.reading() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_new_lead_is_stored_routed_offered_and_queued_for_slack(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    result = await intake(uow, lead(**ENTERPRISE))
    assert result.created
    assert result.lead.rep == "alice" and result.lead.status == "offered"
    assert result.lead.sla_due_at is not None
    assert (await count(db, LeadRow), await count(db, OfferRow)) == (1, 1)
    assert await count(db, DecisionRow) == 1
    async with db.reading() as session:
        outbox = (await session.execute(select(OutboxRow))).scalars().all()
        decision = (await session.execute(select(DecisionRow))).scalars().one()
    assert [item.kind for item in outbox] == ["slack.offer_card"]
    assert any(step["stage"] == "rule" and step["ok"] for step in decision.trace)


async def test_a_repeated_external_id_returns_the_stored_decision_and_changes_nothing(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    first = await intake(uow, lead(**ENTERPRISE))
    again = await intake(uow, lead(**ENTERPRISE, company="Changed"))
    assert not again.created
    assert again.lead == first.lead
    assert (await count(db, OfferRow), await count(db, OutboxRow)) == (1, 1)


async def test_two_hundred_concurrent_intakes_of_one_id_make_one_lead_one_offer_one_card(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    results = await asyncio.gather(*(intake(uow, lead(**ENTERPRISE)) for _ in range(200)))
    assert sum(r.created for r in results) == 1
    assert len({r.lead for r in results}) == 1
    assert await count(db, LeadRow) == 1
    assert await count(db, OfferRow) == 1
    assert await count(db, OutboxRow) == 1


async def test_rotation_and_loads_carry_from_one_lead_to_the_next(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    people = [{**ENTERPRISE, "id": f"L{i}", "email": f"cto{i}@bigco.com"} for i in range(6)]
    reps = [(await intake(uow, lead(**person))).lead.rep for person in people]
    assert reps.count("alice") == 4 and reps.count("bob") == 2


async def test_concurrent_intakes_are_committed_together_not_one_transaction_each(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    leads = [lead(**{**ENTERPRISE, "id": f"G{i}"}) for i in range(50)]
    results = await asyncio.gather(*(intake(uow, one) for one in leads))
    assert [r.lead.id for r in results] == [one.id for one in leads]
    assert all(r.created for r in results)
    assert uow.tally.transactions < 10
    assert await count(db, OfferRow) == 50


async def test_on_sqlite_a_lead_is_routed_in_one_go_on_the_event_loops_thread(
    sqlite_db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    """A lead's transaction is quick (`Database.run`): with nobody else writing, it runs whole
    where it is asked for, from BEGIN IMMEDIATE to COMMIT, each statement through SQLAlchemy
    (its events see them all)."""
    uow = make_uow(sqlite_db)
    for n in range(3):  # alice, bob, alice: both reps and the team have rows after these
        await intake(uow, lead(**{**ENTERPRISE, "id": f"warm-{n}"}))
    threads: set[str] = set()
    for engine in sqlite_db.sync_engines:
        event.listen(
            engine,
            "before_cursor_execute",
            lambda *args: threads.add(threading.current_thread().name),
        )
    statements = sqlite_statements(sqlite_db)

    result = await intake(uow, lead(**ENTERPRISE, id="steady"))

    assert result.created and result.lead.rep is not None
    assert threads == {threading.current_thread().name}
    assert opening(statements[0]) == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
    assert statements.count("COMMIT") == 1
    assert any(opening(s) == "INSERT INTO" and " offers " in s for s in statements)
    # A lead sent again is answered from its stored row.
    again = await intake(uow, lead(**ENTERPRISE, id="steady"))
    assert not again.created and again.lead == result.lead
