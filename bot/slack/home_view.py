"""The App Home as Block Kit: a rep's open leads, those claimed and still to contact,
availability and share of their teams' leads
this week; a manager's team load, queue and this week's figures.

Whatever the numbers, it stays within Slack's 100 blocks: offers and teams share what is left
after the fixed parts, each list cut with "… and N more".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock
from slack_sdk.models.views import View

from bot.card import COME_BACK, FOR_THE_REP, go_out
from bot.home import HomeData, HomeOffer, RepLoad, TeamLoad
from bot.slack.assign import Assignee, assign_picker
from bot.slack.blocks import (
    MAX_HEADER,
    MAX_TEXT,
    MAX_VIEW_BLOCKS,
    and_more,
    button,
    clip,
    date_element,
    escape,
    how_many_fit,
    list_section,
    literal,
    mrkdwn,
    plain,
    rich,
    rich_list_text,
    section,
    slack_date,
)
from bot.slack.cards import claim_button, reject_button
from bot.slack.digest import queued_lines
from bot.slack.ids import ActionId
from bot.slack.kit import ActionsBlock, ContextBlock, HeaderBlock, SectionBlock
from bot.slack.lead_lines import to_contact_head, to_contact_lines
from bot.slack.week import rep_week_lines, team_lines, week_line
from routing.durations import format_duration


def home_view(home: HomeData, assignees: Sequence[Assignee] = ()) -> dict[str, Any]:
    """The App Home: a rep's open leads and availability, a manager's team load and queue (its
    oldest leads each with an Assign picker of `assignees`)."""
    if not home.is_rep and not home.is_manager:
        text = (
            f"Hi {clip(escape(home.name), 150)}. You're not in the routing policy, so no leads are "
            "routed to you here. Ask a RevOps admin to add your Slack id to the policy."
        )
        return View(type="home", blocks=[section(text)]).to_dict()

    rep_head: list[Block] = []
    rep_tail: list[Block] = []
    offer_groups: list[list[Block]] = []
    if home.is_rep:
        rep_head = [HeaderBlock(text=plain("Your leads", MAX_HEADER))]
        offer_groups = [_offer_blocks(i, offer) for i, offer in enumerate(home.offers)]
        if not offer_groups:
            offer_groups = [[section("No leads to claim.")]]
        rep_tail = [DividerBlock(), _availability(home)]
        if home.to_contact:
            head = [literal(to_contact_head(len(home.to_contact)), bold=True)]
            rep_tail.insert(0, rich_list_text(head, to_contact_lines(home.to_contact, home.now)))
        if home.rep_week is not None:
            rep_tail.append(list_section("*Your share this week*", rep_week_lines(home.rep_week)))

    manager_head: list[Block] = []
    manager_tail: list[Block] = []
    team_groups: list[list[Block]] = []
    if home.is_manager:
        manager_head = [HeaderBlock(text=plain("Your teams", MAX_HEADER))]
        if home.is_rep:
            manager_head.insert(0, DividerBlock())
        team_groups = [[_team_section(team)] for team in home.teams]
        if not team_groups:
            team_groups = [[section("You manage no team in the policy.")]]
        manager_tail = [section(_queue_line(home))]
        for lead, line in zip(home.queued, queued_lines(home.queued, home.now), strict=True):
            manager_tail += [rich([line]), *assign_picker(lead.lead_id, assignees)]
        if home.week is not None:
            manager_tail.append(list_section(week_line(home.week), team_lines(home.week)))

    fixed = len(rep_head) + len(rep_tail) + len(manager_head) + len(manager_tail)
    offers_budget, teams_budget = _split_budget(
        MAX_VIEW_BLOCKS - fixed,
        sum(len(g) for g in offer_groups),
        sum(len(g) for g in team_groups),
    )
    blocks = [
        *rep_head,
        *_capped_groups(offer_groups, offers_budget),
        *rep_tail,
        *manager_head,
        *_capped_groups(team_groups, teams_budget),
        *manager_tail,
    ]
    return View(type="home", blocks=blocks).to_dict()


def _offer_blocks(index: int, offer: HomeOffer) -> list[Block]:
    """An open offer as its card titles and explains it, with the card's Claim and Reject."""
    content = offer.content
    when = [literal("Offered "), date_element(offer.offered_at)]
    if content.sla_due_at is not None:
        when += [literal(f" · {FOR_THE_REP.deadline} "), date_element(content.sla_due_at)]
    # Worded as the card words them: "Why you:", and the lead's id (what `/routing why` takes).
    when.append(literal(f" · Lead {offer.lead_id}", 300))
    lines = [
        [literal(content.heading, 300, bold=True)],
        [literal(f"{FOR_THE_REP.why}:", bold=True), literal(" "), literal(content.reason, 2000)],
        when,
    ]
    return [
        rich(lines),
        ActionsBlock(
            block_id=f"home_offer_{index}",
            elements=[claim_button(offer.lead_id), reject_button(offer.lead_id)],
        ),
    ]


