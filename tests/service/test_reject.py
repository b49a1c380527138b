from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.policy_file import load_policy
from bot.service.errors import NotAllowed
from bot.service.intake import intake
from bot.service.offers import claim, reject
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy
from storage.db import Database
from tests.service.support import (
    TRIO,
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


async def test_a_rejected_lead_goes_to_someone_else_even_when_the_rotation_points_back(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    reps = [(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(3)]
    assert reps == ["ann", "ben", "cat"]  # so the rotation's next rep is ann again

    move = await reject(uow, "L-0", by="ann", reason="not my territory")

    assert move.lead_id == "L-0" and move.from_rep == "ann"
    assert move.to.status == "offered" and move.to.rep in {"ben", "cat"}
    offers = await offers_of(db, "L-0")
    assert [(o.rep_id, o.status) for o in offers] == [
        ("ann", "rejected"),
        (move.to.rep, "offered"),
    ]


async def test_a_second_reject_excludes_both_reps_and_a_third_leaves_the_lead_queued(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-0"))

    first = await reject(uow, "L-0", by="ann", reason="busy")
    assert first.to.rep is not None
    second = await reject(uow, "L-0", by=first.to.rep, reason="wrong product")
    third_rep = ({"ben", "cat"} - {first.to.rep}).pop()
    assert (second.from_rep, second.to.rep) == (first.to.rep, third_rep)
    last = await reject(uow, "L-0", by=third_rep, reason="not mine either")

    assert (last.to.status, last.to.rep) == ("queued", None)
    offers = await offers_of(db, "L-0")
    assert [(o.rep_id, o.status) for o in offers] == [
        ("ann", "rejected"),
        (first.to.rep, "rejected"),
        (third_rep, "rejected"),
    ]
    assert await stored_open_counts(db) == {}


async def test_rejecting_releases_the_reps_open_lead_and_audits_the_reason(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    for n in range(4):  # ann, ben, cat, ann
        await intake(uow, new_lead(f"L-{n}"))
    assert await stored_open_counts(db) == {"ann": 2, "ben": 1, "cat": 1}

    move = await reject(uow, "L-0", by="ann", reason="existing customer of a partner")

    counts = await stored_open_counts(db)
    assert counts["ann"] == 1
    assert sum(counts.values()) == 4
    assert counts == await open_offers_by_rep(db)
    rejected = [e for e in await audit_of(db, "L-0") if e.kind == "rejected"]
    assert len(rejected) == 1
    assert rejected[0].actor == "ann"
    assert rejected[0].reason == "existing customer of a partner"
    assert rejected[0].data["rep"] == "ann"
    rerouted = [e for e in await audit_of(db, "L-0") if e.kind == "rerouted"]
    assert [e.data["rep"] for e in rerouted] == [move.to.rep]


async def test_only_the_rep_holding_an_open_offer_can_reject_it(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    await intake(uow, new_lead("L-0"))
    for other in set(TRIO) - {"ann"} | {"mia"}:
        with pytest.raises(NotAllowed):
            await reject(uow, "L-0", by=other, reason="not mine")
    await claim(uow, "L-0", by="ann")
    with pytest.raises(NotAllowed):
        await reject(uow, "L-0", by="ann", reason="changed my mind")
    assert [(o.rep_id, o.status) for o in await offers_of(db, "L-0")] == [("ann", "claimed")]
