from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.policy_file import load_policy
from bot.service.intake import intake
from bot.service.offers import claim, reassign
from bot.service.unit_of_work import UnitOfWork
from bot.service.views import Move
from routing.policy import Policy
from storage.db import Database
from storage.models import MoveReason
from tests.service.support import (
    TRIO_POLICY,
    audit_of,
    new_lead,
    offers_of,
    open_offers_by_rep,
    stored_open_counts,
    write_policy,
)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY))


async def offer_id(db: Database, external_id: str) -> int:
    offer_id = (await offers_of(db, external_id))[-1].id
    assert offer_id is not None
    return offer_id


async def test_reassigning_an_offered_lead_moves_it_to_another_rep(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-0"))

    move = await reassign(
        uow, await offer_id(db, "L-0"), because=MoveReason.OUT_OF_OFFICE, reason="away"
    )

    assert move is not None
    assert move.from_rep == "ann" and move.to.rep in {"ben", "cat"}
    offers = await offers_of(db, "L-0")
    assert [(o.rep_id, o.status, o.reassignments) for o in offers] == [
        ("ann", "reassigned", 0),
        (move.to.rep, "offered", 1),
    ]
    assert await stored_open_counts(db) == {move.to.rep: 1}


async def test_reassigning_a_claimed_lead_changes_nothing(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-0"))
    await claim(uow, "L-0", by="ann")

    assert (
        await reassign(
            uow, await offer_id(db, "L-0"), because=MoveReason.OUT_OF_OFFICE, reason="away"
        )
        is None
    )

    assert [(o.rep_id, o.status) for o in await offers_of(db, "L-0")] == [("ann", "claimed")]
    assert await stored_open_counts(db) == {"ann": 1}


async def test_reassigning_the_same_offer_twice_at_once_moves_it_once(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    ids = [f"L-{n}" for n in range(6)]
    for external_id in ids:
        await intake(uow, new_lead(external_id))

    for external_id in ids:  # one lead at a time: the race is between the two moves of one offer
        offer = await offer_id(db, external_id)
        pair = await asyncio.gather(
            *(reassign(uow, offer, because=MoveReason.OUT_OF_OFFICE, reason="away") for _ in "ab")
        )

        assert sorted(isinstance(r, Move) for r in pair) == [False, True], pair
        statuses = [o.status for o in await offers_of(db, external_id)]
        assert statuses == ["reassigned", "offered"]
        kinds = [e.kind for e in await audit_of(db, external_id)]
        assert kinds.count("reassigned") == 1
    counts = await stored_open_counts(db)
    assert sum(counts.values()) == len(ids)
    assert counts == await open_offers_by_rep(db)
