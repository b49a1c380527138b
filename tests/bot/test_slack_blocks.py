"""The Block Kit basics every message shares (escaping, mentions, dates, cutting to Slack's
limits), and the helpers the other Block Kit tests use: a card's content, every text a reader could
see, and the checks that nothing escapes its text or Slack's limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.card import CardContent, Contact
from bot.slack.assign import Assignee
from bot.slack.blocks import (
    MAX_TEXT,
    clip,
    date_element,
    escape,
    literal,
    mention,
    mentioned,
    plainly,
    rich,
    rich_list_text,
    slack_date,
    strong,
)

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
DUE = NOW + timedelta(minutes=5)
CRM = "https://acme.my.salesforce.com/lightning/r/Lead/00Q1/view?a=1&b=2"
HOSTILE = "<!channel> & <http://evil.example|click>"
# What may legitimately follow "<" in our mrkdwn: dates, mentions and our own CRM link.
OWN_TOKEN = re.compile(
    r"<(!date\^\d+\^[^|<>]*\|[^<>]*"
    r"|@U[A-Z0-9]+"
    r"|https://acme\.my\.salesforce\.com/[^<>|]*\|Open in CRM"
    # the lead's contact details, as links whose target we built and whose label we escaped
    r"|mailto:[^<>|\s]+\|[^<>]*"
    r"|tel:\+?\d+\|[^<>]*"
    r"|https?://[^<>|\s]+\|[^<>]*)>"
)
ASSIGNEES = (Assignee("ann", "Ann Archer", "emea"), Assignee("ben", "Ben Baker", "emea"))
ADA = Contact(email="ada@engines.example", phone="+44 20 7946 0000", website="engines.example")


def content(**overrides: Any) -> CardContent:
    values: dict[str, Any] = {
        "title": "Ada Lovelace · Analytical Engines",
        "contact": ADA,
        "fields": (
            ("Title", "CTO"),
            ("Company size", "5,000 employees · enterprise"),
            ("Region", "EMEA · GB"),
            ("Source", "webinar"),
            ("Score", "87"),
            ("Product", "Routing"),
        ),
        "reason": "Rule enterprise-emea: round robin in team EMEA",
        "sla_due_at": DUE,
        "sla_seconds": 300,
    }
    values.update(overrides)
    return CardContent(**values)


def texts(
    node: Any, kinds: tuple[str, ...] = ("mrkdwn", "plain_text", "rich_text")
) -> Iterator[str]:
    """Every string a reader could see: the `text` of each text object, however deeply nested,
    and each rich text block written as the mrkdwn it stands for (`rich_as_mrkdwn`)."""
    if isinstance(node, dict):
        if node.get("type") == "rich_text":
            if "rich_text" in kinds:
                yield rich_as_mrkdwn(node)
            return
        if node.get("type") in kinds and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from texts(value, kinds)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item, kinds)


def rich_as_mrkdwn(block: dict[str, Any]) -> str:
    """A rich text block as the mrkdwn that would say the same: its text escaped, its styles as
    *bold*, _italic_ and `code`, its links, mentions and dates as Slack's tokens, preformatted
    text in ```. So a test reads a line the same whichever way it is drawn."""
    out = []
    for part in block["elements"]:
        inline = "".join(_inline(element) for element in part["elements"])
        out.append(f"```{inline}```" if part["type"] == "rich_text_preformatted" else inline)
    return "\n".join(out)


def _inline(element: dict[str, Any]) -> str:
    kind = element["type"]
    if kind == "user":
        return f"<@{element['user_id']}>"
    if kind == "date":
        return f"<!date^{element['timestamp']}^{element['format']}|{element['fallback']}>"
    if kind == "emoji":
        return f":{element['name']}:"
    if kind == "link":
        url = element["url"].replace("&", "&amp;")
        return f"<{url}|{escape(element['text'])}>" if element.get("text") else f"<{url}>"
    assert kind == "text", element
    text, style = escape(element["text"]), element.get("style") or {}
    for key, mark in (("code", "`"), ("italic", "_"), ("bold", "*")):
        if style.get(key):
            text = f"{mark}{text}{mark}"
    return text


def rich_texts(node: Any) -> list[str]:
    """Each rich text block in `node` as the mrkdwn it stands for."""
    return list(texts(node, ("rich_text",)))


def rich_words(node: Any) -> list[str]:
    """Each rich text block in `node` as its words read, styles left out (links, mentions and
    dates still as Slack's tokens)."""
    if isinstance(node, dict):
        if node.get("type") == "rich_text":
            return [
                "".join(
                    _inline({k: v for k, v in element.items() if k != "style"})
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&")
                    for element in part["elements"]
                )
                for part in node["elements"]
            ]
        return [words for value in node.values() for words in rich_words(value)]
    if isinstance(node, list):
        return [words for item in node for words in rich_words(item)]
    return []


def rich_text_of(block: dict[str, Any]) -> str:
    """A block's text as mrkdwn if it is rich text; else nothing."""
    return rich_as_mrkdwn(block) if block.get("type") == "rich_text" else ""


def links(node: Any) -> list[tuple[str, str]]:
    """Every rich text link in `node`: (its target, its text as shown)."""
    if isinstance(node, dict):
        own = [(node["url"], node.get("text", ""))] if node.get("type") == "link" else []
        return own + [link for value in node.values() for link in links(value)]
    if isinstance(node, list):
        return [link for item in node for link in links(item)]
    return []


