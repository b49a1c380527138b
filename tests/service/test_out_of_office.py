from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.policy_file import load_policy
from bot.service.availability import set_back, set_out_of_office
from bot.service.intake import intake
from bot.service.kinds import OutboxKind
from bot.service.offers import claim
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy
from storage.db import Database
from storage.models import OutboxRow
from tests.service.conftest import Clock
from tests.service.support import (
    TRIO_POLICY,
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
