from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.policy_file import load_policy
from bot.service.errors import NotAllowed
from bot.service.intake import find_lead, intake
from bot.service.offers import claim
from bot.service.unit_of_work import UnitOfWork
from bot.service.views import ClaimResult
from routing.policy import Policy
from storage.db import Database
from tests.service.support import (
    TRIO_POLICY,
    audit_of,
    new_lead,
    offers_of,
    stored_open_counts,
    write_policy,
)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY))


async def test_the_offered_rep_claims_a_lead_once_and_keeps_it_open(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    assert (await intake(uow, new_lead("L-1"))).lead.rep == "ann"
    first = await claim(uow, "L-1", by="ann")
    again = await claim(uow, "L-1", by="ann")
    assert (first.claimed, first.holder, first.lead.status) == (True, "ann", "claimed")
    assert (again.claimed, again.holder, again.lead.status) == (False, "ann", "claimed")
    assert [(o.rep_id, o.status) for o in await offers_of(db, "L-1")] == [("ann", "claimed")]
    assert await stored_open_counts(db) == {"ann": 1}


async def test_a_manager_may_claim_for_the_rep_but_another_rep_may_not(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-1"))
    with pytest.raises(NotAllowed, match="offered to Ann Archer, not to you"):
        await claim(uow, "L-1", by="ben")
    claimed = await claim(uow, "L-1", by="mia")
    assert (claimed.claimed, claimed.holder) == (True, "ann")


async def test_fifty_concurrent_claims_of_one_offer_have_exactly_one_winner(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    assert (await intake(uow, new_lead("L-1"))).lead.rep == "ann"
    claimants = ["ann"] * 30 + ["mia"] * 10 + ["ben"] * 4 + ["cat"] * 3 + ["dot"] * 3
    random.Random(50).shuffle(claimants)

    results = await asyncio.gather(
        *(claim(uow, "L-1", by=who) for who in claimants), return_exceptions=True
    )

    winners = [
        who
        for who, r in zip(claimants, results, strict=True)
        if isinstance(r, ClaimResult) and r.claimed
    ]
    assert len(winners) == 1 and winners[0] in {"ann", "mia"}
    for who, result in zip(claimants, results, strict=True):
        if who in {"ann", "mia"}:
            assert isinstance(result, ClaimResult), f"{who}: {result!r}"
        else:  # told it is not theirs, or (after the winner) who has it
            assert isinstance(result, ClaimResult | NotAllowed), f"{who}: {result!r}"
        if isinstance(result, ClaimResult):
            assert result.holder == "ann"
    assert [(o.rep_id, o.status) for o in await offers_of(db, "L-1")] == [("ann", "claimed")]
    assert [e.actor for e in await audit_of(db, "L-1") if e.kind == "claimed"] == winners
    assert (await find_lead(uow, "L-1")).status == "claimed"
    assert await stored_open_counts(db) == {"ann": 1}
