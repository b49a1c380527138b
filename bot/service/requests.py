"""Requests Slack sends again (retries of events, repeated actions) are acted on once: each
request's key is remembered, across restarts and replicas."""

from __future__ import annotations

from bot.service.unit_of_work import UnitOfWork
from storage import repository as repo


async def first_time(uow: UnitOfWork, key: str) -> bool:
    """Remember a request's key; False if it was already seen (Slack retried it)."""
    at = uow.clock()
    return await uow.write(lambda tx: repo.remember_request(session=tx.session, key=key, at=at))
