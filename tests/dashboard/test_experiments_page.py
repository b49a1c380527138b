"""The experiments page in a real headless browser: each experiment's arms, as the report by arm
computed them from the database, and the sentences on whether their difference means anything."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import Browser

from bot.dashboard.figures import Window
from bot.policy_file import read_policy_text
from bot.service.offers import claim
from bot.service.report import refresh_report, report_rows
from routing.policy import Policy, parse_policy
from routing.report.arms import row_differences
from tests.bot.conftest import Clock
from tests.dashboard.conftest import BEARER, EXAMPLES, MakeDashboard, carded_lead
from tests.dashboard.test_browser import browser, problems
from tests.service.support import offers_of

__all__ = ["browser"]  # the fixture, shared with the other browser tests

EXPERIMENT = (
    "\nexperiments:\n"
    "  - name: smb-loads\n"
    "    share: 50\n"
    "    by: lead\n"
    "    team: smb\n"
    "    distribution: least_loaded\n"
)


@pytest.fixture
def policy() -> Policy:
    text = read_policy_text(EXAMPLES / "routing.yml") + EXPERIMENT
    return parse_policy(text, source="routing.yml")


async def test_a_browser_sees_each_arm_and_whether_the_difference_is_meaningful(
    browser: Browser, make_dashboard: MakeDashboard, clock: Clock
) -> None:
    dashboard = await make_dashboard()  # as `leadrouter serve` builds it
    app = dashboard.app
    for n in range(16):
        lead_id = f"S-{n}"
        await carded_lead(
            app,
            clock,
            {"id": lead_id, "email": f"buyer@s{n}.example", "country": "US", "employees": 20},
        )
    clock.advance(minutes=3)
    for n in range(0, 16, 2):
        offer = (await offers_of(app.db, f"S-{n}"))[-1]
        await claim(app.uow, f"S-{n}", by=offer.rep_id)
    clock.advance(minutes=20)  # the others' claim SLA lapses
    await refresh_report(app.uow)
    week = Window(clock() - timedelta(days=7), clock())
    rows = {row["group"]: row for row in await report_rows(app.uow, week, "arm")}
    control, candidate = rows["smb-loads/control"], rows["smb-loads/candidate"]
    assert control["leads"] + candidate["leads"] == 16
    page = await (await browser.new_context(extra_http_headers=BEARER)).new_page()
    complaints = problems(page)

    await page.goto(f"{dashboard.url}/dashboard/experiments?since=7d")

    section = page.locator("#experiment-smb-loads")
    assert await section.locator("h2").inner_text() == "Experiment smb-loads"
    arms = section.locator("table.arms tbody tr")
    assert await arms.count() == 2
    assert await arms.locator("th").all_inner_texts() == ["control", "candidate"]
    for index, row in enumerate((control, candidate)):
        cells = await arms.nth(index).locator("td").all_inner_texts()
        assert cells[0] == str(row["leads"])
        assert cells[4] == f"{row['claim_sla_met'] * 100:.1f}%"
    verdicts = await section.locator(".verdicts li").all_inner_texts()
    assert verdicts == [d.verdict for d in row_differences(control, candidate)]
    assert verdicts[1].startswith("claim SLA: ")
    assert await page.locator('nav a[aria-current="page"]').inner_text() == "Experiments"
    assert complaints == []


async def test_without_experiments_the_page_says_no_lead_took_part(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard()
    page = await (await browser.new_context(extra_http_headers=BEARER)).new_page()

    await page.goto(f"{dashboard.url}/dashboard/experiments")

    assert "No lead took part in an experiment in this window." in await page.content()


async def test_the_experiments_page_needs_signing_in(
    browser: Browser, make_dashboard: MakeDashboard
) -> None:
    dashboard = await make_dashboard()
    page = await (await browser.new_context()).new_page()

    await page.goto(f"{dashboard.url}/dashboard/experiments")

    assert page.url.startswith(f"{dashboard.url}/dashboard/sign-in?next=")
    assert "smb-loads" not in await page.content()
