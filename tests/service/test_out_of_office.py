from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.policy_file import load_policy
from bot.service.availability import set_back, set_out_of_office
from bot.service.intake import intake
from bot.service.kinds import SLA_MISSED, OutboxKind
from bot.service.offers import assign, claim
from bot.service.unit_of_work import UnitOfWork
from bot.service.views import SweepResult
from bot.service.watchdog import sweep
from routing.policy import Policy
from storage.db import Database
from storage.models import AuditEventRow, OutboxRow
from tests.service.conftest import Clock
from tests.service.support import (
    TRIO_POLICY,
    audit_of,
    leads_out_of_step_with_their_offers,
    new_lead,
    offers_of,
    open_offers_by_rep,
    stored_open_counts,
    write_policy,
)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY))


async def test_going_out_of_office_moves_the_reps_unclaimed_offers_and_keeps_claimed_ones(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    reps = [(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(7)]
    assert reps == ["ann", "ben", "cat", "ann", "ben", "cat", "ann"]
    await claim(uow, "L-0", by="ann")

    moves = await set_out_of_office(
        uow, "ann", until=clock.now + timedelta(hours=4), reason="dentist"
    )

    assert sorted(m.lead_id for m in moves) == ["L-3", "L-6"]
    for move in moves:
        assert move.from_rep == "ann" and move.to.rep in {"ben", "cat"}
        offers = await offers_of(db, move.lead_id)
        assert [(o.rep_id, o.status) for o in offers] == [
            ("ann", "reassigned"),
            (move.to.rep, "offered"),
        ]
    assert [(o.rep_id, o.status) for o in await offers_of(db, "L-0")] == [("ann", "claimed")]
    counts = await stored_open_counts(db)
    assert counts["ann"] == 1
    assert counts == await open_offers_by_rep(db)


async def test_new_leads_skip_a_rep_who_is_out_of_office_until_the_absence_ends(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    await set_out_of_office(uow, "ann", until=clock.now + timedelta(hours=2), reason="offsite")

    during = [(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(6)]
    clock.advance(hours=2, minutes=1)
    after = [(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(6, 12)]

    assert sorted(map(str, during)) == ["ben", "ben", "ben", "cat", "cat", "cat"]
    assert sorted(map(str, after)) == ["ann", "ann", "ben", "ben", "cat", "cat"]


async def test_a_rep_away_until_further_notice_gets_nothing_until_set_back(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    await set_out_of_office(uow, "ben", until=None, reason="parental leave")
    during = {(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(4)}
    await set_back(uow, "ben")
    after = {(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(4, 8)}
    assert during == {"ann", "cat"}
    assert "ben" in after


async def test_a_rep_someone_else_marks_is_told_once_by_the_outbox_with_the_offers_that_move(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    for n in range(4):
        await intake(uow, new_lead(f"L-{n}"))  # ann holds L-0 and L-3
    ann = [o.id for n in (0, 3) for o in await offers_of(db, f"L-{n}") if o.rep_id == "ann"]

    await set_out_of_office(uow, "ann", until=None, reason="offsite", by="mia")
    await set_back(uow, "ann", by="mia")
    await set_out_of_office(uow, "ben", until=None, reason="offsite", by="ben")  # himself
    await set_back(uow, "ben")

    async with db.reading() as session:
        found = await session.execute(
            select(OutboxRow)
            .where(col(OutboxRow.kind) == OutboxKind.ABSENCE_TOLD)
            .order_by(col(OutboxRow.id))
        )
        told = list(found.scalars())
    assert [item.payload for item in told] == [
        {"rep": "ann", "by": "mia", "away": True, "until": None, "offers": ann},
        {"rep": "ann", "by": "mia", "away": False},
    ]
    assert len({item.dedupe_key for item in told}) == 2  # one per change


class Crash(Exception):
    pass


async def marked_out_and_the_moves_lost(uow: UnitOfWork, rep: str, **absence: Any) -> None:
    """A manager marks `rep` out; the process dies once the absence is committed, before any
    of the rep's offers moved on (the hook runs right after the commit that queued the DM)."""

    def crash_after_commit() -> None:
        raise Crash

    uow.on_outbox = crash_after_commit
    try:
        with pytest.raises(Crash):
            await set_out_of_office(uow, rep, reason="offsite", by="mia", **absence)
    finally:
        uow.on_outbox = None


async def holders(db: Database, *lead_ids: str) -> dict[str, list[tuple[str, str]]]:
    return {
        lead_id: [(o.rep_id, o.status) for o in await offers_of(db, lead_id)]
        for lead_id in lead_ids
    }


async def misses_of(db: Database, rep: str) -> int:
    """SLA misses the watchdog charged `rep`."""
    async with db.reading() as session:
        found = await session.execute(
            select(AuditEventRow).where(col(AuditEventRow.kind) == SLA_MISSED)
        )
        return sum(1 for event in found.scalars() if event.data["rep"] == rep)


async def test_offers_left_with_a_rep_marked_out_by_a_lost_move_are_moved_by_the_sweep(
    db: Database, make_uow: Callable[[Database], UnitOfWork], clock: Clock
) -> None:
    uow = make_uow(db)
    for n in range(4):
        await intake(uow, new_lead(f"L-{n}"))  # ann holds L-0 and L-3, due in 15 minutes
    clock.advance(minutes=14, seconds=30)
    await marked_out_and_the_moves_lost(uow, "ann", until=None)
    assert await holders(db, "L-0", "L-3") == {
        "L-0": [("ann", "offered")],
        "L-3": [("ann", "offered")],
    }

    # Past the SLA, but within the grace the absence's own moves have: ann's leads stay put,
    # and the watchdog charges her no miss for leads her absence is to move on (ben and cat,
    # present, are charged theirs).
    clock.advance(seconds=40)
    assert await sweep(uow) == SweepResult(expired=2, reassigned=2)
    assert (await misses_of(db, "ann"), await misses_of(db, "ben")) == (0, 1)
    assert await holders(db, "L-0", "L-3") == {
        "L-0": [("ann", "offered")],
        "L-3": [("ann", "offered")],
    }

    clock.advance(seconds=30)
    assert await sweep(uow) == SweepResult(out_of_office=2)

    for lead_id in ("L-0", "L-3"):
        (gone, now_with) = await offers_of(db, lead_id)
        assert (gone.rep_id, gone.status, gone.moved_because) == (
            "ann",
            "reassigned",
            "out_of_office",
        )
        assert now_with.rep_id in {"ben", "cat"} and now_with.status == "offered"
        assert [e.kind for e in await audit_of(db, lead_id)][-2:] == [
            "rep_out_of_office",
            "rerouted",
        ]
    assert await misses_of(db, "ann") == 0
    counts = await stored_open_counts(db)
    assert "ann" not in counts and counts == await open_offers_by_rep(db)
    assert await leads_out_of_step_with_their_offers(db) == {}
    assert await sweep(uow) == SweepResult()  # once


async def ann_is_set_back(uow: UnitOfWork, clock: Clock) -> None:
    await marked_out_and_the_moves_lost(uow, "ann", until=None)
    await set_back(uow, "ann")


async def anns_absence_ends(uow: UnitOfWork, clock: Clock) -> None:
    await marked_out_and_the_moves_lost(uow, "ann", until=clock.now + timedelta(seconds=30))


@pytest.mark.parametrize("comes_back", [ann_is_set_back, anns_absence_ends])
async def test_a_rep_back_before_the_sweep_keeps_their_leads_and_one_still_out_does_not(
    db: Database,
    make_uow: Callable[[Database], UnitOfWork],
    clock: Clock,
    comes_back: Callable[[UnitOfWork, Clock], Awaitable[None]],
) -> None:
    uow = make_uow(db)
    for n in range(6):
        await intake(uow, new_lead(f"L-{n}"))  # ann: L-0, L-3; ben: L-1, L-4
    await comes_back(uow, clock)
    await marked_out_and_the_moves_lost(uow, "ben", until=None)
    clock.advance(minutes=2)

    assert await sweep(uow) == SweepResult(out_of_office=2)

    assert await holders(db, "L-0", "L-3") == {
        "L-0": [("ann", "offered")],
        "L-3": [("ann", "offered")],
    }
    for lead_id in ("L-1", "L-4"):
        first, *_ = await offers_of(db, lead_id)
        assert (first.rep_id, first.status) == ("ben", "reassigned")
    assert (await open_offers_by_rep(db)).get("ben", 0) == 0


async def test_a_lead_a_manager_gives_a_rep_who_is_out_stays_with_them(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    policy = load_policy(write_policy(tmp_path, f"{TRIO_POLICY}sla: {{max_reassignments: 0}}\n"))
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    await intake(uow, new_lead("L-0"))  # ann's
    await intake(uow, new_lead("L-1"))  # ben's
    await marked_out_and_the_moves_lost(uow, "ann", until=None)
    clock.advance(minutes=16)
    # L-0 moves on (her absence); L-1 is ben's miss, and goes to the queue
    assert await sweep(uow) == SweepResult(expired=1, queued=1, out_of_office=1)
    clock.advance(seconds=1)
    await assign(uow, "L-1", rep_id="ann", by="mia")  # knowing she is out
    clock.advance(minutes=2)

    assert await sweep(uow) == SweepResult()
    assert (await offers_of(db, "L-1"))[-1].rep_id == "ann"


async def test_two_replicas_sweeping_at_once_move_each_offer_of_a_rep_marked_out_once(
    db: Database,
    replica_db: Database,
    make_uow: Callable[[Database], UnitOfWork],
    clock: Clock,
) -> None:
    uow = make_uow(db)
    for n in range(30):
        await intake(uow, new_lead(f"L-{n:02}"))  # ann holds every third
    await marked_out_and_the_moves_lost(uow, "ann", until=None)
    clock.advance(minutes=2)

    results = await asyncio.gather(sweep(make_uow(db)), sweep(make_uow(replica_db)))

    assert sum(result.out_of_office for result in results) == 10
    assert sum(result.expired for result in results) == 0
    for n in range(0, 30, 3):
        offers = await offers_of(db, f"L-{n:02}")
        assert [(o.rep_id, o.status) for o in offers[:1]] == [("ann", "reassigned")]
        assert [o.status for o in offers] == ["reassigned", "offered"]
    assert await leads_out_of_step_with_their_offers(db) == {}
    counts = await stored_open_counts(db)
    assert "ann" not in counts and counts == await open_offers_by_rep(db)


async def test_a_rep_marked_out_whose_leads_did_not_move_is_not_reminded_of_them(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    policy = load_policy(
        write_policy(tmp_path, f"{TRIO_POLICY}sla: {{default: 10m, remind_at_half: true}}\n")
    )
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    for n in range(3):
        await intake(uow, new_lead(f"L-{n}"))  # one each for ann, ben and cat
    clock.advance(minutes=4, seconds=50)
    await marked_out_and_the_moves_lost(uow, "ann", until=None)
    clock.advance(seconds=20)  # half the SLA gone; the absence's own moves still have time

    assert await sweep(uow) == SweepResult(reminded=2)  # ben and cat, not ann

    clock.advance(minutes=1)
    assert await sweep(uow) == SweepResult(out_of_office=1)
