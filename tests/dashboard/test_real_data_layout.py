"""The dashboard in a real headless browser with what real teams bring it: rules named in a
sentence, a team of 26 reps, tables wider than a phone, the last day alone, a browser in Tokyo,
the token pasted on a phone. Each was seen wrong in a browser before it was put right."""

from __future__ import annotations

from collections.abc import Sequence

from playwright.async_api import Browser, Page

from bot.dashboard.figures import FigureRow, Window
from tests.dashboard.conftest import BEARER, MakeDashboard, queue_leads
from tests.dashboard.sample import SampleFigures, row
from tests.dashboard.test_browser import browser, problems
from tests.dashboard.test_layout import LAPTOP, PHONE, overflow

__all__ = ["browser"]  # the fixture, shared with the other browser tests


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
