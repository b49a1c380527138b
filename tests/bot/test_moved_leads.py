"""What the next rep, the team's channel and `/routing why` read of a lead that left a rep, through
the real card delivery against the fake Slack: why it moved, in words that blame nobody (not
"taken from Ann" for a rep who went out of office), and the note a rep who rejected it wrote on
the next rep's card alone, never in the team's channel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.bootstrap import App
from bot.reading import Viewer
from bot.service.availability import set_out_of_office
from bot.service.intake import intake
from bot.service.offers import card_undeliverable, reject
from bot.service.policies import move_from_departed
from bot.service.views import SweepResult
from bot.service.watchdog import sweep
from routing.leads import parse_lead
from routing.policy import parse_policy
from storage.db import Database
from storage.models import OfferRow
from tests.bot.conftest import Clock
from tests.bot.test_slack_blocks import rich_words
from tests.fakes.slack import FakeSlack

POLICY = """\
reps:
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: ben, name: Ben Baker, slack: UBEN}
managers:
  - {id: mia, name: Mia Moss, slack: UMIA}
teams:
  duo: {members: [ann, ben], distribution: round_robin, manager: mia, channel: CTEAM}
rules:
  - name: Everyone
    assign: {team: duo}
fallback: {queue: unmatched, channel: CQUEUE}
sla: {default: 10m}
"""
WITHOUT_ANN = POLICY.replace("  - {id: ann, name: Ann Archer, slack: UANN}\n", "").replace(
    "[ann, ben]", "[ben]"
)
MANAGER = Viewer(rep=None, manager="mia")
BEN = Viewer(rep="ben", manager=None)


@pytest.fixture
def slack_policy() -> str:
    return POLICY


async def deliver(app: App, clock: Clock) -> None:
    """Two rounds of card delivery, the clock moved on a little after each."""
    assert app.delivery is not None
    for _ in range(2):
        await app.delivery.deliver_due()
        clock.advance(seconds=30)


async def offers(db: Database) -> list[OfferRow]:
    async with db.reading() as session:
        return list((await session.execute(select(OfferRow).order_by(OfferRow.id))).scalars())


def posted(slack: FakeSlack, channel: str) -> list[str]:
    """The words of each card posted in `channel` (a DM: the rep's member id), oldest first."""
    return [
        "\n".join(rich_words(call.params["blocks"]))
        for call in slack.calls_to("chat.postMessage")
        if call.params["channel"] == channel
    ]


def updated(slack: FakeSlack, channel: str) -> list[str]:
    return [
        "\n".join(rich_words(call.params["blocks"]))
        for call in slack.calls_to("chat.update")
        if call.params["channel"] == channel
    ]


async def events(app: App, viewer: Viewer | None) -> list[str]:
    story = await app.reader.story("L-1", viewer)
    assert story is not None
    return [event.what for event in story.events]


async def first_lead_with_ann(app: App, slack: FakeSlack, clock: Clock) -> int:
    """L-1, offered to Ann, its card and the team's copy posted; the offer's id."""
    await intake(app.uow, parse_lead({"id": "L-1", "company": "Acme", "first_name": "Jo"}))
    await deliver(app, clock)
    (offer,) = await offers(app.uow.db)
    assert offer.rep_id == "ann" and offer.id is not None
    return offer.id


Move = Callable[[App, FakeSlack, int], Awaitable[Any]]


async def ann_goes_out(app: App, slack: FakeSlack, offer_id: int) -> None:
    await set_out_of_office(app.uow, "ann", until=None, reason="dentist")


async def mia_marks_ann_out(app: App, slack: FakeSlack, offer_id: int) -> None:
    await set_out_of_office(app.uow, "ann", until=None, reason="set by Mia Moss", by="mia")


async def ann_leaves_the_policy(app: App, slack: FakeSlack, offer_id: int) -> None:
    await move_from_departed(app.uow, parse_policy(WITHOUT_ANN), before=parse_policy(POLICY))


@pytest.mark.parametrize(
    ("move", "words"),
    [
        (ann_goes_out, "Ann Archer is out of office"),
        (mia_marks_ann_out, "Ann Archer is out of office"),
        (ann_leaves_the_policy, "moved from Ann Archer by a change of the routing policy"),
    ],
)
async def test_the_next_rep_the_team_and_why_read_why_a_lead_left_its_rep(
    app: App, slack: FakeSlack, clock: Clock, move: Move, words: str
) -> None:
    offer_id = await first_lead_with_ann(app, slack, clock)

    await move(app, slack, offer_id)
    await deliver(app, clock)

    (card,) = posted(slack, "UBEN")
    assert f"Reassigned to you: {words} · waiting 1m" in card
    _, copy = posted(slack, "CTEAM")
    assert f"Reassigned: {words} · waiting 1m" in copy
    for said in (card, copy):
        assert "taken from" not in said and "dentist" not in said and "Mia" not in said
    for viewer in (MANAGER, BEN, None):
        told = await events(app, viewer)
        assert any(event.startswith(f"Moved on: {words}") for event in told), told


async def test_a_card_slack_would_not_take_is_said_to_have_not_reached_the_rep(
    app: App, slack: FakeSlack, clock: Clock
) -> None:
    slack.deactivated_users.add("UANN")
    await intake(app.uow, parse_lead({"id": "L-1", "company": "Acme", "first_name": "Jo"}))
    await deliver(app, clock)
    await deliver(app, clock)

    first, second = await offers(app.uow.db)
    assert (first.rep_id, first.status, second.rep_id) == ("ann", "reassigned", "ben")
    (card,) = posted(slack, "UBEN")
    words = "the card could not reach Ann Archer in Slack"
    assert f"Reassigned to you: {words} · waiting" in card
    copy = posted(slack, "CTEAM")[-1]
    assert "New lead for <@UBEN>" in copy and f"Reassigned: {words} · waiting" in copy
    assert "deactivated" not in card + copy
    # A manager reads what to fix; the rep who has it now, why it came, no more.
    (manager,) = [e for e in await events(app, MANAGER) if e.startswith("Moved on")]
    assert manager.startswith(f"Moved on: {words} · ") and "UANN is deactivated or gone" in manager
    (rep,) = [e for e in await events(app, BEN) if e.startswith("Moved on")]
    assert rep == f"Moved on: {words}"


async def test_an_offer_moved_before_its_reason_was_kept_reads_as_it_did(
    app: App, slack: FakeSlack, clock: Clock
) -> None:
    await first_lead_with_ann(app, slack, clock)
    await set_out_of_office(app.uow, "ann", until=None, reason=None)
    # As a row from before migration 0018: no reason kept.
    await app.uow.db.run(
        lambda session: session.execute(update(OfferRow).values(moved_because=None))
    )

    await deliver(app, clock)

    (card,) = posted(slack, "UBEN")
    assert "Reassigned to you: taken from Ann Archer · waiting 1m" in card
    told = await events(app, MANAGER)
    assert "Moved: the rep went out of office (Ann Archer) · out of office" in told
    assert not any(event.startswith("Moved on") for event in told)


# --- the note of a rep who rejected the lead ------------------------------------------------------


async def test_a_rejecting_reps_note_reaches_the_next_rep_and_not_the_teams_channel(
    app: App, slack: FakeSlack, clock: Clock
) -> None:
    await first_lead_with_ann(app, slack, clock)

    note = "Wants a Spanish speaker, call after 3pm"
    await reject(app.uow, "L-1", by="ann", reason=f"Not my territory: {note}")
    await deliver(app, clock)

    (card,) = posted(slack, "UBEN")
    assert f"Reassigned to you: rejected by Ann Archer: Not my territory: {note} ·" in card
    _, copy = posted(slack, "CTEAM")
    assert "Reassigned: rejected by Ann Archer: Not my territory · waiting 1m" in copy
    (anns,) = updated(slack, "DANN")  # her own card, in her DM: her own words
    (teams,) = updated(slack, "CTEAM")
    assert note in anns
    assert "Rejected by <@UANN>: Not my territory · now with <@UBEN>" in teams
    for said in (copy, teams):
        assert "Spanish" not in said
    assert any(note in event for event in await events(app, MANAGER))  # RevOps read it


async def test_a_note_written_without_a_choice_stays_off_the_teams_channel_too(
    app: App, slack: FakeSlack, clock: Clock
) -> None:
    await first_lead_with_ann(app, slack, clock)

    await reject(app.uow, "L-1", by="ann", reason="Their CFO is my cousin")
    await deliver(app, clock)

    (card,) = posted(slack, "UBEN")
    assert "Reassigned to you: rejected by Ann Archer: Their CFO is my cousin ·" in card
    _, copy = posted(slack, "CTEAM")
    assert "Reassigned: rejected by Ann Archer · waiting 1m" in copy
    assert all("cousin" not in said for said in (copy, *updated(slack, "CTEAM")))


class Crash(Exception):
    pass


async def test_a_lead_left_with_a_rep_marked_out_by_a_lost_move_is_moved_on_by_the_sweep(
    app: App, slack: FakeSlack, clock: Clock
) -> None:
    await first_lead_with_ann(app, slack, clock)
    wake = app.uow.on_outbox

    def crash_after_commit() -> None:
        raise Crash  # the process dies once the absence is committed, before the lead moved

    app.uow.on_outbox = crash_after_commit
    with pytest.raises(Crash):
        await set_out_of_office(app.uow, "ann", until=None, reason="set by Mia Moss", by="mia")
    app.uow.on_outbox = wake
    await deliver(app, clock)
    assert posted(slack, "UBEN") == []  # Ann's DM waits for her lead to move: it has not

    clock.advance(minutes=1)
    assert await sweep(app.uow) == SweepResult(out_of_office=1)
    await deliver(app, clock)

    (card,) = posted(slack, "UBEN")
    assert "Reassigned to you: Ann Archer is out of office · waiting 3m" in card
    _, copy = posted(slack, "CTEAM")
    assert "Reassigned: Ann Archer is out of office · waiting 3m" in copy
    (told,) = [m for m in posted(slack, "UANN") if "marked you" in m]
    assert "Acme" in told  # where her lead went, now that it has moved
    assert not any(event.startswith("Missed") for event in await events(app, MANAGER))


# --- the card of the rep the lead left ----------------------------------------------------------


@pytest.mark.parametrize(
    ("move", "to_ann", "to_team"),
    [
        (
            ann_goes_out,
            "Moved to <@UBEN> while you are out of office",
            "Moved to <@UBEN> while <@UANN> is out of office",
        ),
        (
            mia_marks_ann_out,
            "Moved to <@UBEN> while you are out of office",
            "Moved to <@UBEN> while <@UANN> is out of office",
        ),
        (
            ann_leaves_the_policy,
            "Moved to <@UBEN> after a change of the routing policy",
            "Moved to <@UBEN> after a change of the routing policy",
        ),
    ],
)
async def test_the_card_of_the_rep_a_lead_left_says_why_it_moved_in_their_words(
    app: App, slack: FakeSlack, clock: Clock, move: Move, to_ann: str, to_team: str
) -> None:
    offer_id = await first_lead_with_ann(app, slack, clock)

    await move(app, slack, offer_id)
    await deliver(app, clock)

    (anns,) = updated(slack, "DANN")
    (teams,) = updated(slack, "CTEAM")
    assert to_ann in anns
    assert to_team in teams
    # The message's text (notifications, old clients) reads as the blocks do, to each reader.
    texts = {call.params["channel"]: call.params["text"] for call in slack.calls_to("chat.update")}
    assert (texts["DANN"], texts["CTEAM"]) == (to_ann, to_team)
    for said in (anns, teams):
        # Not the audit's words: no "Reassigned to @ben: out of office", no policy version.
        assert "Reassigned" not in said and "version" not in said and "rebalancing" not in said
        assert "dentist" not in said and "Mia" not in said


async def test_the_card_slack_would_not_take_says_so_once_settled_without_slacks_error(
    app: App, slack: FakeSlack, clock: Clock
) -> None:
    await first_lead_with_ann(app, slack, clock)
    (offer,) = await offers(app.uow.db)
    assert offer.id is not None
    await card_undeliverable(app.uow, offer.id, "UANN is deactivated or gone")
    await deliver(app, clock)

    (anns,) = updated(slack, "DANN")
    (teams,) = updated(slack, "CTEAM")
    assert "Moved to <@UBEN>: the card could not reach you in Slack" in anns
    assert "Moved to <@UBEN>: the card could not reach <@UANN> in Slack" in teams
    assert all("deactivated" not in said for said in (anns, teams))
