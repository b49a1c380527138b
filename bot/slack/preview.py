"""A Slack message as plain text, the way a reader sees it: what `leadrouter demo` prints.

It reads the very blocks that would be posted (`offer_card` and the rest), so a preview can never
say something the card does not. Slack's own parts are drawn as Slack draws them: a link as its
text, a mention as @name, a date in the reader's time zone, mrkdwn's *bold* and _italic_ as plain
words, entities as the characters they stand for, rich text as written, buttons as [ Claim ].
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.slack.blocks import Message

_TOKEN = re.compile(r"<([^<>]*)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
# Slack's date tokens, in the words strftime has for them (Slack says "today" where it can).
_DATE_STYLES = {
    "{date_num}": "%Y-%m-%d",
    "{date_short}": "%d %b %Y",
    "{date_short_pretty}": "%a %d %b",
    "{date}": "%d %B %Y",
    "{date_pretty}": "%A %d %B",
    "{date_long}": "%A, %d %B %Y",
    "{date_long_pretty}": "%A, %d %B",
    "{time}": "%H:%M %Z",
    "{time_secs}": "%H:%M:%S %Z",
}


def as_text(message: Message, *, tz: ZoneInfo, names: Mapping[str, str] | None = None) -> str:
    """`message` as lines of plain text; dates in `tz`, mentions by `names` (Slack id -> name)."""
    names = names or {}
    parts: list[str] = []
    for block in message.blocks:
        lines = _block(block, tz, names)
        if lines:
            parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _block(block: Mapping[str, Any], tz: ZoneInfo, names: Mapping[str, str]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        title = str(block["text"]["text"])
        return [title, "─" * min(len(title), 60)]
    if kind == "divider":
        return ["─" * 20]
    if kind == "context":
        return [" ".join(_text(element, tz, names) for element in block.get("elements", []))]
    if kind == "rich_text":
        return "".join(_rich(part, tz, names) for part in block.get("elements", [])).split("\n")
    if kind == "actions":
        return ["  ".join(_control(element) for element in block.get("elements", []))]
    if kind == "section":
        lines = [_text(block["text"], tz, names)] if block.get("text") else []
        accessory = block.get("accessory")
        if accessory:
            lines.append(_control(accessory))
        return lines
    return []


def _rich(part: Mapping[str, Any], tz: ZoneInfo, names: Mapping[str, str]) -> str:
    """A rich text section (or preformatted text) as its reader sees it: text as written, a link
    as its text, a mention as @name, a date in `tz`."""
    out = []
    for element in part.get("elements", []):
        kind = element.get("type")
        if kind == "text":
            out.append(str(element.get("text", "")))
        elif kind == "link":
            out.append(str(element.get("text") or element.get("url", "")))
        elif kind == "user":
            out.append(f"@{names.get(element['user_id'], element['user_id'])}")
        elif kind == "date":
            out.append(_date(f"!date^{element['timestamp']}^{element['format']}|", tz))
        elif kind == "emoji":
            out.append(f":{element['name']}:")
    return "".join(out)


def _control(element: Mapping[str, Any]) -> str:
    text = element.get("text") or element.get("placeholder") or {}
    label = str(text.get("text", ""))
    if element.get("type") == "button":
        return f"[ {label} ]"
    return f"[ {label} ▾ ]"


def _text(obj: Mapping[str, Any], tz: ZoneInfo, names: Mapping[str, str]) -> str:
    text = str(obj.get("text", ""))
    if obj.get("type") != "mrkdwn":
        return text  # plain text is shown as written

    def token(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.startswith("!date^"):
            return _date(inner, tz)
        if inner.startswith("@"):
            user = inner[1:].partition("|")[0]
            return f"@{names.get(user, user)}"
        if inner.startswith("!"):
            return f"@{inner[1:].partition('|')[0]}"  # <!here>
        target, _, label = inner.partition("|")
        return label or target

    text = _ITALIC.sub(r"\1", _BOLD.sub(r"\1", _TOKEN.sub(token, text)))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _date(token: str, tz: ZoneInfo) -> str:
    """`!date^<unix time>^<style>|<fallback>` in `tz`."""
    _, stamp, rest = token.split("^", 2)
    style, _, fallback = rest.partition("|")
    try:
        when = datetime.fromtimestamp(int(stamp), tz)
    except (ValueError, OverflowError, OSError):
        return fallback
    for name, pattern in _DATE_STYLES.items():
        style = style.replace(name, when.strftime(pattern))
    return style
