"""The dashboard in a real headless browser: Debian's Chromium, driven by Playwright (never a
browser of Playwright's own), against the dashboard and Slack's sign-in side on loopback ports.

Skipped, saying why, only where Chromium is not installed; `make test` installs it where it can
(as root, with apt), and under CI a missing browser fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from bot.dashboard.figures import Window
from bot.service.outcomes import Reported, record_posted_events
from bot.service.report import refresh_report, report_rows
from routing.report import EventKind, OutcomeEvent
from tests.bot.conftest import Clock
from tests.dashboard.conftest import (
    BEARER,
    MARIA,
    TOKEN,
    MakeDashboard,
    a_morning_reported,
    queue_leads,
)
from tests.dashboard.sample import GROUPS, SampleFigures
from tests.fakes.slack_sign_in import FakeSlackSignIn, Person

# What headless Chromium needs on these machines: no sandbox (it runs as root), no GPU, and
# none of the background connections a closed network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUEUED = ({"id": "Q-1", "company": "Kabushiki Widgets"}, {"id": "Q-2", "source": "webinar"})


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        why = (
            "Debian's chromium is not installed, so the dashboard's browser tests cannot run; "
            "`make test` installs it as root with apt (apt-get install chromium)"
        )
        if os.environ.get("CI"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


def problems(page: Page) -> list[str]:
    """What the page's scripts and policies complain of (a script error, a blocked resource)."""
    seen: list[str] = []
    page.on(
        "console", lambda message: seen.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


async def chart(page: Page, chart_id: str) -> dict[str, Any]:
    """What uPlot drew for a chart: its x values, its series' labels and values as drawn, and how
    many pixels of its canvas are painted."""
    result: dict[str, Any] = await page.evaluate(
        """(id) => {
            const u = window.leadrouterCharts[id];
            const data = u.ctx.getImageData(0, 0, u.ctx.canvas.width, u.ctx.canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i]) painted++;
            return {
                x: u.data[0].length,
                series: u.series.slice(1).map((s) => s.label),
                values: u.data.slice(1),
                painted,
            };
        }""",
        chart_id,
    )
    return result


async def test_with_the_bearer_token_a_browser_sees_the_queue_and_the_charts(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    await queue_leads(dashboard.app, *QUEUED)
    context = await browser.new_context(extra_http_headers=BEARER)
    page = await context.new_page()
    complaints = problems(page)

    await page.goto(f"{dashboard.url}/dashboard/queue")
    rows = page.locator("#queue tbody tr")
    assert await rows.count() == 2
    assert await rows.nth(0).locator("td").all_inner_texts() == [
        "Q-1",
        "Kabushiki Widgets",
        "",
        "unmatched",
        await rows.nth(0).locator("td").nth(4).inner_text(),
        "2026-11-17 17:15 UTC",
        "0s",
    ]
    assert await page.locator("#queue-size").inner_text() == "2 leads waiting."

    await page.goto(f"{dashboard.url}/dashboard?since=7d&by=rule")
    await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '4'")
    speed = await chart(page, "time-to-claim")
    assert speed["x"] == 7  # a point a day
    assert speed["series"] == list(GROUPS)  # one line per group, named as written
    assert speed["values"] == [[1.0] * 7, [2.5] * 7, [1.58] * 7]  # minutes, group by group
    assert speed["painted"] > 1000
    sla = await chart(page, "claim-sla")
    assert sla["values"] == [[95.0] * 7, [80.0] * 7, [90.0] * 7]
    # Speed to lead to the first touch, and the contact SLA: <C>'s leads were never touched, so
    # its line has no point rather than a made-up 0.
    touch = await chart(page, "time-to-first-touch")
    assert touch["series"] == list(GROUPS)
    assert touch["values"] == [[60.0] * 7, [90.0] * 7, [None] * 7]
    assert touch["painted"] > 1000
    contact = await chart(page, "contact-sla")
    assert contact["values"] == [[75.0] * 7, [50.0] * 7, [None] * 7]
    assert contact["painted"] > 1000
    captions = await page.locator("figure.chart figcaption").all_inner_texts()
    # Each says its unit and what a point stands for (a week's, past 31 days: test_layout).
    assert captions == [
        "Time to claim, median (minutes), day by day",
        "Time to first touch, median (minutes), day by day",
        "Claim SLA met (%), day by day",
        "Contact SLA met (%), day by day",
    ]
    assert await page.locator("#chart-time-to-claim .u-legend .u-label").first.inner_text() == (
        "Day"
    )
    legend = page.locator("#chart-time-to-claim .u-legend .u-label")
    assert "Sample rule <C>" in await legend.all_inner_texts()
    assert await page.locator("#overview tbody tr").count() == 3
    assert complaints == []


async def test_a_browser_sees_the_report_the_use_case_computed_from_the_database(
    browser: Browser, make_dashboard: MakeDashboard, clock: Clock
) -> None:
    dashboard = await make_dashboard()  # as `leadrouter serve` builds it
    await a_morning_reported(dashboard.app, clock)
    # The rep who claimed E-1 called it 2 minutes ago, as a sequencer tells `POST /events`.
    call = OutcomeEvent(EventKind.FIRST_TOUCH, clock() - timedelta(minutes=2))
    touched = await record_posted_events(
        dashboard.app.uow, [Reported("E-1", call, "outreach", "call-1", "call")]
    )
    assert touched.stored == 1
    await refresh_report(dashboard.app.uow)
    week = Window(clock() - timedelta(days=7), clock())
    expected = await report_rows(dashboard.app.uow, week, "rule")
    page = await (await browser.new_context(extra_http_headers=BEARER)).new_page()
    complaints = problems(page)

    await page.goto(f"{dashboard.url}/dashboard?since=7d&by=rule")
    await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '4'")

    rows = page.locator("#overview tbody tr")
    assert await rows.count() == len(expected) == 3
    for index, row in enumerate(expected):
        cells = await rows.nth(index).locator("td").all_inner_texts()
        assert cells[:2] == [row["group"] or "(none)", str(row["leads"])]
    speed = await chart(page, "time-to-claim")
    assert speed["x"] == 7 and speed["series"] == ["EMEA", "Small business", "(none)"]
    # Every lead arrived on the last day: the line of each group is that day's one point.
    emea, small, unmatched = speed["values"]
    assert emea[:6] == [None] * 6 and emea[6] == round(expected[0]["time_to_claim_p50_s"] / 60, 2)
    assert small[6] == round(expected[1]["time_to_claim_p50_s"] / 60, 2)
    assert unmatched == [None] * 7  # a queued lead is never claimed
    sla = await chart(page, "claim-sla")
    assert [values[6] for values in sla["values"]] == [100.0, 100.0, None]
    # Only E-1 was touched: EMEA's first-touch line has its point, the others none.
    touch = await chart(page, "time-to-first-touch")
    assert expected[0]["time_to_first_touch_p50_s"] is not None
    assert [values[6] for values in touch["values"]] == [
        round(expected[0]["time_to_first_touch_p50_s"] / 60, 2),
        None,
        None,
    ]
    # The example policy sets no contact SLA: its chart is drawn empty, never as 0%.
    contact = await chart(page, "contact-sla")
    assert contact["values"] == [[None] * 7] * 3
    assert complaints == []


async def test_a_browser_sees_amounts_in_the_currency_set_and_how_many_were_left_out(
    browser: Browser, make_dashboard: MakeDashboard, clock: Clock
) -> None:
    dashboard = await make_dashboard(currency="EUR")
    await a_morning_reported(dashboard.app, clock)
    won = clock() - timedelta(minutes=1)
    euros = OutcomeEvent(EventKind.WON, won, Decimal("4200.00"), currency="EUR")
    pounds = OutcomeEvent(EventKind.WON, won, Decimal("9999.00"), currency="GBP")
    await record_posted_events(
        dashboard.app.uow,
        [Reported("E-1", euros, "crm", "deal-1"), Reported("S-1", pounds, "crm", "deal-2")],
    )
    await refresh_report(dashboard.app.uow)
    page = await (await browser.new_context(extra_http_headers=BEARER)).new_page()
    complaints = problems(page)

    await page.goto(f"{dashboard.url}/dashboard?since=7d&by=rule")

    headings = await page.locator("#conversion thead th").all_inner_texts()
    assert headings[-2:] == ["Pipeline (EUR)", "Won amount (EUR)"]
    emea = await page.locator("#conversion tbody tr").nth(0).locator("td").all_inner_texts()
    assert (emea[0], emea[-2], emea[-1]) == ("EMEA", "4,200.00", "4,200.00")
    note = await page.locator("#amounts-left-out").inner_text()
    assert note.startswith("1 amount in another currency left out of the sums")
    assert "9,999" not in await page.content()
    assert complaints == []


async def test_a_manager_signs_in_with_slack_in_the_browser_and_lands_where_they_were_going(
    browser: Browser, make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn
) -> None:
    dashboard = await make_dashboard(token=None, sign_in=sign_in)
    await queue_leads(dashboard.app, *QUEUED)
    sign_in.signed_in_as = Person(MARIA[0], "Maria Lopez", MARIA[1])
    context = await browser.new_context()
    page = await context.new_page()
    complaints = problems(page)

    await page.goto(f"{dashboard.url}/dashboard/queue")
    assert page.url == f"{dashboard.url}/dashboard/sign-in?next=%2Fdashboard%2Fqueue"
    assert await page.locator("#queue").count() == 0
    await page.click("#sign-in-with-slack")
    await page.wait_for_url(f"{dashboard.url}/dashboard/queue")
    assert await page.locator("#queue tbody tr").count() == 2
    assert await page.locator(".who span").inner_text() == "Maria Lopez"
    (session,) = [c for c in await context.cookies() if c["name"] == "leadrouter_dashboard"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and not session["secure"]
    assert [call.method for call in sign_in.calls] == [
        "authorize",
        "openid.connect.token",
        "openid.connect.userInfo",
    ]
    assert complaints == []


async def signed_in_with_slack(browser: Browser, url: str) -> Page:
    """A new browser where the fake Slack's person signed in, on the queue page."""
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{url}/dashboard/queue")
    await page.click("#sign-in-with-slack")
    await page.wait_for_url(f"{url}/dashboard/queue")
    return page


async def test_a_session_copied_to_another_browser_is_refused_there_once_signed_out_here(
    browser: Browser, make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn
) -> None:
    dashboard = await make_dashboard(token=None, sign_in=sign_in)
    sign_in.signed_in_as = Person(MARIA[0], "Maria Lopez", MARIA[1])
    here = await signed_in_with_slack(browser, dashboard.url)
    complaints = problems(here)
    copied = [c for c in await here.context.cookies() if c["name"] == "leadrouter_dashboard"]
    there = await browser.new_context()
    await there.add_cookies(copied)  # type: ignore[arg-type]  # the cookies as read back
    elsewhere = await there.new_page()
    await elsewhere.goto(f"{dashboard.url}/dashboard/queue")
    assert elsewhere.url == f"{dashboard.url}/dashboard/queue"

    await here.click("#sign-out")
    await here.wait_for_url(f"{dashboard.url}/dashboard/sign-in")

    await elsewhere.goto(f"{dashboard.url}/dashboard/queue")
    assert elsewhere.url == f"{dashboard.url}/dashboard/sign-in?next=%2Fdashboard%2Fqueue"
    assert complaints == []


async def test_sign_out_everywhere_signs_the_manager_out_of_their_other_browsers(
    browser: Browser, make_dashboard: MakeDashboard, sign_in: FakeSlackSignIn
) -> None:
    dashboard = await make_dashboard(token=None, sign_in=sign_in)
    sign_in.signed_in_as = Person(MARIA[0], "Maria Lopez", MARIA[1])
    laptop = await signed_in_with_slack(browser, dashboard.url)
    phone = await signed_in_with_slack(browser, dashboard.url)
    complaints = problems(laptop)

    await laptop.click("#sign-out-everywhere")
    await laptop.wait_for_url(f"{dashboard.url}/dashboard/sign-in")

    await phone.reload()
    assert phone.url == f"{dashboard.url}/dashboard/sign-in?next=%2Fdashboard%2Fqueue"
    assert complaints == []


async def test_the_token_form_signs_in_shows_each_teams_bars_and_sign_out_signs_out(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    page = await (await browser.new_context()).new_page()
    complaints = problems(page)

    await page.goto(f"{dashboard.url}/dashboard/fairness")
    await page.fill("#token", TOKEN)
    await page.click("form.token button")
    await page.wait_for_url(f"{dashboard.url}/dashboard/fairness")
    await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '1'")
    bars = await chart(page, "fairness-Sample team")
    assert bars["x"] == 2  # a bar per rep
    assert bars["series"] == ["Share of leads", "Expected share"]
    assert bars["values"] == [[60.0, 40.0], [50.0, 50.0]]
    assert bars["painted"] > 1000

    await page.click("#sign-out")
    await page.wait_for_url(f"{dashboard.url}/dashboard/sign-in")
    await page.goto(f"{dashboard.url}/dashboard/fairness")
    assert page.url.startswith(f"{dashboard.url}/dashboard/sign-in")
    assert complaints == []


async def test_a_table_downloads_as_csv(
    browser: Browser, make_dashboard: MakeDashboard, tmp_path: Path
) -> None:
    dashboard = await make_dashboard()
    await queue_leads(dashboard.app, *QUEUED)
    page = await (await browser.new_context(extra_http_headers=BEARER)).new_page()
    await page.goto(f"{dashboard.url}/dashboard/queue")
    async with page.expect_download() as started:
        await page.click("a.download")
    download = await started.value
    assert download.suggested_filename == "leadrouter-queue-2026-11-17.csv"
    saved = tmp_path / "queue.csv"
    await download.save_as(saved)
    lines = saved.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "lead,company,source,queue,reason,arrived_at,waiting_s"
    assert [line.split(",")[0] for line in lines[1:]] == ["Q-1", "Q-2"]


async def test_a_browser_not_signed_in_gets_the_sign_in_page_or_401_and_no_data(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    await queue_leads(dashboard.app, *QUEUED)
    page = await (await browser.new_context()).new_page()
    for path in ("/dashboard", "/dashboard/fairness", "/dashboard/queue"):
        response = await page.goto(f"{dashboard.url}{path}")
        assert response is not None and response.status == 200
        assert page.url.startswith(f"{dashboard.url}/dashboard/sign-in?next=")
        assert await page.locator("#token").count() == 1
        assert "Q-1" not in await page.content() and "Sample" not in await page.content()
    for path in ("/dashboard/queue.csv", "/dashboard/overview.csv"):
        response = await page.goto(f"{dashboard.url}{path}")
        assert response is not None and response.status == 401
        assert "Q-1" not in await page.content() and "Sample" not in await page.content()
