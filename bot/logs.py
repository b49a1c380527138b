"""How `leadrouter serve` logs: one line per event, as text for people or as JSON for shippers.

    LOG_FORMAT=text   2026-11-17 17:15:00,123 INFO bot.service: lead L-1 routed: offered to ann ...
    LOG_FORMAT=json   {"time": "2026-11-17T17:15:00.123Z", "level": "INFO", "logger": "bot.service",
                       "message": "lead L-1 routed: offered to ann ...", "lead_id": "L-1"}

A line about one lead names it by its external id and carries it as `extra=about(lead_id)`,
which JSON gives its own key; never a contact detail (e-mail, phone, name) or a token. A
traceback stays inside its JSON object ("exception"), so every line is one object. An access
line carries its `request`, `status` and `duration_s` as fields of their own too.

Some libraries say at INFO what an operator never acts on; those lines are DEBUG here:
APScheduler's every run ("Running job ...", "... executed successfully") and start-up chatter,
Alembic's (all but the migrations it runs), and the access log's lines for health checks and
scrapes that answered 200 (a load balancer or Prometheus asks every few seconds). The same
requests failing stay at INFO.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEAD_ID = "lead_id"

# Routine INFO lines, logged at DEBUG: every line of these loggers (by name prefix), and the
# access log's lines of these requests when they answered 200.
_QUIET_LOGGERS = ("apscheduler",)
_QUIET_REQUESTS = ("GET /healthz ", "GET /metrics ")
# Libraries whose DEBUG lines are never written (see `configure_logging`).
_NEVER_DEBUG = ("slack_sdk", "slack_bolt", "aiosqlite")
# Alembic says at INFO, twice on every start, which database it talks to and how it does DDL.
_MIGRATION_LOGGER = "alembic.runtime.migration"
ACCESS_LOGGER = "aiohttp.access"  # its lines are written by `bot.http.forwarded.access_log`


def about(lead_id: str) -> dict[str, str]:
    """`extra=` for a line about one lead."""
    return {LEAD_ID: lead_id}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the lead's
    id and the traceback where there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        lead_id = getattr(record, LEAD_ID, None)
        if lead_id is not None:
            entry[LEAD_ID] = str(lead_id)
        entry |= _access_fields(record)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def _access_fields(record: logging.LogRecord) -> dict[str, object]:
    """An access line's request, status and duration as fields of their own, for a shipper to
    filter and chart on (aiohttp hands them over as the record's extras)."""
    if record.name != ACCESS_LOGGER:
        return {}
    fields: dict[str, object] = {}
    if (request := getattr(record, "first_request_line", None)) is not None:
        fields["request"] = str(request)
    if isinstance(status := getattr(record, "response_status", None), int):
        fields["status"] = status
    with contextlib.suppress(ValueError):  # a line without its duration has no such field
        fields["duration_s"] = float(getattr(record, "request_time_frac", ""))
    return fields


class _Demote(logging.Filter):
    """Logs the routine INFO lines of `_QUIET_LOGGERS` and `_QUIET_REQUESTS` as DEBUG: kept
    when LOG_LEVEL is DEBUG, dropped otherwise."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not _routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return self.level <= logging.DEBUG


def _routine(record: logging.LogRecord) -> bool:
    if record.name.startswith(_QUIET_LOGGERS):
        return True
    if record.name == _MIGRATION_LOGGER:  # which migration runs is news; the rest is not
        return not record.getMessage().startswith("Running upgrade")
    if record.name != ACCESS_LOGGER or getattr(record, "response_status", None) != 200:
        return False
    request_line = str(getattr(record, "first_request_line", ""))
    return request_line.startswith(_QUIET_REQUESTS)


def configure_logging(level: str, fmt: LogFormat | str, *, stream: TextIO | None = None) -> None:
    """Send every logger's lines at `level` and above to `stream` (stderr), as `fmt`. Replaces
    whatever handlers the root logger had, so calling it again reconfigures rather than doubles."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream)  # None: stderr
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_Demote(numeric))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Alembic names each of its plugins at INFO on every start: nothing an operator acts on.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Never their DEBUG lines, whatever LOG_LEVEL says: the Slack libraries' carry every card's
    # text and every request Slack sends (who a lead is, how to reach them); aiosqlite's are
    # two per SQLite call, hundreds per lead, burying the lines DEBUG is turned on for.
    for name in _NEVER_DEBUG:
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))
