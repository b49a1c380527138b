"""What the watchdog's sweep does for each thing a lost transaction left half done (a card given
up but its lead not moved on, an escalation lost, a rep out but their leads not moved): each is
finished in a transaction of its own, and one that fails is logged and left for the next sweep
while the others go on."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

log = logging.getLogger("bot.service")

Stranded = TypeVar("Stranded")
Done = TypeVar("Done")


async def finish_each(
    stranded: Iterable[Stranded],
    finish: Callable[[Stranded], Awaitable[Done | None]],
    *,
    failed: Callable[[Stranded], str],
    finished: Callable[[Stranded, Done], str],
) -> int:
    """`finish` each of `stranded`, alone; how many it finished (None from it: nothing was
    left to do, another replica or the first try having done it). Logs `failed(thing)` with the
    error when one fails, and `finished(thing, result)` as a warning when one is finished."""
    count = 0
    for thing in stranded:
        try:
            result = await finish(thing)
        except Exception:
            log.exception("%s", failed(thing))
            continue
        if result is None:
            continue
        log.warning("%s", finished(thing, result))
        count += 1
    return count
