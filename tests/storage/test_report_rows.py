"""The routing report's rows: a story stored and read back is the same story, a tally as JSON
merges back to the same tally, and a reject's stored reason counts under its choice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from routing.model import Outcome
from routing.report import LeadStory, merge_all, tally_by
from storage.repository.rollups import tally_json, tally_of_json
from storage.stories import STORY_COLUMNS, reject_choice, story_of_row, story_values

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def a_story(lead_id: str, **more: object) -> LeadStory:
    arrived = NOW - timedelta(days=1)
    values: dict[str, object] = {
        "lead_id": lead_id,
        "created_at": arrived,
        "outcome": Outcome.ASSIGNED,
        "rule": "EMEA",
        "team": "emea",
        "rep": "erin",
        "method": "round_robin",
        "source": "web",
        "card_posted_at": arrived + timedelta(seconds=0.004),
        "claimed_at": arrived + timedelta(minutes=3),
        "claim_due_at": arrived + timedelta(minutes=15),
        "first_touch_at": arrived + timedelta(hours=2),
        "rejects": ("Not my territory", "Other"),
        "reassignments": ("sla_missed",),
        "missing": frozenset({"industry"}),
        "converted_at": arrived + timedelta(days=1),
        "won_at": arrived + timedelta(days=20),
        "amount": Decimal("12500.50"),
        "close_date": date(2026, 12, 10),
    }
    values.update(more)
    return LeadStory(**values)  # type: ignore[arg-type]


def test_a_story_reads_back_from_its_row_as_it_was() -> None:
    story = a_story("7")

    values = story_values(7, story, now=NOW)

    assert story_of_row([values[name] for name in STORY_COLUMNS]) == story


def test_a_story_whose_amount_was_left_out_for_its_currency_reads_back_so() -> None:
    story = a_story("8", amount=None, amount_left_out=True)

    values = story_values(8, story, now=NOW)
    read = story_of_row([values[name] for name in STORY_COLUMNS])

    assert read == story and read.amount_left_out


def test_a_tally_as_json_gives_back_the_same_tally_and_merges_as_tallies_do() -> None:
    stories = [a_story(str(n), rep="erin" if n % 2 else "dan") for n in range(5)]
    stories.append(a_story("9", outcome=Outcome.QUEUED, unmatched=True, rep=None, amount=None))
    stories.append(a_story("10", amount=None, amount_left_out=True))
    halves = [tally_by(stories[:3], by="all", now=NOW), tally_by(stories[3:], by="all", now=NOW)]

    assert tally_of_json(tally_json(halves[0]["all"])) == halves[0]["all"]
    whole = tally_by(stories, by="all", now=NOW)["all"]
    assert merge_all(tally_of_json(tally_json(half["all"])) for half in halves) == whole
    assert whole.pipeline == Decimal("62502.50")
    assert whole.amounts_left_out == 1


def test_a_reject_counts_under_the_choice_its_reason_starts_with() -> None:
    assert reject_choice("Not my territory: they are in Lisbon") == "Not my territory"
    assert reject_choice("Not a fit / junk") == "Not a fit / junk"
    assert reject_choice("they already bought from us") == "Other"  # a note and no choice
    assert reject_choice(None) == "Other"
