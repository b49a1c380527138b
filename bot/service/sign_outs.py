"""Signing out of the dashboard, for every replica: a session signed out is recorded, and every
request's session is looked up (one read by primary key) before it is let in.

The dashboard's session cookie is signed, not stored: clearing it in the browser that signed out
leaves any copy of it valid until it expires. So each session carries an id, and signing out
records that id (its digest) until the session's own expiry; signing out everywhere records the
person, and ends every session of theirs issued until then. Retention deletes the rows once the
sessions they end have expired (`bot.service.retention`).
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


async def sign_out_everywhere(
    uow: UnitOfWork,
    *,
    who: str,
    session_id: str,
    issued_at: datetime,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """End every session of `who` issued until `now`, asked from their session `session_id`
    (issued at `issued_at`); `expires_at` is when the last of those expires. False, ending
    nothing, when that session was signed out already: a copy of a session already ended
    cannot sign its holder out of the others."""
    if await signed_out(uow, session_id=session_id, who=who, issued_at=issued_at):
        return False
    key = _everywhere(who)
    await uow.write(
        lambda tx: repo.record_sign_out(session=tx.session, key=key, at=now, expires_at=expires_at),
        quick=True,
    )
    return True


async def signed_out(uow: UnitOfWork, *, session_id: str, who: str, issued_at: datetime) -> bool:
    """Whether the session `session_id` of `who`, issued at `issued_at`, was signed out."""
    session_key, everywhere_key = _session(session_id), _everywhere(who)
    async with uow.reading() as session:
        found = await repo.sign_outs(session=session, keys=(session_key, everywhere_key))
    everywhere_at = found.get(everywhere_key)
    return session_key in found or (everywhere_at is not None and issued_at <= everywhere_at)


def _session(session_id: str) -> str:
    # Its digest, not the id: neither the table nor a log of the statements (aiosqlite's, at
    # DEBUG) holds the id a cookie carries.
    return f"session:{hashlib.sha256(session_id.encode()).hexdigest()}"


def _everywhere(who: str) -> str:
    return f"everywhere:{who}"
