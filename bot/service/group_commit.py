"""Group commit: new leads that arrive while a routing transaction is under way wait for it to
end and are then routed together, in arrival order, in the next one.

A routing transaction costs about the same for one lead or fifty (it is mostly round trips to the
database), so under load each lead waits at most about one transaction instead of queueing
behind every earlier one. One lead must not fail the others: when a group fails, each of its
leads is routed again on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from bot.service.errors import ServiceError
from bot.service.views import IntakeResult
from routing.model import Lead

GROUP_COMMIT_MAX = 200  # leads routed in one group-commit transaction at most

RouteMany = Callable[[Sequence[Lead]], Awaitable[list[IntakeResult]]]


class GroupCommit:
    """The leads waiting for the next group, and the task that routes them (`committer`)."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Lead, asyncio.Future[IntakeResult]]] = []
        self.committer: asyncio.Task[None] | None = None

    async def join(self, lead: Lead, route_many: RouteMany) -> IntakeResult:
        """`lead`'s result, once the group it joins is routed by `route_many` (one transaction
        for the whole group; every caller passes the same)."""
        future: asyncio.Future[IntakeResult] = asyncio.get_running_loop().create_future()
        self.waiting.append((lead, future))
        if self.committer is None or self.committer.done():
            self.committer = asyncio.create_task(self._commit_waiting(route_many))
            # Also when it is cancelled before it ever ran (its own handler never starts). Only
            # then: after a normal end, leads queued meanwhile belong to the next committer.
            self.committer.add_done_callback(self._fail_if_cancelled)
        return await asyncio.shield(future)

    async def aclose(self) -> None:
        """Let the leads already waiting be routed, then stop."""
        if self.committer is not None and not self.committer.done():
            await self.committer

    async def _commit_waiting(self, route_many: RouteMany) -> None:
        group: list[tuple[Lead, asyncio.Future[IntakeResult]]] = []
        try:
            while self.waiting:
                group = self.waiting[:GROUP_COMMIT_MAX]
                self.waiting = self.waiting[GROUP_COMMIT_MAX:]
                try:
                    results = await route_many([lead for lead, _ in group])
                except Exception:
                    for lead, future in group:
                        try:
                            _settle(future, (await route_many([lead]))[0])
                        except Exception as exc:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for (_lead, future), result in zip(group, results, strict=True):
                    _settle(future, result)
        except BaseException:
            # Cancelled (shutdown) or failed outright: nobody may wait for an answer forever.
            self.waiting = [*group, *self.waiting]
            self._fail_waiting()
            raise

    def _fail_if_cancelled(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            self._fail_waiting()

    def _fail_waiting(self) -> None:
        stranded, self.waiting = self.waiting, []
        for _lead, future in stranded:
            if not future.done():
                future.set_exception(ServiceError("leadrouter is shutting down; send it again"))


def _settle(future: asyncio.Future[IntakeResult], result: IntakeResult) -> None:
    if not future.done():  # a caller that went away (cancelled) no longer waits for it
        future.set_result(result)
