"""What the watchdog's sweep finishes of what a lost transaction left half done. Each of these
is a second step that runs in a transaction of its own after a first one committed, and that a
crash or a database gone for a moment can lose between the two:

- a rep marked out: their absence is recorded, then each lead they held is moved on
  (`availability.set_out_of_office`). Lost, the leads would sit with a rep who is out, seen by
  nobody, until their SLA charged the rep a miss (the SLA part of the sweep passes such offers
  over);
- a card Slack would not take: its outbox item is given up, then the lead moved on
  (`offers.card_undeliverable`). Lost, the lead would sit with a rep who never saw it, with no
  SLA to run out;
- a queue post or a manager's DM given up: then the managers are told instead (`escalations`).
  Lost, nobody would hear of it.

Each sweep looks, in one quick transaction, for what was left a while ago (a grace each, so that
the first try has its turn) and finishes each the way the first try would have, alone: one that
fails is logged and left for the next sweep while the others go on. Finishing is a
compare-and-set each time (an offer still offered, an item not yet escalated), so a late first
try, or two replicas sweeping at once, do it once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from bot.service.escalations import ESCALATED_KINDS, GIVEN_UP_GRACE, escalate
from bot.service.offers import card_undeliverable, reassign
from bot.service.outbox_items import OFFER_CARD_KEY
from bot.service.unit_of_work import Transaction, UnitOfWork
from bot.service.views import SweepResult
from storage import repository as repo
from storage.models import MoveReason, OutboxRow

log = logging.getLogger("bot.service")

ABSENCE_GRACE = timedelta(minutes=1)  # after the absence is recorded
CARD_GIVEN_UP_GRACE = timedelta(minutes=1)  # after the card's item is given up

Stranded = TypeVar("Stranded")
Done = TypeVar("Done")


@dataclass(frozen=True, slots=True)
class Lost:
    """What the sweep found half done: offers of reps out, offers of cards given up (with why),
    and given-up outbox items to escalate."""

    of_absent: list[int]
    of_cards: list[tuple[int, str]]
    items: Sequence[OutboxRow]


async def finish_what_was_lost(uow: UnitOfWork, batch: int) -> SweepResult:
    """Find what was left half done (up to `batch` of each kind) and finish it: how many leads
    of reps out were moved on, of cards given up, and how many given-up posts were escalated."""
    now = uow.clock()

    def look(tx: Transaction) -> Lost:
        session = tx.session
        return Lost(
            of_absent=repo.offers_of_absent_reps(
                session=session, marked_before=now - ABSENCE_GRACE, now=now, limit=batch
            ),
            of_cards=repo.offers_with_cards_given_up(
                session=session,
                card_key_prefix=OFFER_CARD_KEY,
                given_up_before=now - CARD_GIVEN_UP_GRACE,
                limit=batch,
            ),
            items=repo.given_up_not_escalated(
                session=session,
                kinds=ESCALATED_KINDS,
                given_up_before=now - GIVEN_UP_GRACE,
                limit=batch,
            ),
        )

    # The three look-ups in one quick transaction, though it writes nothing: the sweep runs
    # every minute, and on SQLite a reading session (aiosqlite's thread, a hand-over per step
    # of each statement) cost ten times the indexed look-ups in it; a quick transaction runs
    # on the event loop's thread, holding SQLite's write lock for a fraction of a millisecond.
    lost = await uow.write(look, quick=True)
    of_absent, of_cards, items = lost.of_absent, lost.of_cards, lost.items
    out_of_office = await finish_each(
        of_absent,
        lambda offer_id: reassign(
            uow,
            offer_id,
            because=MoveReason.OUT_OF_OFFICE,
            reason="out of office",
            kind="rep_out_of_office",
        ),
        failed=lambda offer_id: (
            f"offer {offer_id}: its rep is out of office; moving the lead on failed"
        ),
        finished=lambda offer_id, _: (
            f"offer {offer_id}: its rep is out of office and the lead had not moved on; moved"
        ),
    )
    undelivered = await finish_each(
        of_cards,
        lambda offer: card_undeliverable(uow, offer[0], offer[1]),
        failed=lambda offer: f"offer {offer[0]}: its card was given up; moving the lead on failed",
        finished=lambda offer, _: (
            f"offer {offer[0]}: its card was given up and the lead had not moved on; moved"
        ),
    )
    escalated = await finish_each(
        items,
        lambda item: escalate(uow, item, item.last_error or ""),
        failed=lambda item: (
            f"outbox: item {item.id} ({item.kind}) was given up; escalating it failed"
        ),
        finished=lambda item, told: (
            f"outbox: item {item.id} ({item.kind}) was given up and its escalation lost; "
            f"done ({told} told)"
        ),
    )
    return SweepResult(out_of_office=out_of_office, undelivered=undelivered, escalated=escalated)


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
