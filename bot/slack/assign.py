"""The Assign picker: a manager offers a queued lead to one of the policy's reps, from a queue's
post, a watchdog alert or a digest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import Option, OptionGroup, StaticSelectElement

from bot.slack.blocks import MAX_BLOCK_ID, MAX_OPTION_TEXT, MAX_OPTIONS, button_value, plain
from bot.slack.ids import ActionId, BlockId
from bot.slack.kit import ActionsBlock
from routing.policy import Policy

NOBODY_TO_ASSIGN = (
    "No rep in the policy has a Slack id, so none can be assigned from here: add `slack:` to "
    "the reps in the policy."
)


@dataclass(frozen=True, slots=True)
class Assignee:
    """A rep a manager may assign a queued lead to."""

    rep_id: str
    name: str
    team: str | None  # the first team they are in, to group a long list by


def assignees_of(policy: Policy) -> tuple[Assignee, ...]:
    """The policy's reps who can be assigned from Slack (those with a Slack id: a card can reach
    them), by name."""
    reps = [rep for rep in policy.reps.values() if rep.slack]
    return tuple(
        Assignee(rep.id, rep.name, policy.first_team_of(rep.id))
        for rep in sorted(reps, key=lambda rep: (rep.name.casefold(), rep.id))
    )


def assign_control(lead_id: str, assignees: Sequence[Assignee]) -> ActionsBlock:
    """A picker that offers a queued lead to one of the policy's reps, as a manager chooses.
    Not a user picker: that would offer everyone in the workspace.

    A select carries no value of its own, so the lead's id travels in the block id."""
    block_id = f"{BlockId.ASSIGN_PREFIX}{button_value(lead_id)}"
    if len(block_id) > MAX_BLOCK_ID:
        raise ValueError(f"lead id is too long for an Assign control ({len(lead_id)} characters)")
    if not assignees:
        raise ValueError("an Assign control needs at least one rep to offer")
    return ActionsBlock(block_id=block_id, elements=[_rep_select(assignees)])


def assign_picker(lead_id: str, assignees: Sequence[Assignee]) -> list[ActionsBlock]:
    """A queued lead's Assign picker where a list of leads shows one (the digest, App Home);
    none when nobody can be assigned, or for an id too long to travel in a block id, listed
    without it rather than costing the manager the whole message."""
    if not assignees or len(BlockId.ASSIGN_PREFIX) + len(lead_id) > MAX_BLOCK_ID:
        return []
    return [assign_control(lead_id, assignees)]


def assigned_lead(block_id: str) -> str | None:
    """The lead id an Assign control's block id carries; None for any other block."""
    prefix = BlockId.ASSIGN_PREFIX.value
    if not block_id.startswith(prefix):
        return None
    return block_id[len(prefix) :] or None


def _rep_option(assignee: Assignee) -> Option:
    return Option(value=assignee.rep_id, text=plain(assignee.name, MAX_OPTION_TEXT))


def _rep_select(assignees: Sequence[Assignee]) -> StaticSelectElement:
    """One list when it fits Slack's 100 options; else a group per team (Slack: 100 groups of
    100 at most), cut into parts when a team outgrows one."""
    placeholder = plain("Assign to…", 150)
    if len(assignees) <= MAX_OPTIONS:
        options = [_rep_option(a) for a in assignees]
        return StaticSelectElement(
            placeholder=placeholder, action_id=ActionId.ASSIGN, options=options
        )
    by_team: dict[str, list[Assignee]] = {}
    for assignee in assignees:
        by_team.setdefault(assignee.team or "No team", []).append(assignee)
    groups: list[OptionGroup] = []
    for team, members in sorted(by_team.items()):
        parts = [members[i : i + MAX_OPTIONS] for i in range(0, len(members), MAX_OPTIONS)]
        for number, part in enumerate(parts, start=1):
            label = team if len(parts) == 1 else f"{team} ({number})"
            groups.append(
                OptionGroup(
                    label=plain(label, MAX_OPTION_TEXT), options=[_rep_option(a) for a in part]
                )
            )
    return StaticSelectElement(
        placeholder=placeholder, action_id=ActionId.ASSIGN, option_groups=groups[:MAX_OPTIONS]
    )
