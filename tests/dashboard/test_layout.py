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


LONG_RULE = (
    "Every inbound lead from anywhere in the world that is not a student or a free email address"
)


class LongNames:
    """A rule named in a whole sentence, as policies name them, beside a short one."""

    async def __call__(self, window: Window, by: str) -> Sequence[FigureRow]:
        return [
            row(LONG_RULE, leads=125, time_to_claim_p50_s=255.0, claim_sla_met=0.69),
            row("EMEA", leads=40, time_to_claim_p50_s=120.0, claim_sla_met=0.9),
            row("content_download", leads=30, time_to_claim_p50_s=90.0, claim_sla_met=0.8),
        ]


async def test_a_group_named_in_a_long_sentence_wraps_in_the_legends_and_tables_of_the_page(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=LongNames())

    for viewport in (LAPTOP, PHONE):
        context = await browser.new_context(viewport=viewport, extra_http_headers=BEARER)
        page = await context.new_page()
        complaints = problems(page)
        await page.goto(f"{dashboard.url}/dashboard?since=7d&by=rule")
        await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '4'")

        assert await overflow(page) == 0, viewport  # no legend wider than the page
        for legend in await page.locator("figure.chart .u-legend").all():
            legend_box = await legend.bounding_box()
            figure_box = await legend.locator("xpath=ancestor::figure[1]").bounding_box()
            assert legend_box is not None and figure_box is not None
            assert legend_box["x"] + legend_box["width"] <= figure_box["x"] + figure_box["width"]
        if viewport is LAPTOP:  # every table's columns on the screen, the name wrapped
            for table in await page.locator("main table").all():
                box = await table.bounding_box()
                assert box is not None and box["x"] + box["width"] <= LAPTOP["width"]
        labels = page.locator("#chart-time-to-claim .u-legend .u-label")
        assert LONG_RULE in await labels.all_inner_texts()  # wrapped, never cut short
        # A name of one word is never broken inside it ("content_downloa" / "d").
        lines = await page.evaluate(
            """() => [...document.querySelectorAll("main table tbody td:first-child")]
                .filter((cell) => cell.textContent === "content_download")
                .map((cell) => {
                    const range = document.createRange();
                    range.selectNodeContents(cell);
                    const line = parseFloat(getComputedStyle(cell).lineHeight);
                    return Math.round(range.getBoundingClientRect().height / line);
                })"""
        )
        assert lines and set(lines) == {1}, viewport
        assert complaints == []
        await context.close()


REP_IDS = [
    "alexandra.konstantinopoulou",
    "bartholomew.featherstonehaugh",
    "chidi",
    "dmitri.vasilyevich.rachmaninoff",
    "jean-baptiste.de.la.fontaine",
    "lucia.fernandez.de.cordoba",
] + [f"rep-{n:02}" for n in range(20)]


class ManyReps:
    """One team of 26 reps, some with long ids, each given its share."""

    async def __call__(self, window: Window, by: str) -> Sequence[FigureRow]:
        reps = [
            {
                "rep": rep,
                "leads": 5,
                "share": 1 / len(REP_IDS),
                "expected_share": 1 / len(REP_IDS),
                "expected": 5.0,
                "deviation": 0.0,
            }
            for rep in REP_IDS
        ]
        team = {"team": "Inbound", "leads": 5 * len(REP_IDS), "max_deviation": 0.0, "reps": reps}
        return [row("all", leads=5 * len(REP_IDS), fairness=[team])]


async def bar_labels(page: Page, chart_id: str) -> dict[str, float | str]:
    """How the chart's rep labels are set (across or upright), the room each bar has, in CSS
    pixels, and how wide the widest label is, in the axis's font."""
    found: dict[str, float | str] = await page.evaluate(
        """(id) => {
            const u = window.leadrouterCharts[id];
            const figure = document.querySelector(`figure[data-chart="${id}"]`);
            const measure = document.createElement("canvas").getContext("2d");
            measure.font = getComputedStyle(figure).getPropertyValue("--axis-font").trim()
                || "12px sans-serif";
            const labels = u.data[0].map((x) => u.axes[0].values(u, [x], 0, 0, 0)[0]);
            return {
                set: figure.dataset.labels,
                slot: u.bbox.width / devicePixelRatio / u.data[0].length,
                widest: Math.max(...labels.map((label) => measure.measureText(label).width)),
            };
        }""",
        chart_id,
    )
    return found


async def test_a_team_of_many_reps_with_long_ids_has_its_labels_upright_not_run_together(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=ManyReps())

    for viewport in (LAPTOP, PHONE):
        context = await browser.new_context(viewport=viewport, extra_http_headers=BEARER)
        page = await context.new_page()
        complaints = problems(page)
        await page.goto(f"{dashboard.url}/dashboard/fairness")
        await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '1'")

        labels = await bar_labels(page, "fairness-Inbound")
        # Across, the widest would run into its neighbours: upright, each takes a line's height.
        assert labels["set"] == "upright", viewport
        assert float(labels["slot"]) >= 12, viewport  # a 12px line fits each bar's room
        # On a phone the bars are wider than the screen: they scroll in their box, not the page.
        plot = page.locator('figure[data-chart="fairness-Inbound"] .chart-plot')
        assert await plot.evaluate("p => getComputedStyle(p).overflowX") == "auto"
        # Every rep whole in the table under the chart.
        reps = await page.locator("table tbody tr td:first-child").all_inner_texts()
        assert reps == REP_IDS
        assert await overflow(page) == 0
        assert complaints == []
        await context.close()


