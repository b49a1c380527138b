"""The dashboard's pages as a manager sees them in a real headless browser, on a laptop and on a
phone: nothing they need lies off the screen, and an empty window says so once."""

from __future__ import annotations

from playwright.async_api import Browser, Page

from tests.dashboard.conftest import BEARER, MakeDashboard, queue_leads
from tests.dashboard.sample import SampleFigures
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
        assert await right_edge(page, ".who button") <= PHONE["width"], path
    # The charts are drawn as wide as the phone, not wider.
    await page.goto(f"{dashboard.url}/dashboard")
    await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '4'")
    for chart in await page.locator("figure.chart canvas").all():
        box = await chart.bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"]
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
