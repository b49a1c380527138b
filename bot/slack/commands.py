"""The `/routing` slash command's text, parsed into one typed command.

Pure: no I/O and no clock. The handler passes `now` and the caller's Slack time zone, so a date
the user types ("friday", "2026-12-01") means the same day to the parser as it does to them.
Anything the parser cannot use becomes `Help` with a one-sentence `problem`; nothing the user
types raises.

Slack sends the text with its own escapes ("Escape channels, users, and links" on): a user mention
arrives as `<@U01BOB|bob>` or `<@U01BOB>`, an email as `<mailto:a@b.com|a@b.com>`, and a typed
`&`, `<` or `>` as `&amp;`, `&lt;` or `&gt;`. Problems are mrkdwn and quote the user's words as
they arrived, so those escapes render back as what the user typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "USAGE",
    "Command",
    "Digest",
    "Help",
    "Pto",
    "Queue",
    "Why",
    "parse_command",
]


@dataclass(frozen=True, slots=True)
class Pto:
    until: datetime | None  # aware, in the caller's zone; None = until further notice
    user: str | None  # Slack user id from a mention, e.g. "U01BOB"; None = the caller
    back: bool = False  # `pto off`: end the absence (until is None then)


@dataclass(frozen=True, slots=True)
class Why:
    lead: str


@dataclass(frozen=True, slots=True)
class Queue:
    pass


@dataclass(frozen=True, slots=True)
class Digest:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    problem: str | None = None  # one mrkdwn sentence; None for plain `help` or empty text


Command = Pto | Why | Queue | Digest | Help

USAGE = """\
*`/routing` commands*
• `/routing pto` — you are out until further notice
• `/routing pto until 2026-12-01` — out until a date; also `until friday`, `until tomorrow`
• `/routing pto for 3d` — out for a while: minutes, hours, days or weeks (`90m`, `4h`, `3d`, `2w`)
• `/routing pto off` — you are back
• `/routing pto until friday @bob` — managers: set or end someone else's time off
• `/routing why L-1042` — why a lead went where it did, by external id, email or CRM id
• `/routing queue` — the leads waiting for you
• `/routing digest` — your summary of recent leads
• `/routing help` — this list"""

_MAX_AHEAD_DAYS = 365
_MAX_AHEAD = timedelta(days=_MAX_AHEAD_DAYS)

# A `<...>` escape is one word even when its label has spaces (`<@U01BOB|Bob Smith>`).
_TOKEN = re.compile(r"<[^<>|\s]+(?:\|[^<>]*)?>|\S+")
_ESCAPED = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>", re.ASCII)
# re.ASCII: `\d` would otherwise accept any script's digits, which `int()` then reads as numbers.
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DURATION = re.compile(r"(\d+)([mhdw])", re.ASCII | re.IGNORECASE)
_NUMBER = re.compile(r"\d+", re.ASCII)

_WEEKDAYS = {
    name: index
    for index, full in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
    for name in (full, full[:3])
}
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}

_NEEDS_DATE = "`pto until` needs a date such as 2026-12-01, friday or 3d"
_NEEDS_DURATION = "`pto for` needs a duration such as 90m, 4h, 3d or 2w"
_NEEDS_LEAD = "`why` needs a lead: its external id, email or CRM id"


class _Malformed(Exception):
    """Raised inside the parser with the sentence `Help.problem` will carry."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def parse_command(text: str, *, now: datetime, tz: ZoneInfo) -> Command:
    """Read the text after `/routing`; dates are in `tz`, relative to `now` (timezone-aware)."""
    if now.utcoffset() is None:
        raise ValueError("parse_command() needs a timezone-aware `now`")
    words = _TOKEN.findall(text)
    if not words:
        return Help()
    name, args = words[0].lower(), words[1:]
    try:
        match name:
            case "help":
                return Help()
            case "pto":
                return _pto(args, now=now, tz=tz)
            case "why":
                return _why(args)
            case "queue":
                _no_arguments(name, args)
                return Queue()
            case "digest":
                _no_arguments(name, args)
                return Digest()
            case _:
                raise _Malformed(
                    f"{_quote(words[0])} is not a `/routing` command; "
                    "try pto, why, queue, digest or help"
                )
    except _Malformed as malformed:
        return Help(malformed.problem)


def _pto(args: list[str], *, now: datetime, tz: ZoneInfo) -> Pto:
    user: str | None = None
    when: str | None = None
    back = False
    rest = iter(args)
    for word in rest:
        keyword = word.lower()
        if mention := _USER_MENTION.fullmatch(word):
            if user is not None and user != mention[1]:
                raise _Malformed("`pto` takes one person at a time, and you mentioned two")
            user = mention[1]
        elif word.startswith("@") and len(word) > 1:
            raise _Malformed(
                f"{_quote(word)} is plain text; pick the person from Slack's autocomplete "
                "so that it becomes a mention"
            )
        elif keyword == "off":
            back = True
        elif keyword in ("until", "for"):
            value = next(rest, None)
            if value is None or not _is_when(value, duration_only=keyword == "for"):
                raise _Malformed(_NEEDS_DATE if keyword == "until" else _NEEDS_DURATION)
            when = _one_when(when, value)
        elif _is_when(word, duration_only=False):
            when = _one_when(when, word)
        elif _NUMBER.fullmatch(word):
            raise _Malformed(
                f"{_quote(word)} needs a unit (m, h, d or w), such as {_quote(word + 'd')}"
            )
        else:
            raise _Malformed(
                f"`pto` does not understand {_quote(word)}; "
                "try `pto until friday`, `pto for 3d` or `pto off`"
            )
    if back:
        if when is not None:
            raise _Malformed(
                f"`pto off` ends time off now, so it takes no date like {_quote(when)}"
            )
        return Pto(until=None, user=user, back=True)
    until = None if when is None else _resolve(when, now=now, tz=tz)
    return Pto(until=until, user=user)


