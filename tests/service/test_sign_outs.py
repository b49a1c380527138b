"""Dashboard sessions signed out, as every replica looks them up: one session by its id, or every
session of someone issued until they signed out everywhere."""

from __future__ import annotations

from datetime import timedelta

from bot.service.sign_outs import sign_out, sign_out_everywhere, signed_out
from bot.service.unit_of_work import UnitOfWork
from routing.policy import Policy
from storage import repository as repo
from storage.db import Database
from tests.service.conftest import Clock

SESSION = timedelta(hours=12)


async def test_a_session_signed_out_stays_so_and_no_other_session_is(
    db: Database, policy: Policy, clock: Clock
) -> None:
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    issued = clock() - timedelta(hours=1)
    await sign_out(uow, session_id="a" * 22, expires_at=issued + SESSION, now=clock())
    await sign_out(uow, session_id="a" * 22, expires_at=issued + SESSION, now=clock())  # again

    assert await signed_out(uow, session_id="a" * 22, who="manager:maria", issued_at=issued)
    assert not await signed_out(uow, session_id="b" * 22, who="manager:maria", issued_at=issued)


async def test_signing_out_everywhere_again_ends_the_sessions_signed_in_since(
    db: Database, policy: Policy, clock: Clock
) -> None:
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    first = clock()
    assert await sign_out_everywhere(
        uow,
        who="manager:maria",
        session_id="a" * 22,
        issued_at=first - timedelta(hours=1),
        now=first,
        expires_at=first + SESSION,
    )
    clock.advance(minutes=5)
    since = clock()  # a session signed in after the first sign-out everywhere
    assert not await signed_out(uow, session_id="c" * 22, who="manager:maria", issued_at=since)
    assert await signed_out(
        uow, session_id="d" * 22, who="manager:maria", issued_at=first - timedelta(seconds=1)
    )
    clock.advance(minutes=5)

    assert await sign_out_everywhere(
        uow,
        who="manager:maria",
        session_id="c" * 22,
        issued_at=since,
        now=clock(),
        expires_at=clock() + SESSION,
    )
    # An older sign-out everywhere recorded late (a slower replica, which found its session
    # still let in before this one was recorded) moves nothing back.
    await uow.write(
        lambda tx: repo.record_sign_out(
            session=tx.session,
            key="everywhere:manager:maria",
            at=first,
            expires_at=first + SESSION,
        )
    )

    assert await signed_out(uow, session_id="c" * 22, who="manager:maria", issued_at=since)
    later = clock() + timedelta(seconds=1)
    assert not await signed_out(uow, session_id="e" * 22, who="manager:maria", issued_at=later)
    assert not await signed_out(uow, session_id="c" * 22, who="manager:mo", issued_at=since)


async def test_a_session_already_signed_out_cannot_sign_its_holder_out_everywhere(
    db: Database, policy: Policy, clock: Clock
) -> None:
    """A copy of an ended session (a stolen cookie) would otherwise end its holder's new ones."""
    uow = UnitOfWork(db=db, policy=lambda: policy, clock=clock)
    stolen = clock() - timedelta(hours=2)
    await sign_out(uow, session_id="s" * 22, expires_at=stolen + SESSION, now=clock())
    clock.advance(minutes=5)
    current = clock()  # the holder signed in again

    ended_all = await sign_out_everywhere(
        uow,
        who="manager:maria",
        session_id="s" * 22,
        issued_at=stolen,
        now=clock(),
        expires_at=clock() + SESSION,
    )

    assert not ended_all
    assert not await signed_out(uow, session_id="n" * 22, who="manager:maria", issued_at=current)
