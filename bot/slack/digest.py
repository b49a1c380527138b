"""A manager's digest as a Slack message, the one word on a backlog that arrived offline, the
word on a policy file refused, and the note that a manager cannot be reached.

The period in the header is written in the manager's own time zone, not as a Slack date: a header
block is plain text, where Slack's `<!date^...>` tokens do not render, and the period starts at the
manager's own `digest` time, which is written in that zone. The zone's abbreviation goes with it,
for a manager reading away from home. Times further down (when someone is back) are Slack dates,
as on cards and the App Home, so they read in each reader's own zone.

The shape is fixed whatever the number of reps or leads: a header, the queue (at most ten leads,
two blocks each), then one section each for misses, load and absences (and CRM write-backs given
up, when there are any), cut with "… and N more" when a list outgrows Slack's 3,000 characters;
in the week's first digest, a divider and four sections of the week's figures (`week_blocks`).
That is at most 33 blocks of Slack's 50.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.blocks.block_elements import RichTextElement

from bot.crm_links import crm_name
from bot.service.digests import ManagerDigest, QueuedLead, RepAway, RepLoad, RepMisses
from bot.service.kinds import OutboxKind
from bot.slack.assign import Assignee, assign_picker
from bot.slack.blocks import (
    ELLIPSIS,
    MAX_HEADER,
    MAX_MESSAGE_BLOCKS,
    MAX_TEXT,
    Message,
    clip,
    cut,
    escape,
    list_section,
    literal,
    rich,
    rich_list_text,
    slack_date,
)
from bot.slack.kit import RichTextBlock
from bot.slack.week import week_blocks
from routing.durations import format_duration

_WEEK_DAYS = 7


def digest_message(
    digest: ManagerDigest, *, manager_tz: ZoneInfo, assignees: Sequence[Assignee]
) -> Message:
    """The digest for one manager; a single line when there is nothing to tell. Each queued lead
    shown has an Assign picker of `assignees`."""
    period = period_start(digest.since, digest.now, manager_tz)
    if digest.empty:
        line = (
            f"All clear: nothing in the queue, no SLA misses since {period}, nobody out, "
            "no open leads."
        )
        return Message(text=line, blocks=[_section(line).to_dict()])

    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(f"Routing digest since {period}", MAX_HEADER)))
    ]
    blocks.extend(_queue_blocks(digest, assignees))
    blocks.append(DividerBlock())
    blocks.append(_misses_section(digest.misses, period))
    blocks.append(_loads_section(digest.loads))
    blocks.append(_away_section(digest.away))
    if digest.crm_failures_total:
        blocks.append(_crm_section(digest))
    if digest.week is not None:
        blocks.extend(week_blocks(digest.week))
    if len(blocks) > MAX_MESSAGE_BLOCKS:  # the shape is fixed; this guards future edits
        raise ValueError(f"a message may hold {MAX_MESSAGE_BLOCKS} blocks; built {len(blocks)}")
    return Message(text=_summary(digest), blocks=[block.to_dict() for block in blocks])


def backlog_summary(leads: int, since: datetime, reps: Mapping[str, int]) -> Message:
    """A manager's one word on the leads that arrived while no Slack app ran, instead of an
    alert for each as their cards go out."""
    who = ", ".join(f"{escape(name)} {count}" for name, count in reps.items())
    text = clip(
        f"*{leads} lead{'s' if leads != 1 else ''} arrived while leadrouter was not connected "
        f"to Slack* (the first {slack_date(since)}). Their cards are going out to the reps now: "
        f"{who}. Each rep's SLA starts when their card arrives, so nobody is charged for the "
        "wait.",
        MAX_TEXT,
    )
    return Message(text=text, blocks=[_section(text).to_dict()])


def policy_refused_message(source: str, refused: str, serving: str, problems: str) -> Message:
    """A policy file failed its checks: which, the version that goes on serving, and every
    problem as `leadrouter check` words it, so whoever fixes it need not look for the log."""
    head = (
        f"*The policy file {escape(source)} was not activated*: it fails its checks "
        f"(version {refused}). Version {serving} goes on serving. Fix these and save it again "
        "(`leadrouter check` runs the same checks):"
    )
    listed = clip(problems, MAX_TEXT - 10 - len(head))
    text = f"{head}\n```{escape(listed)}```"
    return Message(text=clip(text, MAX_TEXT), blocks=[_section(text).to_dict()])


# What a manager Slack cannot reach missed, by the outbox kind that could not go.
_MISSED: dict[str, str] = {
    OutboxKind.DIGEST: "Their digest was not sent",
    OutboxKind.BACKLOG: (
        "They were not told of the leads that arrived while leadrouter was not connected to Slack"
    ),
    OutboxKind.POLICY_REFUSED: "They were not told of a policy file refused (you were)",
}


def unreachable_note(name: str, why: str, missed: str) -> Message:
    """Another manager cannot be reached in Slack (`why`, as the outbox gave it up; `missed`:
    the kind of what could not go): said once a day, so that someone fixes the policy."""
    what = _MISSED.get(missed, "A message to them could not go")
    # A missed digest has said so already; any other message says their digests stop too.
    no_digest = "" if missed == OutboxKind.DIGEST else ", and they get no digest"
    text = clip(
        f"*leadrouter cannot reach {escape(name)} in Slack*: {escape(clip(why, 600))}. "
        f"{what}. Until this is fixed, alerts meant for them come to the other managers "
        f"instead{no_digest}. You are told at most once a day while it lasts.",
        MAX_TEXT,
    )
    return Message(text=text, blocks=[_section(text).to_dict()])


def period_start(since: datetime, now: datetime, tz: ZoneInfo) -> str:
    """`since` as the manager reads it: "Mon 09:00 EST" within the last week, else with the date."""
    local = since.astimezone(tz)
    if (now.astimezone(tz).date() - local.date()).days < _WEEK_DAYS:
        return local.strftime("%a %H:%M %Z")
    return f"{local:%a} {local.day} {local:%b %H:%M %Z}"


# --- parts ---------------------------------------------------------------------------------------


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, MAX_TEXT)))


def _waited(now: datetime, lead: QueuedLead) -> str:
    return format_duration(max(0.0, (now - lead.created_at).total_seconds()))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _queue_blocks(digest: ManagerDigest, assignees: Sequence[Assignee]) -> list[Block]:
    if digest.queue_size == 0:
        return [_section("*Unmatched queue:* empty")]
    head = f"*Unmatched queue:* {_plural(digest.queue_size, 'lead')}"
    if digest.oldest:
        head += f", oldest waiting {_waited(digest.seen_at, digest.oldest[0])}"
    blocks: list[Block] = [_section(head)]
    lines = queued_lines(digest.oldest, digest.seen_at)
    for lead, line in zip(digest.oldest, lines, strict=True):
        blocks.append(rich([line]))
        blocks.extend(assign_picker(lead.lead_id, assignees))
    hidden = digest.queue_size - len(digest.oldest)
    if hidden > 0:
        text = f"{ELLIPSIS} and {hidden} more"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=text)]))
    return blocks


def queued_lines(leads: Sequence[QueuedLead], now: datetime) -> list[list[RichTextElement]]:
    """A line of rich text for each queued lead, as the digest and a manager's App Home list
    them: its id, company, source (each as the lead wrote it), its queue when they wait in
    several, and how long it has waited."""
    several = len({lead.queue for lead in leads}) > 1  # else the queue goes without saying
    return [_lead_line(lead, now, show_queue=several) for lead in leads]


def _lead_line(lead: QueuedLead, now: datetime, *, show_queue: bool) -> list[RichTextElement]:
    line = [literal(lead.lead_id, 300, bold=True)]
    if lead.company:
        line += [literal(" · "), literal(lead.company, 300)]
    if lead.source:
        line += [literal(" · "), literal(lead.source, 150)]
    if show_queue and lead.queue:
        line += [literal(" · in "), literal(lead.queue, 150)]
    line.append(literal(f" · waiting {_waited(now, lead)}"))
    return line


def _name(name: str) -> str:
    return clip(escape(name), 150)


def _misses_section(misses: Sequence[RepMisses], period: str) -> SectionBlock:
    if not misses:
        return _section(f"*SLA misses since {period}:* none")
    total = sum(m.count for m in misses)
    return list_section(
        f"*SLA misses since {period}:* {total}",
        [f"• {_name(m.name)}: {m.count}" for m in misses],
    )


def _load(load: RepLoad) -> str:
    if load.capacity is None:
        return f"• {_name(load.name)}: {load.open} (no cap)"
    full = " · full" if load.open >= load.capacity else ""
    return f"• {_name(load.name)}: {load.open}/{load.capacity}{full}"


def _loads_section(loads: Sequence[RepLoad]) -> SectionBlock:
    if not loads:
        return _section("*Open leads against capacity:* no reps")
    return list_section("*Open leads against capacity*", [_load(load) for load in loads])


def _away_line(rep: RepAway) -> str:
    until = slack_date(rep.until) if rep.until is not None else "further notice"
    line = f"• {_name(rep.name)} until {until}"
    if rep.reason:
        line += f" · {clip(escape(rep.reason), 100)}"
    return line


def _away_section(away: Sequence[RepAway]) -> SectionBlock:
    if not away:
        return _section("*Out of office:* nobody")
    return list_section("*Out of office*", [_away_line(rep) for rep in away])


def _crm_section(digest: ManagerDigest) -> RichTextBlock:
    """The write-backs given up: each lead's id and the CRM's error as they were written."""
    lines = [
        [
            literal("• "),
            literal(f.lead_id, 100, code=True),
            literal(f" ({cut(f.rep_name, 150)}, {crm_name(f.system)}): "),
            literal(f.error, 200),
        ]
        for f in digest.crm_failures
    ]
    hidden = digest.crm_failures_total - len(digest.crm_failures)
    if hidden:
        lines.append([literal(f"{ELLIPSIS} and {hidden} more")])
    head = [
        literal("CRM owner write-backs given up:", bold=True),
        literal(f" {digest.crm_failures_total} (the record still names its old owner; "),
        literal("/routing why <lead>", code=True),
        literal(" tells the story)"),
    ]
    return rich_list_text(head, lines)


def _summary(digest: ManagerDigest) -> str:
    """The notification's text: the three numbers a manager acts on."""
    misses = sum(m.count for m in digest.misses)
    return (
        f"Routing digest: {_plural(digest.queue_size, 'lead')} in the queue, "
        f"{misses} SLA miss{'' if misses == 1 else 'es'}, {len(digest.away)} out of office"
    )
