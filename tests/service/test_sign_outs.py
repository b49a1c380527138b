"""Dashboard sessions signed out, as every replica looks them up: one session by its id, or every
session of someone signed in before they signed out everywhere (by generation, not by time)."""

from __future__ import annotations

from datetime import timedelta

from bot.service.sign_outs import (
    generation_to_sign_in,
    sign_out,
    sign_out_everywhere,
    signed_out,
)
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy
from storage.db import Database
from tests.service.conftest import Clock

SESSION = timedelta(hours=12)
MARIA = "manager:maria"


async def test_a_session_signed_out_stays_so_and_no_other_session_is(
    db: Database, policy: Policy, clock: Clock
) -> None:
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    issued = clock() - timedelta(hours=1)
    await sign_out(uow, session_id="a" * 22, expires_at=issued + SESSION, now=clock())
    await sign_out(uow, session_id="a" * 22, expires_at=issued + SESSION, now=clock())  # again

    assert await signed_out(uow, session_id="a" * 22, who=MARIA, generation=0)
    assert not await signed_out(uow, session_id="b" * 22, who=MARIA, generation=0)


async def test_signing_out_everywhere_ends_the_sessions_signed_in_before_it_and_none_after(
    db: Database, policy: Policy, clock: Clock
) -> None:
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    before = await generation_to_sign_in(uow, who=MARIA)
    mos = await generation_to_sign_in(uow, who="manager:mo")

    assert await sign_out_everywhere(uow, who=MARIA, session_id="a" * 22, generation=before)
    since = await generation_to_sign_in(uow, who=MARIA)  # signed in after it

    assert await signed_out(uow, session_id="a" * 22, who=MARIA, generation=before)
    assert await signed_out(uow, session_id="b" * 22, who=MARIA, generation=before)
    assert not await signed_out(uow, session_id="c" * 22, who=MARIA, generation=since)
    assert not await signed_out(uow, session_id="m" * 22, who="manager:mo", generation=mos)

    assert await sign_out_everywhere(uow, who=MARIA, session_id="c" * 22, generation=since)
    assert await signed_out(uow, session_id="c" * 22, who=MARIA, generation=since)
    latest = await generation_to_sign_in(uow, who=MARIA)
    assert not await signed_out(uow, session_id="e" * 22, who=MARIA, generation=latest)


async def test_a_sign_out_everywhere_from_a_session_another_one_ended_meanwhile_ends_nothing(
    db: Database, policy: Policy, clock: Clock
) -> None:
    """Two of Maria's browsers sign out everywhere at once: the one whose session the other
    ended first (found still let in a moment before) moves nothing on, so that a session Maria
    signs in with after the first is not ended by the second."""
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    both = await generation_to_sign_in(uow, who=MARIA)
    assert await sign_out_everywhere(uow, who=MARIA, session_id="a" * 22, generation=both)
    new = await generation_to_sign_in(uow, who=MARIA)

    assert not await sign_out_everywhere(uow, who=MARIA, session_id="b" * 22, generation=both)

    assert not await signed_out(uow, session_id="n" * 22, who=MARIA, generation=new)


async def test_a_session_already_signed_out_cannot_sign_its_holder_out_everywhere(
    db: Database, policy: Policy, clock: Clock
) -> None:
    """A copy of an ended session (a stolen cookie) would otherwise end its holder's new ones."""
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    generation = await generation_to_sign_in(uow, who=MARIA)
    stolen = clock() - timedelta(hours=2)
    await sign_out(uow, session_id="s" * 22, expires_at=stolen + SESSION, now=clock())

    ended_all = await sign_out_everywhere(
        uow, who=MARIA, session_id="s" * 22, generation=generation
    )

    assert not ended_all
    assert not await signed_out(uow, session_id="n" * 22, who=MARIA, generation=generation)
