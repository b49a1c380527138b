"""Replay: what a policy would have done with the leads of a window (`leadrouter replay`).

    summary = await replay(uow, candidate_policy, window, each=print_line)

It reads, and writes nothing: the accounts as intake matches leads against them, the state at the
window's start and the window's leads in the order they arrived (`storage.history`), all in one
read transaction, so a replay sees one moment of the database however long it runs. The leads are
routed by the pure core (`routing.replay`) under the policy given, not the one serving.

A window of many leads, on a machine of two cores or more, is read and matched to accounts by a
second process while this one routes (`bot.service.replay_stage`); the result is the same.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager

from bot.service.replay_stage import ReadingStage
from bot.service.unit_of_work import UnitOfWork
from routing.accounts import AccountIndex
from routing.lookups_in_advance import Answers, unpack
from routing.policy import Policy
from routing.replay import Replay, Replayed, StoredLead
from routing.replay_summary import ReplaySummary
from routing.report.window import Window
from storage import history
from storage import repository as repo

# From this many leads a second process pays for its start (about a second) several times over.
TWO_CORES_FROM = 20_000


async def replay(
    uow: UnitOfWork,
    policy: Policy,
    window: Window,
    *,
    each: Callable[[Replayed], None] | None = None,
    two_cores: bool | None = None,
) -> ReplaySummary:
    """Re-route the leads that arrived in `window` under `policy`; `each` is told of every lead
    as it is replayed, in arrival order. `two_cores`: read in a second process (None: when the
    window is long, the machine has a second core and the database is not in this process's
    memory)."""
    if two_cores is None:
        two_cores = (
            _cores() > 1 and uow.db.shareable and (await _count(uow, window) >= TWO_CORES_FROM)
        )
    if two_cores:
        return await _replay_on_two_cores(uow, policy, window, each)
    summary = ReplaySummary()
    async with uow.reading() as session:
        accounts = await repo.all_accounts(session=session)
        opening = await history.opening(session=session, since=window.since, until=window.until)
        index = AccountIndex(accounts) if accounts else None
        run = Replay(policy, start=window.since, accounts=index, opening=opening)
        stored = history.stored_leads(session=session, since=window.since, until=window.until)
        async with aclosing(stored) as chunks:
            async for leads in chunks:
                for replayed in run.run(leads):
                    summary.add(replayed)
                    if each is not None:
                        each(replayed)
    return summary


async def _replay_on_two_cores(
    uow: UnitOfWork, policy: Policy, window: Window, each: Callable[[Replayed], None] | None
) -> ReplaySummary:
    summary = ReplaySummary()
    threshold = policy.fuzzy_threshold
    async with (
        ReadingStage(uow.db.url, window.since, window.until, threshold=threshold) as stage,
        uow.reading() as session,
    ):
        accounts = await repo.all_accounts(session=session)
        opening = await history.opening(session=session, since=window.since, until=window.until)
        by_id = {account.id: account for account in accounts}
        # Only for leads the second process did not match: built the first time one comes.
        answers = Answers(lambda: AccountIndex(accounts))
        run = Replay(
            policy, start=window.since, accounts=answers if accounts else None, opening=opening
        )
        stored = history.stored_leads(session=session, since=window.since, until=window.until)
        async with _read_ahead(stored) as chunks:
            async for leads in chunks:
                lookups = await stage.lookups_for([lead.lead.id for lead in leads])
                for at, lead in enumerate(leads):
                    packed = lookups[at] if lookups is not None else None
                    answers.next(unpack(packed, by_id) if packed is not None else None)
                    replayed = run.route(lead)
                    summary.add(replayed)
                    if each is not None:
                        each(replayed)
    return summary


# Chunks read ahead of the one being routed, while the lookups are waited for: up to 120,000
# leads, about 150 MB; the second process takes about 2 s to send its first lookups, in which
# this one reads a hundred thousand.
READ_AHEAD = 60


@asynccontextmanager
async def _read_ahead(
    stored: AsyncGenerator[list[StoredLead], None],
) -> AsyncIterator[AsyncIterator[list[StoredLead]]]:
    """`stored`'s chunks, read by a task of its own into a queue. The task runs whenever the
    router waits (at the start, for the second process's first lookups, about a second): the
    leads read meanwhile are not read later. An error of the reading is raised where the chunk
    it stopped would have come."""
    queue: asyncio.Queue[list[StoredLead] | Exception | None] = asyncio.Queue(maxsize=READ_AHEAD)

    async def read() -> None:
        try:
            async with aclosing(stored) as reading:
                async for leads in reading:
                    await queue.put(leads)
        except Exception as exc:
            await queue.put(exc)
        else:
            await queue.put(None)

    async def chunks() -> AsyncIterator[list[StoredLead]]:
        while (item := await queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    reader = asyncio.create_task(read())
    try:
        yield chunks()
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


def _cores() -> int:
    """The cores this process may run on (its affinity, where the system says), not the
    machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


async def _count(uow: UnitOfWork, window: Window) -> int:
    async with uow.reading() as session:
        return await history.count_leads(session=session, since=window.since, until=window.until)