def _capped_groups(groups: Sequence[list[Block]], budget: int) -> list[Block]:
    """The first groups that fit in `budget` blocks, then "… and N more"; never over budget."""
    if budget < 1:
        return []
    count = how_many_fit([len(g) for g in groups], budget, reserve=1)
    blocks = [block for group in groups[:count] for block in group]
    if count < len(groups):
        blocks.append(ContextBlock(elements=[mrkdwn(and_more(len(groups) - count))]))
    return blocks


def _availability(home: HomeData) -> SectionBlock:
    if not home.away:
        return SectionBlock(
            text=mrkdwn("You're available for new leads."),
            accessory=button(go_out(keeps_hours=home.keeps_hours), ActionId.HOME_AWAY),
        )
    until = slack_date(home.away_until) if home.away_until else "further notice"
    text = f"You're out of office until {until}."
    if home.away_reason:
        text += f"\n{clip(escape(home.away_reason), 1000)}"
    return SectionBlock(text=mrkdwn(text), accessory=button(COME_BACK, ActionId.HOME_BACK))


def _rep_line(rep: RepLoad) -> str:
    load = f"{rep.open}/{rep.capacity}" if rep.capacity is not None else f"{rep.open} (no cap)"
    line = f"• {clip(escape(rep.name), 150)}: {load}"
    if rep.away:
        line += f" · out until {slack_date(rep.away_until) if rep.away_until else 'further notice'}"
    return line


def _team_section(team: TeamLoad) -> SectionBlock:
    # Labelled as the digest labels these figures: "3/5" alone leaves a manager guessing.
    head = f"*{clip(escape(team.team), 150) or 'Unnamed team'}*: open leads against capacity"
    lines = [_rep_line(rep) for rep in team.reps] or ["_no reps_"]
    more = "\n" + and_more(len(lines))
    count = how_many_fit([len(line) + 1 for line in lines], MAX_TEXT - len(head), reserve=len(more))
    text = "\n".join([head, *lines[:count]])
    if count < len(lines):
        text += "\n" + and_more(len(lines) - count)
    return section(text)


def _queue_line(home: HomeData) -> str:
    if home.queue_size <= 0:
        return "*Unmatched queue:* empty"
    noun = "lead" if home.queue_size == 1 else "leads"
    text = f"*Unmatched queue:* {home.queue_size} {noun}"
    if home.queue_oldest_at is not None:
        waited = max(0.0, (home.now - home.queue_oldest_at).total_seconds())
        text += f", oldest waiting {format_duration(waited)}"
    return text


def _split_budget(budget: int, offers_need: int, teams_need: int) -> tuple[int, int]:
    """Share `budget` blocks between a rep's offers and a manager's teams; each gets at least half
    when both want more than fits."""
    if offers_need + teams_need <= budget:
        return offers_need, budget - offers_need
    offers = min(offers_need, max(budget // 2, budget - teams_need))
    return offers, budget - offers
