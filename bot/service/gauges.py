"""How the work stands, as `/metrics` shows it: read from the database, so it is right whichever
replica did the work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.service.unit_of_work import UnitOfWork
from storage import repository as repo


@dataclass(frozen=True, slots=True)
class Backlogs:
    open_offers: int  # offered to a rep or claimed, and not yet closed
    outbox_depth: int  # side effects still to carry out
    unmatched: int  # leads waiting in a queue for a manager
    unmatched_since: datetime | None  # when the one waiting longest arrived


async def backlogs(uow: UnitOfWork) -> Backlogs:
    async with uow.reading() as session:
        open_offers = await repo.count_open_offers(session=session)
        depth = await repo.outbox_depth(session=session)
        waiting, oldest = await repo.unmatched_queue(session=session)
    return Backlogs(open_offers, depth, waiting, oldest)
