"""Replay: what a policy would have done with the leads of a window (`leadrouter replay`).

    summary = await replay(uow, candidate_policy, window, each=print_line)

It reads, and writes nothing: the accounts as intake matches leads against them, the state at the
window's start and the window's leads in the order they arrived (`storage.history`), all in one
read transaction, so a replay sees one moment of the database however long it runs. The leads are
routed by the pure core (`routing.replay`) under the policy given, not the one serving.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing

from bot.service.unit_of_work import UnitOfWork
from routing.accounts import AccountIndex
from routing.policy import Policy
from routing.replay import Replay, Replayed
from routing.replay_summary import ReplaySummary
from routing.report.window import Window
from storage import history
from storage import repository as repo


async def replay(
    uow: UnitOfWork,
    policy: Policy,
    window: Window,
    *,
    each: Callable[[Replayed], None] | None = None,
) -> ReplaySummary:
    """Re-route the leads that arrived in `window` under `policy`; `each` is told of every lead
    as it is replayed, in arrival order."""
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
