"""Durations as admins write them in the policy: "30s", "5m", "1h", "2d", or "1h30m"."""

from __future__ import annotations

import re

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)\s*([smhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[smhdw]\s*)+$")


class DurationError(ValueError):
    pass


def parse_duration(text: str | int) -> int:
    """Seconds in a duration; a bare integer is taken as seconds. Raises DurationError."""
    if isinstance(text, bool):
        raise DurationError(f"{text!r} is not a duration; write it like 30s, 5m, 1h or 2d")
    if isinstance(text, int):
        if text <= 0:
            raise DurationError(f"{text} is not a positive number of seconds")
        return text
    if not isinstance(text, str) or not _WHOLE.match(text.lower()):
        raise DurationError(f"{text!r} is not a duration; write it like 30s, 5m, 1h or 2d")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text.lower()))
    if seconds <= 0:
        raise DurationError(f"{text!r} is not a positive duration")
    return seconds


def format_duration(seconds: int | float) -> str:
    """The shortest readable form: 300 -> "5m", 5400 -> "1h 30m", 90061 -> "1d 1h"."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2])
