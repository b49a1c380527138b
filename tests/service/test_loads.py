from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bot.policy_file import load_policy
from bot.service.errors import NotAllowed
from bot.service.intake import intake
from bot.service.offers import claim, reassign, reject
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy
from storage.db import Database
from storage.models import MoveReason
from tests.service.support import (
    TRIO_POLICY,
    leads_out_of_step_with_their_offers,
    leads_with_several_open_offers,
    new_lead,
    offers_of,
    open_offers_by_rep,
    stored_open_counts,
    write_policy,
)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write_policy(tmp_path, TRIO_POLICY))


async def run_all(
    operations: list[Coroutine[Any, Any, Any]], rng: random.Random
) -> list[BaseException]:
    """Run the operations at once, in a shuffled order; the errors other than NotAllowed.

    NotAllowed is the right answer for an action that lost its race (a rep rejecting a lead that
    a concurrent reassignment already took away).
    """
    rng.shuffle(operations)
    results = await asyncio.gather(*operations, return_exceptions=True)
    return [r for r in results if isinstance(r, BaseException) and not isinstance(r, NotAllowed)]


async def assert_loads_agree(db: Database) -> None:
    assert await stored_open_counts(db) == await open_offers_by_rep(db)
    assert await leads_with_several_open_offers(db) == {}
    assert await leads_out_of_step_with_their_offers(db) == {}


async def test_open_counts_equal_open_offers_after_a_concurrent_mix_of_every_use_case(
    db: Database, make_uow: Callable[[Database], UnitOfWork]
) -> None:
    uow = make_uow(db)
    rng = random.Random(17)
    first = [f"L-{n}" for n in range(18)]
    assert await run_all([intake(uow, new_lead(i)) for i in first + first[:4]], rng) == []
    await assert_loads_agree(db)

    # Each lead gets one action, or two that race each other.
    operations: list[Coroutine[Any, Any, Any]] = []
    for n, external_id in enumerate(first):
        [offer] = await offers_of(db, external_id)
        assert offer.id is not None
        claiming = claim(uow, external_id, by=offer.rep_id)
        rejecting = reject(uow, external_id, by=offer.rep_id, reason="not mine")
        reassigning = reassign(uow, offer.id, because=MoveReason.OUT_OF_OFFICE, reason="away")
        manager_claiming = claim(uow, external_id, by="mia")
        pairs: list[list[Coroutine[Any, Any, Any]]] = [
            [claiming],
            [rejecting],
            [reassigning],
            [claiming, reassigning],
            [rejecting, manager_claiming],
            [rejecting, reassigning],
        ]
        chosen = pairs[n % len(pairs)]
        operations.extend(chosen)
        for unused in {*(claiming, rejecting, reassigning, manager_claiming)} - set(chosen):
            unused.close()
    operations.extend(intake(uow, new_lead(f"M-{n}")) for n in range(12))
    assert await run_all(operations, rng) == []
    await assert_loads_agree(db)

    # Whoever holds an open offer now turns it down, while more leads arrive.
    operations = []
    for external_id in first:
        latest = (await offers_of(db, external_id))[-1]
        if latest.status == "offered":
            operations.append(reject(uow, external_id, by=latest.rep_id, reason="busy"))
    operations.extend(intake(uow, new_lead(f"N-{n}")) for n in range(12))
    assert await run_all(operations, rng) == []
    await assert_loads_agree(db)
