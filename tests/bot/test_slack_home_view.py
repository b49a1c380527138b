"""The App Home as Block Kit: a rep's open leads and availability, a manager's teams and queue,
within Slack's 100 blocks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_sdk.models.views import View

from bot.home import HomeData, HomeOffer, RepLoad, TeamLoad
from bot.slack.blocks import slack_date
from bot.slack.home_view import home_view
from bot.slack.ids import ActionId
from tests.bot.test_slack_blocks import (
    DUE,
    NOW,
    assert_safe,
    assert_within_limits,
    blocks_of_type,
    content,
    literal_texts,
    rich_texts,
    texts,
)


def test_the_app_homes_reject_and_im_out_ask_for_confirmation_too() -> None:
    blocks = home_view(home(offers=(offer(1),)))["blocks"]
    (actions,) = blocks_of_type(blocks, "actions")
    claim, reject = actions["elements"]
    assert "confirm" not in claim
    assert reject["confirm"]["title"]["text"] == "Reject this lead?"
    (available,) = [b for b in blocks if b.get("accessory")]
    assert available["accessory"]["confirm"]["title"]["text"] == "Mark yourself out?"


# --- the App Home --------------------------------------------------------------------------------


def offer(i: int, title: str = "Ada · Engines") -> HomeOffer:
    return HomeOffer(
        lead_id=f"L-{i}",
        content=content(title=title, reason="round robin in EMEA", sla_due_at=DUE),
        offered_at=NOW - timedelta(minutes=3),
    )


def home(**overrides: Any) -> HomeData:
    values: dict[str, Any] = {
        "name": "Alice",
        "is_rep": True,
        "offers": (),
        "away": False,
        "away_until": None,
        "away_reason": None,
        "is_manager": False,
        "teams": (),
        "queue_size": 0,
        "queue_oldest_at": None,
        "now": NOW,
    }
    values.update(overrides)
    return HomeData(**values)


def test_a_rep_sees_each_offer_worded_as_its_card_with_its_own_buttons() -> None:
    view = home_view(home(offers=(offer(1, "A <!channel>"), offer(2))))
    View(**view).to_dict()
    blocks = view["blocks"]
    assert view["type"] == "home"
    assert blocks[0]["text"]["text"] == "Your leads"
    actions = blocks_of_type(blocks, "actions")
    assert [a["block_id"] for a in actions] == ["home_offer_0", "home_offer_1"]
    for action, lead in zip(actions, ("L-1", "L-2"), strict=True):
        assert [b["action_id"] for b in action["elements"]] == [ActionId.CLAIM, ActionId.REJECT]
        assert [b["value"] for b in action["elements"]] == [lead, lead]
        assert action["elements"][0]["style"] == "primary"
    (first,) = rich_texts(blocks[1])
    assert first.startswith("*A &lt;!channel&gt;*\n*Why you:* round robin in EMEA\n")
    assert f"Claim by {slack_date(DUE)} · Lead L-1" in first  # as the card words them
    assert "A <!channel>" in literal_texts(blocks[1])  # as written, and never parsed
    assert any("You're available" in t for t in texts(blocks))
    (available,) = [b for b in blocks if b.get("accessory")]
    assert available["accessory"]["action_id"] == ActionId.HOME_AWAY
    assert available["accessory"]["text"]["text"] == "I'm out"
    for text in texts(blocks):
        assert_safe(text)


def test_a_rep_without_offers_is_told_so() -> None:
    blocks = home_view(home())["blocks"]
    assert "No leads to claim." in list(texts(blocks))
    assert blocks_of_type(blocks, "actions") == []


def test_an_away_rep_sees_until_when_and_why_with_an_im_back_button() -> None:
    until = NOW + timedelta(days=2)
    blocks = home_view(home(away=True, away_until=until, away_reason="PTO <!here>"))["blocks"]
    (section,) = [b for b in blocks if b.get("accessory")]
    assert section["text"]["text"] == (
        f"You're out of office until {slack_date(until)}.\nPTO &lt;!here&gt;"
    )
    assert section["accessory"]["action_id"] == ActionId.HOME_BACK
    assert section["accessory"]["text"]["text"] == "I'm back"


def test_an_away_rep_without_an_end_date_is_out_until_further_notice() -> None:
    blocks = home_view(home(away=True))["blocks"]
    assert "You're out of office until further notice." in list(texts(blocks))


def test_a_manager_sees_each_team_load_labelled_and_the_unmatched_queue() -> None:
    back = NOW + timedelta(days=1)
    teams = (
        TeamLoad(
            team="EMEA",
            reps=(
                RepLoad(name="Alice", open=3, capacity=5, away=False, away_until=None),
                RepLoad(name="Bob <!channel>", open=1, capacity=None, away=True, away_until=back),
            ),
        ),
        TeamLoad(
            team="NA",
            reps=(RepLoad(name="Cy", open=0, capacity=2, away=True, away_until=None),),
        ),
    )
    oldest = NOW - timedelta(hours=2, minutes=5)
    view = home_view(
        home(is_rep=False, is_manager=True, teams=teams, queue_size=4, queue_oldest_at=oldest)
    )
    View(**view).to_dict()
    all_text = list(texts(view["blocks"]))
    assert "Your leads" not in all_text
    assert "Your teams" in all_text
    assert (
        "*EMEA*: open leads against capacity\n• Alice: 3/5\n"
        f"• Bob &lt;!channel&gt;: 1 (no cap) · out until {slack_date(back)}" in all_text
    )
    assert "*NA*: open leads against capacity\n• Cy: 0/2 · out until further notice" in all_text
    assert all_text[-1] == "*Unmatched queue:* 4 leads, oldest waiting 2h 5m"


def test_an_empty_queue_says_so() -> None:
    blocks = home_view(home(is_rep=False, is_manager=True))["blocks"]
    assert list(texts(blocks))[-1] == "*Unmatched queue:* empty"


def test_a_rep_who_also_manages_sees_both_parts() -> None:
    teams = (TeamLoad(team="EMEA", reps=()),)
    all_text = list(texts(home_view(home(is_manager=True, teams=teams, offers=(offer(1),)))))
    assert all_text.index("Your leads") < all_text.index("Your teams")
    assert "*EMEA*: open leads against capacity\n_no reps_" in all_text


def test_a_stranger_is_told_to_ask_revops_to_add_them() -> None:
    view = home_view(home(name="Mallory <!channel>", is_rep=False))
    (block,) = view["blocks"]
    text = block["text"]["text"]
    assert "not in the routing policy" in text
    assert "RevOps admin" in text
    assert "Slack id" in text
    assert_safe(text)


def test_three_hundred_offers_stay_within_a_hundred_blocks_and_say_how_many_more() -> None:
    offers = tuple(offer(i) for i in range(300))
    view = home_view(home(offers=offers))
    View(**view).to_dict()
    blocks = view["blocks"]
    assert len(blocks) <= 100
    shown = len(blocks_of_type(blocks, "actions"))
    assert f"… and {300 - shown} more" in list(texts(blocks))
    assert len({b["block_id"] for b in blocks if "block_id" in b}) == shown


def test_a_manager_with_hundreds_of_offers_teams_and_reps_stays_within_limits() -> None:
    reps = tuple(
        RepLoad(name=f"Rep {i} & co", open=i, capacity=10, away=i % 2 == 0, away_until=NOW)
        for i in range(200)
    )
    teams = tuple(TeamLoad(team=f"Team {i}", reps=reps) for i in range(300))
    for is_rep in (True, False):
        view = home_view(
            home(
                is_rep=is_rep,
                offers=tuple(offer(i, "x" * 5000) for i in range(300)),
                is_manager=True,
                teams=teams,
                queue_size=1,
                queue_oldest_at=NOW,
            )
        )
        View(**view).to_dict()
        assert_within_limits(view["blocks"], max_blocks=100)
        all_text = list(texts(view["blocks"]))
        assert any(t.endswith("more") and t.startswith("*Team 0*") for t in all_text)
        assert all_text[-1] == "*Unmatched queue:* 1 lead, oldest waiting 0s"
