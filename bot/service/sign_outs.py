"""Signing out of the dashboard, for every replica: a session signed out is recorded, and every
request's session is looked up (one read by primary key) before it is let in.

The dashboard's session cookie is signed, not stored: clearing it in the browser that signed out
leaves any copy of it valid until it expires. So each session carries an id, and signing out
records that id (its digest) until the session's own expiry; retention deletes the rows once the
sessions they end have expired (`bot.service.retention`).

Signing out everywhere asks no clock. Each person (`manager:<id>`, or `token` for every token
session) has a session generation in the database, 0 until they first sign out everywhere; a
session carries the generation read when it was signed in, and lets in only while that is still
the current one. Signing out everywhere moves it on, so it ends exactly the sessions signed in
before it, in the database's order, whichever replica signed them in and however its clock is
set. A session cookie from before generations (revision 0019) is of generation 0.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from bot.service.unit_of_work import UnitOfWork
from storage import repository as repo


async def sign_out(
    uow: UnitOfWork, *, session_id: str, expires_at: datetime, now: datetime
) -> None:
    """End the session `session_id`, which would last until `expires_at`."""
    key = _session(session_id)
    await uow.write(
        lambda tx: repo.record_sign_out(session=tx.session, key=key, at=now, expires_at=expires_at),
        quick=True,
    )


async def generation_to_sign_in(uow: UnitOfWork, *, who: str) -> int:
    """The generation a session of `who` signed in now carries."""
    async with uow.reading() as session:
        return await repo.session_generation(session=session, who=who)


async def sign_out_everywhere(
    uow: UnitOfWork, *, who: str, session_id: str, generation: int
) -> bool:
    """End every session of `who` signed in until now, asked from their session `session_id` (of
    `generation`). False, ending nothing, when that session was signed out already, or ended
    by another sign-out everywhere meanwhile: a copy of a session already ended cannot sign its
    holder out of the others."""
    if await signed_out(uow, session_id=session_id, who=who, generation=generation):
        return False
    return await uow.write(
        lambda tx: repo.next_generation(session=tx.session, who=who, current=generation),
        quick=True,
    )


async def signed_out(uow: UnitOfWork, *, session_id: str, who: str, generation: int) -> bool:
    """Whether the session `session_id` of `who`, signed in at `generation`, was signed out."""
    async with uow.reading() as session:
        ended, current = await repo.sign_out_of(session=session, key=_session(session_id), who=who)
    return ended or generation != current


def _session(session_id: str) -> str:
    # Its digest, not the id: neither the table nor a log of the statements (aiosqlite's, at
    # DEBUG) holds the id a cookie carries.
    return f"session:{hashlib.sha256(session_id.encode()).hexdigest()}"
