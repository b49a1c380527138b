"""Policy versions in the service layer: activated once per text, refused with its problems and
the managers told once, listed and found by the start of their hash; every decision records the
version that made it; rotations, loads and absences carry over to a new version by rep and team
id; a rep the new version no longer has loses their open offers to the others."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.live_policy import LivePolicy
from bot.service.availability import set_out_of_office
from bot.service.intake import intake
from bot.service.kinds import REP_LEFT_POLICY, OutboxKind
from bot.service.offers import claim, reject
from bot.service.policies import (
    Activation,
    UnknownVersion,
    activate_policy,
    active_version,
    find_policy_version,
    move_from_departed,
    policy_history,
    refuse_policy,
)
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy, PolicyError, parse_policy
from routing.policy_version import short_version, version_of
from storage.db import Database
from storage.models import DecisionRow, LeadRow, OutboxRow, PolicyActivationRow
from tests.service.conftest import Clock
from tests.service.support import TRIO_POLICY, audit_of, new_lead, offers_of, stored_open_counts

BAD_POLICY = TRIO_POLICY.replace("members: [ann, ben, cat]", "members: [ann, ben, zed]")
# The trio without cat: a rep who leaves the policy.
DUO_POLICY = TRIO_POLICY.replace("  - {id: cat, name: Cat Cole}\n", "").replace(
    "members: [ann, ben, cat]", "members: [ann, ben]"
)


@pytest.fixture
def policy() -> Policy:
    return parse_policy(TRIO_POLICY, source="routing.yml")


@pytest.fixture
def live(policy: Policy) -> LivePolicy:
    return LivePolicy(policy)


@pytest.fixture
def uow(db: Database, live: LivePolicy, clock: Clock) -> UnitOfWork:
    return UnitOfWork(db=db, policy=live.current, clock=clock)


async def activate(uow: UnitOfWork, text: str, *, by: str = "alice") -> Policy:
    activated = await activate_policy(
        uow, text, source="routing.yml", how=Activation.COMMAND, by=by
    )
    return activated.policy


async def activations(db: Database) -> list[PolicyActivationRow]:
    async with db.reading() as session:
        rows = await session.execute(select(PolicyActivationRow).order_by(PolicyActivationRow.id))
        return list(rows.scalars())


async def decisions_of(db: Database, external_id: str) -> list[DecisionRow]:
    async with db.reading() as session:
        rows = await session.execute(
            select(DecisionRow)
            .join(LeadRow, col(LeadRow.id) == col(DecisionRow.lead_id))
            .where(col(LeadRow.external_id) == external_id)
            .order_by(col(DecisionRow.id))
        )
        return list(rows.scalars())


async def lead_version(db: Database, external_id: str) -> str | None:
    async with db.reading() as session:
        row = (
            await session.execute(select(LeadRow).where(col(LeadRow.external_id) == external_id))
        ).scalar_one()
        return row.policy_version


# --- versions ------------------------------------------------------------------------------------


def test_a_policys_version_is_the_hash_of_its_text_and_any_change_is_another() -> None:
    policy = parse_policy(TRIO_POLICY)
    assert policy.version == version_of(TRIO_POLICY) and len(policy.version) == 64
    assert parse_policy(TRIO_POLICY + "# a comment\n").version != policy.version
    assert short_version(policy.version) == policy.version[:12]
    assert short_version(None) == "unversioned"


async def test_activating_a_policy_keeps_its_text_and_makes_it_the_active_version(
    db: Database, uow: UnitOfWork, clock: Clock
) -> None:
    assert await active_version(uow) is None

    first = await activate_policy(
        uow, TRIO_POLICY, source="routing.yml", how=Activation.COMMAND, by="alice"
    )
    again = await activate_policy(
        uow, TRIO_POLICY, source="routing.yml", how=Activation.START, by="host:1"
    )

    assert (first.activated, first.previous) == (True, None)
    assert (again.activated, again.previous) == (False, first.policy.version)
    assert await active_version(uow) == version_of(TRIO_POLICY)
    (row,) = await activations(db)
    assert (row.version, row.how, row.by, row.at) == (
        version_of(TRIO_POLICY),
        "leadrouter policy activate",
        "alice",
        clock.now,
    )
    stored = await find_policy_version(uow, version_of(TRIO_POLICY)[:6])
    assert (stored.text, stored.source) == (TRIO_POLICY, "routing.yml")


async def test_a_policy_that_fails_its_checks_is_refused_and_nothing_changes(
    db: Database, uow: UnitOfWork
) -> None:
    await activate(uow, TRIO_POLICY)

    with pytest.raises(PolicyError) as refused:
        await activate(uow, BAD_POLICY)

    assert "`zed` is not a rep defined under reps" in refused.value.report()
    assert await active_version(uow) == version_of(TRIO_POLICY)
    with pytest.raises(UnknownVersion):
        await find_policy_version(uow, version_of(BAD_POLICY)[:12])


async def test_the_managers_hear_of_a_refused_policy_once_however_many_replicas_refuse_it(
    db: Database, uow: UnitOfWork, policy: Policy
) -> None:
    try:
        parse_policy(BAD_POLICY, source="routing.yml")
    except PolicyError as exc:
        error = exc

    told = [await refuse_policy(uow, error, BAD_POLICY, serving=policy) for _ in range(3)]

    assert told == [1, 0, 0]  # one manager in the trio's policy: mia
    async with db.reading() as session:
        (item,) = (await session.execute(select(OutboxRow))).scalars().all()
    assert item.kind == OutboxKind.POLICY_REFUSED
    assert item.payload["manager"] == "mia"
    assert item.payload["version"] == version_of(BAD_POLICY)
    assert item.payload["serving"] == policy.version
    assert "routing.yml:" in item.payload["problems"] and "`zed`" in item.payload["problems"]


async def test_history_lists_activations_newest_first_and_marks_the_active_one(
    uow: UnitOfWork, clock: Clock
) -> None:
    await activate(uow, TRIO_POLICY, by="alice")
    clock.advance(hours=1)
    await activate(uow, DUO_POLICY, by="bob")
    clock.advance(hours=1)
    await activate(uow, TRIO_POLICY, by="carol")  # going back is one more activation

    history = await policy_history(uow)

    assert [(a.version, a.by, a.active) for a in history] == [
        (version_of(TRIO_POLICY), "carol", True),
        (version_of(DUO_POLICY), "bob", False),
        (version_of(TRIO_POLICY), "alice", False),
    ]
    assert [a.at for a in history] == [clock.now - timedelta(hours=h) for h in (0, 1, 2)]
    stored = await find_policy_version(uow, version_of(TRIO_POLICY))
    assert [a.by for a in stored.activations] == ["carol", "alice"]
    assert stored.activations[0].active


async def test_history_names_the_file_each_activation_read_not_the_versions_first(
    uow: UnitOfWork, clock: Clock
) -> None:
    await activate_policy(uow, TRIO_POLICY, source="trio.yml", how=Activation.COMMAND, by="a")
    clock.advance(hours=1)
    await activate_policy(uow, DUO_POLICY, source="duo.yml", how=Activation.COMMAND, by="b")
    clock.advance(hours=1)
    # A rollback from a copy of the first file: the same version, read from another file.
    await activate_policy(uow, TRIO_POLICY, source="rb.yml", how=Activation.COMMAND, by="c")

    history = await policy_history(uow)

    assert [a.source for a in history] == ["rb.yml", "duo.yml", "trio.yml"]
    stored = await find_policy_version(uow, version_of(TRIO_POLICY))
    assert stored.source == "trio.yml"  # the version itself: where it was first read


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [("ab", "at least 4"), ("xyz1", "at least 4"), ("0000", "no stored policy version")],
)
async def test_a_version_is_found_by_at_least_four_hex_digits_of_its_hash(
    uow: UnitOfWork, prefix: str, problem: str
) -> None:
    await activate(uow, TRIO_POLICY)
    if version_of(TRIO_POLICY).startswith(prefix):
        pytest.skip("the hash happens to start so")
    with pytest.raises(UnknownVersion, match=problem):
        await find_policy_version(uow, prefix)


async def test_a_prefix_of_two_versions_asks_for_more_digits(uow: UnitOfWork) -> None:
    # Two texts whose hashes share their first four digits, found by trying comments.
    first = version_of(TRIO_POLICY)
    other = next(
        text
        for n in range(1_000_000)
        if version_of(text := f"{TRIO_POLICY}# {n}\n")[:4] == first[:4]
    )
    await activate(uow, TRIO_POLICY)
    await activate(uow, other)
    with pytest.raises(UnknownVersion, match="the start of 2 versions"):
        await find_policy_version(uow, first[:4])
    assert (await find_policy_version(uow, first[:12])).version == first


async def test_replicas_activating_the_same_file_at_once_activate_it_once(
    db: Database, uow: UnitOfWork
) -> None:
    await activate(uow, TRIO_POLICY)

    results = await asyncio.gather(
        *(
            activate_policy(uow, DUO_POLICY, source="routing.yml", how=Activation.FILE, by=f"r{n}")
            for n in range(4)
        )
    )

    assert sum(result.activated for result in results) == 1
    assert [row.version for row in await activations(db)] == [
        version_of(TRIO_POLICY),
        version_of(DUO_POLICY),
    ]


# --- every decision records its version ---------------------------------------------------------


async def test_each_decision_and_its_lead_record_the_version_that_made_them(
    db: Database, uow: UnitOfWork, live: LivePolicy
) -> None:
    await intake(uow, new_lead("L-1"))  # to ann
    before = live.current().version

    live.switch(parse_policy(DUO_POLICY))
    await reject(uow, "L-1", by="ann", reason="not mine")
    await intake(uow, new_lead("L-2"))

    first, again = await decisions_of(db, "L-1")
    assert (first.policy_version, again.policy_version) == (before, version_of(DUO_POLICY))
    assert await lead_version(db, "L-1") == version_of(DUO_POLICY)
    assert await lead_version(db, "L-2") == version_of(DUO_POLICY)
    routed, _rejected, rerouted = await audit_of(db, "L-1")
    assert routed.data["policy_version"] == before
    assert rerouted.data["policy_version"] == version_of(DUO_POLICY)


async def test_a_policy_built_by_hand_records_no_version(db: Database, clock: Clock) -> None:
    unversioned = replace(parse_policy(TRIO_POLICY), version="")
    uow = UnitOfWork(db=db, policy=lambda: unversioned, clock=clock)
    await intake(uow, new_lead("L-1"))
    assert [d.policy_version for d in await decisions_of(db, "L-1")] == [None]
    assert await lead_version(db, "L-1") is None


# --- what carries over to a new version ----------------------------------------------------------


async def test_a_teams_rotation_goes_on_from_its_last_rep_when_its_members_change(
    uow: UnitOfWork, live: LivePolicy
) -> None:
    reps = [(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(2)]
    assert reps == ["ann", "ben"]

    # dot joins after ben: the rotation, kept by rep id, goes on from ben to dot.
    live.switch(
        parse_policy(
            TRIO_POLICY.replace("members: [ann, ben, cat]", "members: [ann, ben, dot, cat]")
        )
    )
    after = [(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(2, 6)]

    assert after == ["dot", "cat", "ann", "ben"]


async def test_open_loads_carry_over_to_a_version_that_caps_them(
    uow: UnitOfWork, live: LivePolicy
) -> None:
    for n in range(3):
        await intake(uow, new_lead(f"L-{n}"))  # one each

    capped = TRIO_POLICY.replace(
        "{id: ann, name: Ann Archer}", "{id: ann, name: Ann Archer, capacity: 1}"
    )
    live.switch(parse_policy(capped))
    after = [(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(3, 7)]

    assert "ann" not in after  # her one open lead, from before the change, fills her capacity


async def test_an_absence_carries_over_to_a_new_version(
    uow: UnitOfWork, live: LivePolicy, clock: Clock
) -> None:
    await set_out_of_office(uow, "ann", until=clock.now + timedelta(days=1), reason="offsite")

    live.switch(parse_policy(TRIO_POLICY + "# reviewed\n"))
    reps = {(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(6)}

    assert reps == {"ben", "cat"}


# --- a rep who leaves the policy -----------------------------------------------------------------


async def test_a_rep_who_left_the_policy_loses_their_open_offers_and_keeps_their_claimed_ones(
    db: Database, uow: UnitOfWork, live: LivePolicy
) -> None:
    reps = [(await intake(uow, new_lead(f"L-{n}"))).lead.rep for n in range(6)]
    assert reps == ["ann", "ben", "cat"] * 2
    await claim(uow, "L-2", by="cat")

    before = live.switch(parse_policy(DUO_POLICY))
    moves = await move_from_departed(uow, live.current(), before=before)

    assert [(m.lead_id, m.from_rep) for m in moves] == [("L-5", "cat")]
    assert moves[0].to.rep in {"ann", "ben"}
    assert [(o.rep_id, o.status) for o in await offers_of(db, "L-5")] == [
        ("cat", "reassigned"),
        (moves[0].to.rep, "offered"),
    ]
    assert [(o.rep_id, o.status) for o in await offers_of(db, "L-2")] == [("cat", "claimed")]
    moved = [a for a in await audit_of(db, "L-5") if a.kind == REP_LEFT_POLICY]
    assert [(a.reason, a.data["rep"]) for a in moved] == [
        (
            f"Cat Cole left the routing policy (version {short_version(version_of(DUO_POLICY))})",
            "cat",
        )
    ]
    assert (await stored_open_counts(db))["cat"] == 1  # the claimed lead
    assert await move_from_departed(uow, live.current()) == []  # nothing left to move