def literal_texts(node: Any) -> Iterator[str]:
    """Every string Slack shows as written: plain_text objects and rich text's text elements
    and links' text (where `*`, `_`, `~`, a backtick, `<` or `&` mean nothing)."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind in ("plain_text", "text", "link") and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from literal_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from literal_texts(item)


def rich_length(block: dict[str, Any]) -> int:
    """The characters of text in a rich text block, as the lead's and our words were written."""
    return sum(
        len(element.get("text") or "") for part in block["elements"] for element in part["elements"]
    )


def mrkdwn(node: Any) -> Iterator[str]:
    """The texts Slack parses for mentions, links and formatting."""
    return texts(node, ("mrkdwn",))


def blocks_of_type(blocks: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [b for b in blocks if b["type"] == kind]


def assert_safe(text: str) -> None:
    """No "<" except tokens we wrote, no "&" except the three entities."""
    rest = OWN_TOKEN.sub("", text)
    assert "<" not in rest, text
    assert ">" not in rest, text
    assert re.search(r"&(?!amp;|lt;|gt;)", rest) is None, text


def assert_within_limits(blocks: list[dict[str, Any]], max_blocks: int) -> None:
    assert len(blocks) <= max_blocks
    for block in blocks:
        Block.parse(block).to_dict()  # type: ignore[union-attr]  # slack_sdk's own validators
        for text in texts(block, ("mrkdwn", "plain_text")):
            assert 1 <= len(text) <= 3000
        if block["type"] == "rich_text":
            assert 1 <= rich_length(block) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
        assert len(block.get("fields", [])) <= 10


# --- text helpers --------------------------------------------------------------------------------


def test_escape_turns_the_three_control_characters_into_entities_ampersand_first() -> None:
    assert escape("a & <b> &lt;") == "a &amp; &lt;b&gt; &amp;lt;"


def test_mention_is_a_user_token() -> None:
    assert mention("U01ALICE") == "<@U01ALICE>"


def test_slack_date_carries_the_unix_time_and_a_utc_fallback() -> None:
    assert (
        slack_date(DUE) == "<!date^1794936000^{date_short_pretty} at {time}|2026-11-17 17:20 UTC>"
    )
    assert slack_date(DUE, "{time}").startswith("<!date^1794936000^{time}|")


def test_slack_date_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="time zone"):
        slack_date(datetime(2026, 11, 17, 17, 20))


def test_clip_never_cuts_an_entity_or_a_token_in_half() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcdef", 4) == "abc…"
    assert clip("ab &amp; cd", 6) == "ab …"
    assert clip("x " + slack_date(DUE), 20) == "x …"


# --- rich text: what a lead wrote, shown as written ----------------------------------------------


def test_literal_text_is_neither_escaped_nor_formatted_and_its_style_is_explicit() -> None:
    block = rich([[literal("Company:", bold=True), literal(" *URGENT* <!here> & ~Acme~ `x`")]])
    assert block.to_dict()["elements"][0]["elements"] == [
        {"type": "text", "text": "Company:", "style": {"bold": True}},
        {"type": "text", "text": " *URGENT* <!here> & ~Acme~ `x`"},
    ]


def test_said_words_are_rich_text_for_the_blocks_and_escaped_mrkdwn_for_the_notification() -> None:
    said = plainly("Claimed by ") + mentioned("U01ANN") + plainly(" for *A* & <B>")
    assert said.text == "Claimed by <@U01ANN> for *A* &amp; &lt;B&gt;"
    assert rich_as_mrkdwn(rich([said.rich]).to_dict()) == (
        "Claimed by <@U01ANN> for *A* &amp; &lt;B&gt;"
    )
    assert strong("*A*").text == "*A*"  # its own bold is the blocks', not the notification's


def test_an_empty_text_is_left_out_of_rich_text_for_slack_refuses_it() -> None:
    block = rich([[literal("Why:", bold=True), literal(" "), literal("")]]).to_dict()
    assert block["elements"][0]["elements"] == [
        {"type": "text", "text": "Why:", "style": {"bold": True}},
        {"type": "text", "text": " "},
    ]


def test_a_rich_date_is_the_slack_date_token_in_rich_text() -> None:
    element = date_element(DUE).to_dict()
    assert element == {
        "type": "date",
        "timestamp": 1794936000,
        "format": "{date_short_pretty} at {time}",
        "fallback": "2026-11-17 17:20 UTC",
    }
    with pytest.raises(ValueError, match="time zone"):
        date_element(datetime(2026, 11, 17, 17, 20))


def test_a_rich_text_block_is_cut_to_a_sections_length_ending_in_an_ellipsis() -> None:
    block = rich([[literal("a" * 2000)], [literal("b" * 2000)], [literal("never shown")]])
    text = "".join(element["text"] for element in block.to_dict()["elements"][0]["elements"])
    assert len(text) == MAX_TEXT
    assert text.startswith("a" * 2000 + "\n" + "b") and text.endswith("b…")
    assert "never" not in text
    shared = literal("s" * 2000)  # cut in one block, whole in another
    rich([[literal("t" * 2000), shared]])
    assert rich_length(rich([[shared]]).to_dict()) == 2000


def test_a_long_rich_list_keeps_room_to_say_how_many_more() -> None:
    lines = [[literal(f"lead {n} " + "x" * 200)] for n in range(40)]
    block = rich_list_text([literal("Your open leads", bold=True)], lines).to_dict()
    assert rich_length(block) <= MAX_TEXT
    written = rich_as_mrkdwn(block).splitlines()
    assert written[0] == "*Your open leads*"
    shown = len(written) - 2
    assert 10 <= shown < 40 and written[-1] == f"… and {40 - shown} more"
