"""The Assign picker a manager offers a queued lead to a rep with."""

from __future__ import annotations

import pytest

from bot.slack.assign import Assignee, assign_control, assigned_lead, assignees_of
from bot.slack.ids import ActionId
from routing.leads import MAX_LEAD_ID_LENGTH, InvalidLead, parse_lead
from routing.policy import parse_policy
from tests.bot.test_slack_blocks import (
    ASSIGNEES,
)


def test_the_longest_lead_id_intake_accepts_fits_a_queued_posts_assign_control() -> None:
    longest = "L" * MAX_LEAD_ID_LENGTH
    control = assign_control(longest, ASSIGNEES).to_dict()
    assert len(control["block_id"]) <= 255
    assert assigned_lead(control["block_id"]) == longest
    with pytest.raises(InvalidLead):
        parse_lead({"id": longest + "L"})


# --- the Assign picker ---------------------------------------------------------------------------


def test_the_assign_picker_offers_the_policys_reps_who_have_a_slack_id_by_name() -> None:
    policy = parse_policy(
        """\
reps:
  - {id: zed, name: Zed Zimmer, slack: UZED}
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: dot, name: Dot Drake}
teams:
  core: {members: [zed, ann, dot]}
rules:
  - {name: Everyone, assign: {team: core}}
"""
    )
    control = assign_control("L-1", assignees_of(policy)).to_dict()
    (select,) = control["elements"]
    assert select["type"] == "static_select"  # not users_select: any workspace user
    assert select["action_id"] == ActionId.ASSIGN
    # Dot has no Slack id: no card could reach her, so she is not offered.
    assert [(o["value"], o["text"]["text"]) for o in select["options"]] == [
        ("ann", "Ann Archer"),
        ("zed", "Zed Zimmer"),
    ]


def test_more_reps_than_one_list_holds_are_grouped_by_team() -> None:
    many = tuple(Assignee(f"r{n}", f"Rep {n:03}", f"team {n % 3}") for n in range(250))
    (select,) = assign_control("L-1", many).to_dict()["elements"]
    assert "options" not in select
    groups = select["option_groups"]
    assert [g["label"]["text"] for g in groups] == ["team 0", "team 1", "team 2"]
    assert all(len(g["options"]) <= 100 for g in groups)
    assert sorted(o["value"] for g in groups for o in g["options"]) == sorted(
        a.rep_id for a in many
    )
