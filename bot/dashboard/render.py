"""How the dashboard answers: HTML from Jinja2 templates that escape everything they are given (a
lead's company name is whatever a web form let someone type), CSV downloads, and the headers that
keep both in this origin and out of caches.

Jinja2 rather than string templates: escaping is on by default for every value, not remembered
at each one, and the layout is written once (`base.html`) and extended by each page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.files.tables import spreadsheet_text
from routing.durations import format_duration

if TYPE_CHECKING:
    from jinja2 import Environment

STATIC_PATH = "/dashboard/static/"
# Scripts and styles from this origin only (the charting library is served from the package), no
# inline script, nothing may frame the pages, and forms post back here only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Renderer:
    @cached_property
    def environment(self) -> Environment:
        # Imported here: Jinja2 costs ~50 ms to import, paid on the first page rather than at
        # every start of a server whose dashboard may never be opened.
        from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

        environment = Environment(
            loader=PackageLoader("bot.dashboard"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,  # a misspelt name fails the page, not shows nothing
            trim_blocks=True,
            lstrip_blocks=True,
        )
        environment.filters.update(FILTERS)
        return environment

    def page(self, template: str, *, status: int = 200, **context: Any) -> web.Response:
        html = self.environment.get_template(template).render(static=STATIC_PATH, **context)
        return web.Response(
            text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS
        )


def redirect(location: str) -> web.Response:
    """See other: the browser follows with a GET (also after a form's POST)."""
    return web.Response(status=303, headers={**SECURITY_HEADERS, "Location": location})


def csv_download(
    name: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], *, at: datetime | None
) -> web.Response:
    """A CSV file of `rows` under `columns`, to save as `leadrouter-{name}-{date}.csv` (the day
    `at`; just `leadrouter-{name}.csv` without it, for a name that has its dates): UTF-8 with a
    byte order mark, so that Excel shows accents; empty cells where a figure is None."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    filename = f"leadrouter-{name}-{at.date().isoformat()}.csv" if at else f"leadrouter-{name}.csv"
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode(),
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):  # to the second: a fraction only clutters a spreadsheet
        return value.isoformat(timespec="seconds")
    return spreadsheet_text(value) if isinstance(value, str) else str(value)


# --- how figures are written on a page (the CSV keeps them as they are) ------------------------

NO_DATA = "–"


# The group of the leads with no value for the grouping (no rule matched, no source given), named
# as the charts' legends and `leadrouter report` name it: a dash would read as "no data".
NO_GROUP = "(none)"


def figure(value: object, kind: str) -> str:
    """A figure as a page shows it; NO_DATA where there is none (never a made-up 0)."""
    if value is None:
        return NO_GROUP if kind == "group" else NO_DATA
    if kind in ("text", "group") or isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "duration":
        return _duration(value)
    if kind == "deviation":  # more (+) or fewer (-) leads than a share gives
        return f"{value:+.1f}"
    if kind in ("per100", "amount"):
        return f"{value:,.2f}" if kind == "amount" else f"{value:.1f}"
    return f"{value:,}"


def _duration(seconds: float) -> str:
    """To the second under ten minutes, where seconds still tell leads apart ("1m 35s")."""
    if seconds < 1:
        return "under 1s"
    if 60 <= seconds < 600 and int(seconds) % 60:
        return f"{int(seconds) // 60}m {int(seconds) % 60}s"
    return format_duration(seconds)


def interval(low: object, high: object) -> str:
    """A 95% interval of a share, "31.0–55.2%"; NO_DATA without one."""
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return NO_DATA
    return f"{low * 100:.1f}–{high * 100:.1f}%"


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z")


FILTERS = {"figure": figure, "interval": interval, "when": when, "duration": format_duration}
