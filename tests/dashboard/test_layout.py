"""The dashboard's pages as a manager sees them in a real headless browser, on a laptop and on a
phone: nothing they need lies off the screen, and an empty window says so once."""

from __future__ import annotations

from collections.abc import Sequence

from playwright.async_api import Browser, Page

from bot.dashboard.figures import FigureRow, Window
from tests.dashboard.conftest import BEARER, MakeDashboard, queue_leads
from tests.dashboard.sample import SampleFigures, row
from tests.dashboard.test_browser import browser, problems

__all__ = ["browser"]  # the fixture, shared with the other browser tests

PAGES = ("/dashboard", "/dashboard/fairness", "/dashboard/experiments", "/dashboard/queue")
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}


async def overflow(page: Page) -> int:
    """How many pixels the page is wider than the screen (0: nothing to scroll sideways to)."""
    width: int = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


async def right_edge(page: Page, selector: str) -> float:
    box = await page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"]


async def test_on_a_phone_every_page_fits_the_screen_with_its_menu_and_sign_out_in_reach(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    await queue_leads(dashboard.app, {"id": "Q-1", "company": "Kabushiki Widgets"})
    context = await browser.new_context(viewport=PHONE, extra_http_headers=BEARER)
    page = await context.new_page()
    complaints = problems(page)

    for path in PAGES:
        await page.goto(f"{dashboard.url}{path}")
        if path == "/dashboard":
            await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '4'")
        assert await overflow(page) == 0, path
        for link in await page.locator("nav a").all():
            box = await link.bounding_box()
            assert box is not None and box["x"] + box["width"] <= PHONE["width"], path
        for button in ("#sign-out", "#sign-out-everywhere"):
            assert await right_edge(page, button) <= PHONE["width"], (path, button)
    # The charts are drawn as wide as the phone, not wider.
    await page.goto(f"{dashboard.url}/dashboard")
    await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '4'")
    for chart in await page.locator("figure.chart canvas").all():
        box = await chart.bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    # Each chart's table of figures, unfolded, scrolls inside its box, not the page.
    for figures in await page.locator("details.chart-figures").all():
        await figures.evaluate("details => { details.open = true; }")
    tables = await page.locator("details.chart-figures[open] table").all()
    assert len(tables) == 4
    for table in tables:  # wider than the phone or not, each can be scrolled to its last column
        scrolls = await table.evaluate("t => getComputedStyle(t.parentElement).overflowX")
        assert scrolls == "auto"
    assert await overflow(page) == 0
    assert complaints == []


async def test_on_a_laptop_the_overview_shows_every_sla_column_without_scrolling_sideways(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    context = await browser.new_context(viewport=LAPTOP, extra_http_headers=BEARER)
    page = await context.new_page()

    await page.goto(f"{dashboard.url}/dashboard")

    for table in await page.locator("main table").all():
        box = await table.bounding_box()
        assert box is not None and box["x"] + box["width"] <= LAPTOP["width"]
    headings = await page.locator("main table thead th").all_inner_texts()
    for heading in ("Claim SLA met", "Contact SLA met", "To claim p50", "Reassigned per 100"):
        assert heading in headings


async def test_the_window_form_keeps_the_window_asked_for_when_the_grouping_changes(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    page = await (await browser.new_context(extra_http_headers=BEARER)).new_page()

    # A window the list does not offer, written in the address: the form shows it and keeps it.
    await page.goto(f"{dashboard.url}/dashboard?since=36h&by=rule")
    assert await page.locator("select[name=since]").input_value() == "36h"
    await page.select_option("select[name=by]", "team")
    async with page.expect_navigation() as shown:
        await page.click("form.window button")
    response = await shown.value
    assert response is not None and response.status == 200
    assert "since=36h" in page.url and "by=team" in page.url
    assert "from 2026-11-16 05:15 UTC" in await page.locator(".window-dates").inner_text()

    # Every grouping the address takes is one the form offers, all the leads as one row too.
    await page.goto(f"{dashboard.url}/dashboard?since=7d&by=all")
    assert await page.locator("select[name=by]").input_value() == "all"

    # Dates: the form holds them, and changing the grouping keeps them.
    await page.goto(f"{dashboard.url}/dashboard?from=2026-11-01&to=2026-11-07")
    assert await page.locator("input[name=from]").input_value() == "2026-11-01"
    assert await page.locator("input[name=to]").input_value() == "2026-11-07"
    await page.select_option("select[name=by]", "source")
    async with page.expect_navigation() as shown:
        await page.click("form.window button")
    response = await shown.value
    assert response is not None and response.status == 200
    dates = await page.locator(".window-dates").inner_text()
    assert dates == "Leads that arrived from 2026-11-01 00:00 UTC to 2026-11-08 00:00 UTC."
    # A window picked from the list replaces the dates (the form clears them)...
    await page.select_option("select[name=since]", "30d")
    assert await page.locator("input[name=from]").input_value() == ""
    async with page.expect_navigation() as shown:
        await page.click("form.window button")
    response = await shown.value
    assert response is not None and response.status == 200
    assert "from 2026-10-18 17:15 UTC" in await page.locator(".window-dates").inner_text()
    # The links to the other pages carry the window, and no empty field.
    href = await page.locator("nav a", has_text="Fairness").get_attribute("href")
    assert href == "/dashboard/fairness?since=30d&by=source"
    # ...and dates typed in replace the window picked from the list.
    await page.fill("input[name=from]", "2026-11-02")
    await page.fill("input[name=to]", "2026-11-03")
    assert await page.locator("select[name=since]").input_value() == ""
    async with page.expect_navigation() as shown:
        await page.click("form.window button")
    response = await shown.value
    assert response is not None and response.status == 200
    dates = await page.locator(".window-dates").inner_text()
    assert dates == "Leads that arrived from 2026-11-02 00:00 UTC to 2026-11-04 00:00 UTC."


class SixGroups:
    """Figures of six groups, a line each: every colour the charts draw with."""

    async def __call__(self, window: Window, by: str) -> Sequence[FigureRow]:
        return [
            row(f"Sample group {n}", leads=40 - n, time_to_claim_p50_s=60.0 * (n + 1))
            for n in range(6)
        ]


def contrast_on_white(colour: str) -> float:
    """WCAG's contrast ratio of an "rgb(r, g, b)" or "#rrggbb" colour against white."""
    if colour.startswith("#"):
        channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    else:
        channels = [int(part) for part in colour[colour.index("(") + 1 : -1].split(",")[:3]]
    linear = [
        c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4
        for c in channels
    ]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


async def test_every_line_of_a_chart_stands_out_from_the_white_page(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SixGroups())
    page = await (await browser.new_context(extra_http_headers=BEARER)).new_page()
    await page.goto(f"{dashboard.url}/dashboard")
    await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '4'")

    strokes: list[str] = await page.evaluate(
        """() => {
            const u = window.leadrouterCharts["time-to-claim"];
            return u.series.slice(1).map((s, i) => s.stroke(u, i + 1));
        }"""
    )

    assert len(strokes) == 6
    for stroke in strokes:  # WCAG 2.1, 1.4.11: 3:1 for what a chart is read by
        assert contrast_on_white(stroke) >= 3, stroke


async def test_on_a_phone_the_queue_gives_each_reason_room_and_keeps_a_lead_id_whole(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard()
    await queue_leads(
        dashboard.app, {"id": "L-0001", "company": "Société Générale Technologies Internationales"}
    )
    context = await browser.new_context(viewport=PHONE, extra_http_headers=BEARER)
    page = await context.new_page()

    await page.goto(f"{dashboard.url}/dashboard/queue")

    # How tall each cell's text is (a cell itself is as tall as its row), and how wide the cell.
    text_heights, why_width, line = await page.evaluate(
        """() => {
            const cells = [...document.querySelectorAll("#queue tbody tr:first-child td")];
            const heights = cells.map((cell) => {
                const range = document.createRange();
                range.selectNodeContents(cell);
                return range.getBoundingClientRect().height;
            });
            const line = parseFloat(getComputedStyle(cells[0]).lineHeight);
            return [heights, cells[4].getBoundingClientRect().width, line];
        }"""
    )
    assert why_width >= 240  # read in a few lines, not a word a line down the screen
    assert text_heights[0] < line * 1.5  # the lead's id on one line
    assert text_heights[1] > line * 1.5  # where the company's long name wraps
    assert await overflow(page) == 0  # the table scrolls in its box, not the page


async def test_past_a_month_each_chart_says_a_point_is_a_week(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    page = await (await browser.new_context(extra_http_headers=BEARER)).new_page()

    await page.goto(f"{dashboard.url}/dashboard?since=90d")
    await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '4'")

    captions = await page.locator("figure.chart figcaption").all_inner_texts()
    assert captions[0] == "Time to claim, median (minutes), week by week"
    assert all(caption.endswith(", week by week") for caption in captions)
    legend = page.locator("#chart-claim-sla .u-legend .u-label").first
    assert await legend.inner_text() == "Week from"