async def test_a_team_of_two_reps_has_its_labels_across_under_their_bars(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    page = await (await browser.new_context(extra_http_headers=BEARER)).new_page()
    await page.goto(f"{dashboard.url}/dashboard/fairness")
    await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '1'")

    labels = await bar_labels(page, "fairness-Sample team")

    assert labels["set"] == "across"
    assert float(labels["widest"]) <= float(labels["slot"])


async def test_on_a_phone_a_wide_table_scrolled_to_its_last_column_still_names_each_row(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    await queue_leads(dashboard.app, {"id": "Q-1", "company": "Kabushiki Widgets"})
    context = await browser.new_context(viewport=PHONE, extra_http_headers=BEARER)
    page = await context.new_page()

    for path, table in (
        ("/dashboard", "#overview"),
        ("/dashboard", "#conversion"),
        ("/dashboard/queue", "#queue"),
    ):
        await page.goto(f"{dashboard.url}{path}")
        seen = await page.evaluate(
            """(selector) => {
                const table = document.querySelector(selector);
                const box = table.parentElement;
                box.scrollLeft = box.scrollWidth;  // to the last column, the pipeline, the wait
                const cell = table.querySelector("tbody tr td");
                window.scrollTo(0, window.scrollY + cell.getBoundingClientRect().top - 200);
                const at = cell.getBoundingClientRect();
                const x = at.left + at.width / 2;
                const found = document.elementFromPoint(x, at.top + at.height / 2);
                return {
                    scrolled: box.scrollLeft > 0,
                    left: at.left - box.getBoundingClientRect().left,
                    shown: cell.contains(found),
                    text: found ? found.textContent : null,
                };
            }""",
            table,
        )
        assert seen["scrolled"], (path, table)  # wider than the phone: it did scroll
        assert seen["left"] == 0, (path, table)  # the row's name stays at the box's left edge
        assert seen["shown"], (path, table, seen["text"])  # over the figures scrolled under it
    assert await overflow(page) == 0


async def test_the_last_day_alone_is_charted_over_that_day_not_years(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    page = await (await browser.new_context(extra_http_headers=BEARER)).new_page()

    await page.goto(f"{dashboard.url}/dashboard?since=1d")
    await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '4'")

    for chart_id in ("time-to-claim", "time-to-first-touch", "claim-sla", "contact-sla"):
        point, low, high = await page.evaluate(
            """(id) => {
                const u = window.leadrouterCharts[id];
                return [u.data[0][0], u.scales.x.min, u.scales.x.max];
            }""",
            chart_id,
        )
        # One point, the day's, in the middle of a day-wide axis (not 1,000 days of nothing).
        assert (point - low, high - point) == (43200, 43200), chart_id


async def test_in_tokyo_or_new_york_a_charts_days_are_the_utc_days_its_table_and_page_name(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    # The page gives its window in UTC and each chart's table of figures dates a point by its
    # UTC day; the chart under the pointer names the same day wherever the browser is.
    dashboard = await make_dashboard(figures=SampleFigures())

    for zone in ("Asia/Tokyo", "America/Los_Angeles"):
        context = await browser.new_context(timezone_id=zone, extra_http_headers=BEARER)
        page = await context.new_page()
        await page.goto(f"{dashboard.url}/dashboard?since=7d")
        await page.wait_for_function("document.documentElement.dataset.chartsDrawn === '4'")

        named = await page.evaluate(
            """() => {
                const u = window.leadrouterCharts["time-to-claim"];
                return u.data[0].map((x) => u.series[0].value(u, x, 0, 0));
            }"""
        )
        table = page.locator("#chart-time-to-claim details.chart-figures tbody th")
        assert named == await table.all_text_contents(), zone
        await context.close()


async def test_on_a_phone_the_token_form_has_room_to_type_and_a_one_line_button(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard()
    page = await (await browser.new_context(viewport=PHONE)).new_page()

    await page.goto(f"{dashboard.url}/dashboard/sign-in")

    button = await page.locator("form.token button").bounding_box()
    field = await page.locator("#token").bounding_box()
    line = await page.locator("form.token button").evaluate(
        "b => parseFloat(getComputedStyle(b).lineHeight)"
        " || parseFloat(getComputedStyle(b).fontSize) * 1.2"
    )
    assert button is not None and field is not None
    assert button["height"] < 2 * line  # "Sign in" on one line, not "Sign" above "in"
    assert field["width"] >= 200  # room to paste a 64-character token and see it went in
    # 16px or more: a phone zooms into a smaller field when it is touched.
    assert (
        await page.locator("#token").evaluate("i => parseFloat(getComputedStyle(i).fontSize)") >= 16
    )
    assert await overflow(page) == 0