def _one_when(seen: str | None, word: str) -> str:
    if seen is not None:
        raise _Malformed(
            f"give one end for your time off, not both {_quote(seen)} and {_quote(word)}"
        )
    return word


def _is_when(word: str, *, duration_only: bool) -> bool:
    if _DURATION.fullmatch(word):
        return True
    if duration_only:
        return False
    keyword = word.lower()
    return keyword == "tomorrow" or keyword in _WEEKDAYS or _DATE.fullmatch(word) is not None


def _resolve(word: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    today = local.date()
    keyword = word.lower()
    if duration := _DURATION.fullmatch(word):
        return _after(duration[1], duration[2].lower(), word, local=local, tz=tz)
    if keyword == "tomorrow":
        return _start_of(today + timedelta(days=1), tz)
    if keyword in _WEEKDAYS:
        days_ahead = (_WEEKDAYS[keyword] - today.weekday()) % 7 or 7
        return _start_of(today + timedelta(days=days_ahead), tz)
    found = _DATE.fullmatch(word)
    assert found is not None, word  # _is_when() admitted only these forms
    try:
        day = date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        raise _Malformed(
            f"{_quote(word)} is not a date; write it as year-month-day, such as 2026-12-01"
        ) from None
    if day < today:
        raise _Malformed(f"{_quote(word)} is in the past; give the day you will be back")
    if day == today:
        raise _Malformed(
            f"{_quote(word)} is today; give the day you will be back, such as tomorrow"
        )
    if day > today + _MAX_AHEAD:
        raise _too_far(word)
    return _start_of(day, tz)


def _after(amount: str, unit: str, word: str, *, local: datetime, tz: ZoneInfo) -> datetime:
    # Compared as digits first: a pasted 5,000-digit number must not reach int() or timedelta.
    significant = amount.lstrip("0")
    if not significant:
        raise _Malformed(f"{_quote(word)} is no time at all; give a duration such as 3d")
    if len(significant) > 6 or int(significant) * _UNIT_MINUTES[unit] > _MAX_AHEAD_DAYS * 24 * 60:
        raise _too_far(word)
    count = int(significant)
    if unit in ("d", "w"):
        # Days keep the wall clock: out at 10:00 "for 3d" is back at 10:00, even across a change
        # of offset. Adding to a datetime in a ZoneInfo is wall-clock arithmetic, then normalised
        # so a time skipped by the change lands on the real instant after it.
        days = count * 7 if unit == "w" else count
        return _normalised(local + timedelta(days=days), tz)
    # Minutes and hours count real time.
    minutes = count * _UNIT_MINUTES[unit]
    return (local.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(tz)


def _start_of(day: date, tz: ZoneInfo) -> datetime:
    # Where midnight is skipped (America/Santiago in September) this is the first real moment.
    return _normalised(datetime.combine(day, time(), tzinfo=tz), tz)


def _normalised(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(UTC).astimezone(tz)


def _too_far(word: str) -> _Malformed:
    return _Malformed(
        f"{_quote(word)} is more than a year away; time off can be set for at most a year"
    )


def _why(args: list[str]) -> Why:
    if not args:
        raise _Malformed(_NEEDS_LEAD)
    if len(args) > 1:
        raise _Malformed(f"`why` takes one lead, so {_quote(args[1])} is one word too many")
    lead = _unescape(_unwrap(args[0])).strip()
    if not lead:
        raise _Malformed(_NEEDS_LEAD)
    return Why(lead)


def _unwrap(word: str) -> str:
    escaped = _ESCAPED.fullmatch(word)
    if escaped is None:
        return word
    target, label = escaped[1], escaped[2]
    if target[:7].lower() == "mailto:":
        return target[7:]
    if target[:1] in ("@", "#", "!"):
        raise _Malformed(f"{_NEEDS_LEAD}, not a person or a channel")
    return label or target  # a link Slack made of an id that looked like a domain


def _unescape(value: str) -> str:
    return value.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _no_arguments(name: str, args: list[str]) -> None:
    if args:
        raise _Malformed(f"`{name}` takes nothing after it, so remove {_quote(args[0])}")


def _quote(word: str) -> str:
    # In a code span so mrkdwn shows it as typed; `<` escaped so a quoted `<!channel>` or `<@U1>`
    # cannot become a live mention, backticks dropped so they cannot close the span early.
    shown = " ".join(word.split())  # one line, however an escape's label was spaced
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    shown = shown.replace("`", "").replace("<", "&lt;").replace(">", "&gt;")
    return f"`{shown}`" if shown else "that"
