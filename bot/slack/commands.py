# Just over 400 lines: one grammar, the /routing command's, and its parser read best together.
"""The `/routing` slash command's text, parsed into one typed command.

Pure: no I/O and no clock. The handler passes `now` and the caller's Slack time zone, so a date
the user types ("friday", "Dec 24", "next monday", "2026-12-01") means the same day to the parser
as it does to them. Dates in words are read by dateparser, relative to that `now`; durations
("3d", "2 weeks") and the compact forms are read here. Anything the parser cannot use becomes
`Help` with a one-sentence `problem`; nothing the user types raises.

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
    "Versions",
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
class Versions:
    """`policy`: the policy versions; `policy activate VERSION`: make a stored one active."""

    activate: str | None = None


@dataclass(frozen=True, slots=True)
class Help:
    problem: str | None = None  # one mrkdwn sentence; None for plain `help` or empty text


Command = Pto | Why | Queue | Digest | Versions | Help

USAGE = """\
*`/routing` commands*
• `/routing pto` — you are out until further notice
• `/routing pto until Dec 24` — back on that day; also `tomorrow`, `next monday`, `2026-12-01`
• `/routing pto for 2 weeks` — out for a while: `90 minutes`, `4h`, `3 days`, `2w`
• `/routing pto off` — you are back
• `/routing pto until friday @bob` — managers: set or end someone else's time off
• `/routing why L-1042` — why a lead went where it did, by external id, email or CRM id
• `/routing queue` — your leads to claim, then those to contact (managers: the unmatched queue)
• `/routing digest` — managers: your teams' digest now (queue, SLA misses, who is out)
• `/routing policy` — managers: the policy versions, the active one first
• `/routing policy activate 3f2a9c1b` — managers: serve a stored version again (a rollback)
• `/routing help` — this list"""

_MAX_AHEAD_DAYS = 365
_MAX_AHEAD = timedelta(days=_MAX_AHEAD_DAYS)

# A `<...>` escape is one word even when its label has spaces (`<@U01BOB|Bob Smith>`).
_TOKEN = re.compile(r"<[^<>|\s]+(?:\|[^<>]*)?>|\S+")
_ESCAPED = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>", re.ASCII)
# re.ASCII: `\d` would otherwise accept any script's digits, which `int()` then reads as numbers.
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
# "3d", "90 minutes", "a week", "in 2 hrs": the amount and the unit's first letter.
_DURATION = re.compile(
    r"(?:in\s+)?(\d+|an?|one)\s*(m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)",
    re.ASCII | re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+", re.ASCII)
# 12/24, 24.12., 12/24/2026: day and month in either order, so only one reading may be a date.
_NUMERIC_DATE = re.compile(r"(\d{1,2})[/.](\d{1,2})(?:[/.](\d{4}|\d{2}))?\.?", re.ASCII)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MAX_PHRASE = 60  # characters: longer is not a date anyone types, and dateparser need not try

_WEEKDAYS = {
    name: index
    for index, full in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
    for name in (full, full[:3])
}
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}

_NEEDS_DATE = "`pto until` needs a date such as Dec 24, next monday or 2026-12-01"
_NEEDS_DURATION = "`pto for` needs a duration such as 90m, 4h, 3 days or 2 weeks"
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
            case "policy":
                return _versions(args)
            case _:
                raise _Malformed(
                    f"{_quote(words[0])} is not a `/routing` command; "
                    "try pto, why, queue, digest, policy or help"
                )
    except _Malformed as malformed:
        return Help(malformed.problem)


def _versions(args: list[str]) -> Versions:
    if not args:
        return Versions()
    if args[0].lower() != "activate" or len(args) > 2:
        raise _Malformed(
            "`policy` lists the versions; `policy activate VERSION` serves one of them again"
        )
    if len(args) == 1:
        raise _Malformed("say which version: `policy activate 3f2a9c1b`, as `policy` lists them")
    return Versions(activate=args[1])


def _pto(args: list[str], *, now: datetime, tz: ZoneInfo) -> Pto:
    user: str | None = None
    ends: list[tuple[str, str]] = []  # (`until`, `for` or "", the words of a date or duration)
    back = False
    index = 0
    while index < len(args):
        word = args[index]
        keyword = word.lower()
        index += 1
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
        else:
            # A date or a duration runs to the next mention or keyword: "until Dec 24 @bob".
            lead = keyword if keyword in ("until", "for") else ""
            start = index if lead else index - 1
            index = start
            while index < len(args) and not _ends_phrase(args[index]):
                index += 1
            phrase = " ".join(args[start:index])
            if not phrase:
                raise _Malformed(_NEEDS_DATE if lead == "until" else _NEEDS_DURATION)
            if ends:
                raise _Malformed(
                    f"give one end for your time off, not both {_quote(ends[0][1])} "
                    f"and {_quote(phrase)}"
                )
            ends.append((lead, phrase))
    if back:
        if ends:
            raise _Malformed(
                f"`pto off` ends time off now, so it takes no date like {_quote(ends[0][1])}"
            )
        return Pto(until=None, user=user, back=True)
    if not ends:
        return Pto(until=None, user=user)
    lead, phrase = ends[0]
    return Pto(until=_resolve(lead, phrase, now=now, tz=tz), user=user)


def _ends_phrase(word: str) -> bool:
    return (
        word.lower() in ("off", "until", "for")
        or _USER_MENTION.fullmatch(word) is not None
        or (word.startswith("@") and len(word) > 1)
    )


def _resolve(lead: str, phrase: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    """When someone out "until"/"for" `phrase` (or with no keyword) is back."""
    local = now.astimezone(tz)
    if _NUMBER.fullmatch(phrase) and lead != "until":
        raise _Malformed(
            f"{_quote(phrase)} needs a unit (m, h, d or w), such as {_quote(phrase + 'd')}"
        )
    if duration := _DURATION.fullmatch(phrase):
        amount = duration[1].lower()
        amount = "1" if amount in ("a", "an", "one") else amount
        return _after(amount, duration[2][0].lower(), phrase, local=local, tz=tz)
    if lead == "for":
        raise _Malformed(f"{_NEEDS_DURATION}, not {_quote(phrase)}")
    day = _day(phrase, today=local.date())
    if day is not None:
        return _start_of(_checked(day, phrase, today=local.date()), tz)
    if not _NUMBER.fullmatch(phrase):
        moment = _in_words(phrase, local=local, tz=tz)
        if moment is not None:
            return moment
    if lead == "until":
        raise _Malformed(f"{_NEEDS_DATE}, not {_quote(phrase)}")
    raise _Malformed(
        f"`pto` does not understand {_quote(phrase)}; "
        "try `pto until friday`, `pto for 3d` or `pto off`"
    )


def _day(phrase: str, *, today: date) -> date | None:
    """The day of the forms read here: tomorrow, a weekday, 2026-12-01, 12/24."""
    keyword = phrase.lower()
    if keyword == "tomorrow":
        return today + timedelta(days=1)
    if keyword in _WEEKDAYS:
        return today + timedelta(days=(_WEEKDAYS[keyword] - today.weekday()) % 7 or 7)
    if found := _DATE.fullmatch(phrase):
        try:
            return date(int(found[1]), int(found[2]), int(found[3]))
        except ValueError:
            raise _Malformed(
                f"{_quote(phrase)} is not a date; write it as year-month-day, such as 2026-12-01"
            ) from None
    if found := _NUMERIC_DATE.fullmatch(phrase):
        return _numeric_day(phrase, found, today=today)
    return None


def _numeric_day(phrase: str, found: re.Match[str], *, today: date) -> date:
    first, second, year = int(found[1]), int(found[2]), found[3]
    readings: list[date] = []
    for month, day in ((first, second), (second, first)):
        for candidate_year in (
            (int(year) + (2000 if len(year) == 2 else 0),) if year else (today.year, today.year + 1)
        ):
            try:
                candidate = date(candidate_year, month, day)
            except ValueError:
                continue
            if year or candidate > today:  # without a year: the next such day
                readings.append(candidate)
                break
    distinct = sorted(set(readings))
    if not distinct:
        raise _Malformed(
            f"{_quote(phrase)} is not a date; write it as year-month-day, such as 2026-12-01"
        )
    if len(distinct) > 1:
        one, other = distinct[:2]
        raise _Malformed(
            f"{_quote(phrase)} could be {one.day} {_MONTHS[one.month - 1]} or {other.day} "
            f"{_MONTHS[other.month - 1]}; name the month, such as "
            f"{_MONTHS[one.month - 1][:3]} {one.day}, or write {one.isoformat()}"
        )
    return distinct[0]


def _checked(day: date, phrase: str, *, today: date) -> date:
    if day < today:
        raise _Malformed(f"{_quote(phrase)} is in the past; give the day you will be back")
    if day == today:
        raise _Malformed(
            f"{_quote(phrase)} is today; give the day you will be back, such as tomorrow"
        )
    if day > today + _MAX_AHEAD:
        raise _too_far(phrase)
    return day


def _in_words(phrase: str, *, local: datetime, tz: ZoneInfo) -> datetime | None:
    """A date (or a day and time) in English words, read by dateparser from the caller's `now`:
    the start of that day, or that time. None when it reads no date in them."""
    if len(phrase) > _MAX_PHRASE:
        return None
    # Imported here: dateparser takes a fifth of a second to load, which only `pto` needs.
    from dateparser.date import DateDataParser

    parser = DateDataParser(
        languages=["en"],
        settings={
            "PREFER_DATES_FROM": "future",
            # Wall-clock time in the caller's zone, in and out: "5pm" is five in their afternoon.
            "RELATIVE_BASE": local.replace(tzinfo=None),
            "TIMEZONE": tz.key,
            "RETURN_AS_TIMEZONE_AWARE": False,
            "RETURN_TIME_AS_PERIOD": True,
            "PARSERS": ["relative-time", "absolute-time"],
        },
    )
    try:
        found = parser.get_date_data(phrase)
    except Exception:  # dateparser on arbitrary text: a failure here means "not a date"
        return None
    moment, period = found.date_obj, found.period
    if moment is None:
        return None
    if period == "time":
        back = _normalised(moment.replace(tzinfo=tz), tz)
        if back <= local:
            raise _Malformed(f"{_quote(phrase)} is in the past; give the time you will be back")
        if back > local + _MAX_AHEAD:
            raise _too_far(phrase)
        return back
    if period != "day":
        raise _Malformed(
            f"{_quote(phrase)} is not one day; give the day you will be back, "
            "such as next monday or Dec 1"
        )
    return _start_of(_checked(moment.date(), phrase, today=local.date()), tz)


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
    shown = shown.replace("`", "").strip().replace("<", "&lt;").replace(">", "&gt;")
    return f"`{shown}`" if shown else "that"
