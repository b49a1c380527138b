"""The SLA watchdog's sweep, the reminders at half the SLA, and assigning a queued lead by hand."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from bot.policy_file import load_policy
from bot.service.errors import NotAllowed
from bot.service.intake import intake, intake_many
from bot.service.kinds import OutboxKind
from bot.service.offers import assign, claim
from bot.service.unit_of_work import UnitOfWork
from bot.service.views import SweepResult
from bot.service.watchdog import sweep
from routing.policy import Policy
from storage.db import Database, open_database
from storage.models import AuditEventRow, OutboxRow
from tests.service.conftest import Clock
from tests.service.support import (
    TRIO_POLICY,
    audit_of,
    lead_statuses,
    leads_out_of_step_with_their_offers,
    new_lead,
    offers_of,
    stored_open_counts,
    write_policy,
)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY))


def policy_with(tmp_path: Path, sla: str) -> Policy:
    return load_policy(write_policy(tmp_path, f"{TRIO_POLICY}sla: {{{sla}}}\n", name="sla.yml"))


async def outbox(db: Database, kind: str) -> list[OutboxRow]:
    async with db.reading() as session:
        result = await session.execute(
            select(OutboxRow).where(col(OutboxRow.kind) == kind).order_by(col(OutboxRow.id))
        )
        return list(result.scalars().all())


async def misses(db: Database) -> Counter[str]:
    """SLA misses recorded per rep."""
    async with db.reading() as session:
        rows = await session.execute(
            select(AuditEventRow).where(col(AuditEventRow.kind) == "sla_missed")
        )
        return Counter(str(row.data["rep"]) for row in rows.scalars())


async def test_an_offer_nobody_claimed_in_time_goes_to_the_next_rep(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-0"))
    clock.advance(minutes=15, seconds=1)

    result = await sweep(uow)

    assert result == SweepResult(expired=1, reassigned=1)
    offers = await offers_of(db, "L-0")
    assert [(o.rep_id, o.status, o.reassignments) for o in offers] == [
        ("ann", "expired", 0),
        ("ben", "offered", 1),
    ]
    assert offers[1].sla_due_at == clock.now + (offers[0].sla_due_at - offers[0].offered_at)
    assert await misses(db) == Counter({"ann": 1})
    missed = [e for e in await audit_of(db, "L-0") if e.kind == "sla_missed"]
    assert missed[0].reason == "not claimed within 15m"
    assert await stored_open_counts(db) == {"ben": 1}
    assert [i.payload["offer_id"] for i in await outbox(db, OutboxKind.SETTLE_CARD)] == [
        offers[0].id
    ]
    assert [i.payload["offer_id"] for i in await outbox(db, OutboxKind.OFFER_CARD)] == [
        offers[0].id,
        offers[1].id,
    ]


async def test_offers_still_within_their_sla_or_claimed_are_left_alone(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-0"))
    await intake(uow, new_lead("L-1"))
    await claim(uow, "L-0", by="ann")
    clock.advance(minutes=14, seconds=59)
    assert await sweep(uow) == SweepResult()
    clock.advance(minutes=60)

    assert await sweep(uow) == SweepResult(expired=1, reassigned=1)

    assert [o.status for o in await offers_of(db, "L-0")] == ["claimed"]
    assert [o.status for o in await offers_of(db, "L-1")] == ["expired", "offered"]


async def test_after_max_reassignments_the_lead_goes_to_the_queue_and_its_manager_is_told(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)  # sla.max_reassignments defaults to 2
    await intake(uow, new_lead("L-0"))
    results = []
    for _ in range(3):
        clock.advance(minutes=16)
        results.append(await sweep(uow))

    assert results == [
        SweepResult(expired=1, reassigned=1),
        SweepResult(expired=1, reassigned=1),
        SweepResult(expired=1, queued=1),
    ]
    assert [(o.rep_id, o.status) for o in await offers_of(db, "L-0")] == [
        ("ann", "expired"),
        ("ben", "expired"),
        ("cat", "expired"),
    ]
    assert await lead_statuses(db) == Counter({"queued": 1})
    assert await stored_open_counts(db) == {}
    alerts = await outbox(db, OutboxKind.MANAGER_ALERT)
    assert [a.payload["manager"] for a in alerts] == ["mia"]
    assert [a.payload["lead_id"] for a in alerts] == [(await offers_of(db, "L-0"))[0].lead_id]
    routed_again = [e for e in await audit_of(db, "L-0") if e.kind == "rerouted"]
    assert routed_again[-1].data["outcome"] == "queued"
    assert (
        routed_again[-1].reason
        == "Not claimed after 3 offers (Ann Archer, Ben Baker, Cat Cole) → unmatched queue"
    )


async def test_when_every_rep_has_missed_it_the_lead_goes_to_the_queue(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    uow = UnitOfWork(
        db=db, policy=lambda: policy_with(tmp_path, "max_reassignments: 10"), clock=clock
    )
    await intake(uow, new_lead("L-0"))
    for _ in range(3):
        clock.advance(minutes=16)
        last = await sweep(uow)

    assert last == SweepResult(expired=1, queued=1)
    assert await lead_statuses(db) == Counter({"queued": 1})
    assert await misses(db) == Counter({"ann": 1, "ben": 1, "cat": 1})
    assert len(await outbox(db, OutboxKind.MANAGER_ALERT)) == 1


async def test_a_sweep_works_through_every_overdue_offer_in_batches(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    await intake_many(uow, [new_lead(f"L-{n:02}") for n in range(25)])
    clock.advance(minutes=16)
    before = uow.tally.transactions

    result = await sweep(uow, batch=10)

    assert result == SweepResult(expired=25, reassigned=25)
    assert uow.tally.transactions - before == 3
    assert await misses(db) == Counter({"ann": 9, "ben": 8, "cat": 8})
    assert await leads_out_of_step_with_their_offers(db) == {}
    assert sum((await stored_open_counts(db)).values()) == 25


class Crash(Exception):
    pass


async def test_a_sweep_cut_short_between_batches_loses_and_repeats_nothing(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    first = make_uow(db)
    await intake_many(first, [new_lead(f"L-{n:02}") for n in range(25)])
    clock.advance(minutes=16)

    def crash_after_commit() -> None:
        raise Crash  # the process dies right after its first batch committed

    first.on_outbox = crash_after_commit
    with pytest.raises(Crash):
        await sweep(first, batch=10)
    assert sum((await misses(db)).values()) == 10

    restarted = make_uow(db)
    assert await sweep(restarted, batch=10) == SweepResult(expired=15, reassigned=15)

    assert sum((await misses(db)).values()) == 25
    for n in range(25):
        assert [o.status for o in await offers_of(db, f"L-{n:02}")] == ["expired", "offered"]
    assert await leads_out_of_step_with_their_offers(db) == {}


async def test_a_sweep_that_fails_inside_its_transaction_changes_nothing(
    db: Database, policy: Policy, clock: Clock
) -> None:
    calls = 0

    def flaky_policy() -> Policy:
        nonlocal calls
        calls += 1
        if calls == 3:  # 2 intakes, then inside the sweep's first batch: after the offers closed
            raise Crash
        return policy

    uow = UnitOfWork(db=db, policy=flaky_policy, clock=clock)
    await intake(uow, new_lead("L-0"))
    await intake(uow, new_lead("L-1"))
    clock.advance(minutes=16)

    with pytest.raises(Crash):
        await sweep(uow)
    assert [o.status for o in await offers_of(db, "L-0")] == ["offered"]
    assert await misses(db) == Counter()

    assert await sweep(uow) == SweepResult(expired=2, reassigned=2)
    assert await misses(db) == Counter({"ann": 1, "ben": 1})


async def test_two_sweepers_on_one_postgres_reassign_each_overdue_offer_once(
    postgres_url: str, policy: Policy, clock: Clock
) -> None:
    databases = [open_database(postgres_url) for _ in range(2)]
    try:
        await databases[0].create_tables()
        replicas = [UnitOfWork(db=db, policy=lambda: policy, clock=clock) for db in databases]
        await intake_many(replicas[0], [new_lead(f"L-{n:03}") for n in range(200)])
        clock.advance(minutes=16)

        results = await asyncio.gather(*(sweep(replica, batch=20) for replica in replicas))

        assert sum(r.expired for r in results) == 200
        assert all(r.expired > 0 for r in results), "both replicas should have taken a share"
        assert sum((await misses(databases[0])).values()) == 200
        for n in range(0, 200, 7):
            statuses = [o.status for o in await offers_of(databases[0], f"L-{n:03}")]
            assert statuses == ["expired", "offered"]
        assert await leads_out_of_step_with_their_offers(databases[0]) == {}
        assert sum((await stored_open_counts(databases[0])).values()) == 200
    finally:
        for db in databases:
            await db.dispose()


async def test_a_reminder_is_queued_once_at_half_the_sla(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    policy = policy_with(tmp_path, "default: 10m, remind_at_half: true")
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    await intake(uow, new_lead("L-0"))
    await intake(uow, new_lead("L-1"))
    await claim(uow, "L-1", by="ben")
    clock.advance(minutes=4, seconds=59)
    assert await sweep(uow) == SweepResult()
    clock.advance(seconds=1)

    assert await sweep(uow) == SweepResult(reminded=1)
    assert await sweep(uow) == SweepResult()

    reminders = await outbox(db, OutboxKind.REMINDER)
    assert [r.payload["offer_id"] for r in reminders] == [(await offers_of(db, "L-0"))[0].id]


async def test_without_remind_at_half_no_reminder_is_queued(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-0"))
    clock.advance(minutes=10)
    assert await sweep(uow) == SweepResult()
    assert await outbox(db, OutboxKind.REMINDER) == []


async def queued_lead(uow: UnitOfWork, clock: Clock) -> None:
    await intake(uow, new_lead("L-0"))
    for _ in range(3):
        clock.advance(minutes=16)
        await sweep(uow)


async def test_a_manager_assigns_a_queued_lead_to_a_rep_of_their_choosing(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    await queued_lead(uow, clock)

    view = await assign(uow, "L-0", rep_id="dot", by="mia")

    assert (view.status, view.rep, view.rule) == ("offered", "dot", "Assigned by hand")
    assert view.reason == "Assigned by Mia Moss"
    assert view.sla_due_at == clock.now + timedelta(minutes=15)
    offers = await offers_of(db, "L-0")
    assert (offers[-1].rep_id, offers[-1].status) == ("dot", "offered")
    assert await stored_open_counts(db) == {"dot": 1}
    assert [e.kind for e in await audit_of(db, "L-0")][-2:] == ["assigned", "rerouted"]
    assert (await claim(uow, "L-0", by="dot")).claimed


async def test_only_managers_assign_and_only_leads_waiting_in_a_queue(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    await queued_lead(uow, clock)
    await intake(uow, new_lead("L-1"))

    with pytest.raises(NotAllowed, match="only managers"):
        await assign(uow, "L-0", rep_id="dot", by="ann")
    with pytest.raises(NotAllowed, match="not in a queue"):
        await assign(uow, "L-1", rep_id="dot", by="mia")
    assert await lead_statuses(db) == Counter({"queued": 1, "offered": 1})


async def test_a_lead_whose_card_was_given_up_and_did_not_move_on_is_moved_by_the_sweep(
    db: Database, policy: Policy, clock: Clock
) -> None:
    # Cards posted: the SLA runs from the card's post, so an offer whose card never went out
    # has none. Its card given up, but the move that follows lost (the database gone for a
    # moment after the give-up was committed): the lead sits with ann, who never saw it.
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock, cards=True)
    await intake(uow, new_lead("L-0"))
    async with db.sessions.begin() as session:
        await session.execute(
            update(OutboxRow)
            .where(col(OutboxRow.kind) == OutboxKind.OFFER_CARD)
            .values(failed_at=clock.now, last_error="Slack refused the post: channel_not_found")
        )
    assert await sweep(uow) == SweepResult()  # the first try's own move may still be on its way

    clock.advance(minutes=1, seconds=1)
    result = await sweep(uow)

    assert result == SweepResult(undelivered=1)
    offers = await offers_of(db, "L-0")
    assert [(o.rep_id, o.status) for o in offers] == [("ann", "reassigned"), ("ben", "offered")]
    assert await misses(db) == Counter()  # nobody is charged for a card they never saw
    (moved,) = [e for e in await audit_of(db, "L-0") if e.kind == "card_undeliverable"]
    assert "channel_not_found" in (moved.reason or "")
    assert await sweep(uow) == SweepResult()  # once: ben's card is another item, not given up
