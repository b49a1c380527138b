from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.policy_file import load_policy
from bot.service import Service
from routing.policy import Policy
from storage.db import Database
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
    db: Database, make_service: Callable[[Database], Service], clock: Clock
) -> None:
    service = make_service(db)
    reps = [(await service.intake(new_lead(f"L-{n}"))).lead.rep for n in range(7)]
    assert reps == ["ann", "ben", "cat", "ann", "ben", "cat", "ann"]
    await service.claim("L-0", by="ann")

    moves = await service.set_out_of_office(
        "ann", until=clock.now + timedelta(hours=4), reason="dentist"
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
    db: Database, make_service: Callable[[Database], Service], clock: Clock
) -> None:
    service = make_service(db)
    await service.set_out_of_office("ann", until=clock.now + timedelta(hours=2), reason="offsite")

    during = [(await service.intake(new_lead(f"L-{n}"))).lead.rep for n in range(6)]
    clock.advance(hours=2, minutes=1)
    after = [(await service.intake(new_lead(f"L-{n}"))).lead.rep for n in range(6, 12)]

    assert sorted(map(str, during)) == ["ben", "ben", "ben", "cat", "cat", "cat"]
    assert sorted(map(str, after)) == ["ann", "ann", "ben", "ben", "cat", "cat"]


async def test_a_rep_away_until_further_notice_gets_nothing_until_set_back(
    db: Database, make_service: Callable[[Database], Service]
) -> None:
    service = make_service(db)
    await service.set_out_of_office("ben", until=None, reason="parental leave")
    during = {(await service.intake(new_lead(f"L-{n}"))).lead.rep for n in range(4)}
    await service.set_back("ben")
    after = {(await service.intake(new_lead(f"L-{n}"))).lead.rep for n in range(4, 8)}
    assert during == {"ann", "cat"}
    assert "ben" in after
