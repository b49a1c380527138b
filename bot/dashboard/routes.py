"""`/dashboard`, served by `leadrouter serve` beside the API, registered by `register`.

    GET  /dashboard                        the overview (?since=7d or ?from=…&to=…, ?by=rule)
    GET  /dashboard/                       303 to /dashboard, its query kept
    GET  /dashboard/fairness               each team's reps against their share
    GET  /dashboard/experiments            each experiment's arms compared
    GET  /dashboard/queue                  the unmatched queue
    GET  /dashboard/{overview,fairness,queue}.csv   each page's table
    GET  /dashboard/sign-in                Sign in with Slack, or the token form
    POST /dashboard/sign-in                the token form
    GET  /dashboard/sign-in/slack[/callback]        Sign in with Slack (`slack_sign_in`)
    POST /dashboard/sign-out               this session, or everywhere=1 all of its manager's
    GET  /dashboard/static/…               the stylesheet, the script and uPlot (no data)

Every page and CSV is behind `Access.guard` (`access`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from bot.bootstrap import App
from bot.dashboard.access import SIGN_IN, SIGN_OUT, SLACK_SIGN_IN, Access, hide_sign_in_codes
from bot.dashboard.figures import Figures
from bot.dashboard.pages import Pages
from bot.dashboard.render import STATIC_PATH, Renderer, redirect
from bot.dashboard.slack_sign_in import CALLBACK_PATH

STATIC = Path(__file__).parent / "static"


def register(
    http: web.Application,
    app: App,
    *,
    figures: Figures | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> None:
    """Add the dashboard's routes to `http`. Its overview and fairness pages show `figures`;
    without them (until the routing report is plugged in) they say the report is not available.
    `wall_clock` dates the sign-in cookies."""
    hide_sign_in_codes(logging.getLogger("aiohttp.access"))
    renderer = Renderer()
    access = Access(
        app.settings,
        policy=app.reader.policy,
        renderer=renderer,
        uow=app.uow,
        clock=wall_clock,
    )
    pages = Pages(
        renderer, figures=figures, queued_leads=app.reader.queued_leads, clock=app.reader.clock
    )
    guard = access.guard
    router = http.router
    router.add_get("/dashboard", guard(pages.overview))
    router.add_get("/dashboard/", _to_the_dashboard)  # a bookmark's trailing slash
    router.add_get("/dashboard/overview.csv", guard(pages.overview_csv, data=True))
    router.add_get("/dashboard/misroutes.csv", guard(pages.misroutes_csv, data=True))
    router.add_get("/dashboard/fairness", guard(pages.fairness))
    router.add_get("/dashboard/fairness.csv", guard(pages.fairness_csv, data=True))
    router.add_get("/dashboard/experiments", guard(pages.experiments))
    router.add_get("/dashboard/queue", guard(pages.queue))
    router.add_get("/dashboard/queue.csv", guard(pages.queue_csv, data=True))
    router.add_get(SIGN_IN, access.sign_in_page)
    router.add_post(SIGN_IN, access.sign_in_with_token)
    router.add_get(SLACK_SIGN_IN, access.start_slack_sign_in)
    router.add_get(CALLBACK_PATH, access.finish_slack_sign_in)
    router.add_post(SIGN_OUT, access.sign_out)
    router.add_static(STATIC_PATH, STATIC)


async def _to_the_dashboard(request: web.Request) -> web.Response:
    query = request.rel_url.raw_query_string
    return redirect(f"/dashboard?{query}" if query else "/dashboard")
