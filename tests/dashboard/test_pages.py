"""The dashboard's pages and CSV files, read as a client reads them: the unmatched queue as
`/routing queue` has it, the overview and fairness pages as `serve` builds them (the routing
report of the test's database) and with SAMPLE figures plugged in (the tests' own, `sample.py`),
and, registered without a report, a page that says so instead of a figure. Past 400 lines: each
page's tests read the one app and SAMPLE fixture; a file per page would set them up again."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.dashboard.figures import BadWindow, Window, question_of
from bot.dashboard.render import figure
from bot.service.offers import reject
from bot.service.report import refresh_report, report_rows
from tests.bot.conftest import Clock
from tests.dashboard.conftest import BEARER, MakeDashboard, a_morning_reported, queue_leads
from tests.dashboard.sample import GROUPS, SampleFigures
from tests.service.support import offers_of

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)


async def get_csv(dashboard_client: object, path: str) -> list[dict[str, str]]:
    response = await dashboard_client.get(path, headers=BEARER)  # type: ignore[attr-defined]
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="leadrouter-')
    text = (await response.read()).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


# --- the unmatched queue ---------------------------------------------------------------------


async def test_the_queue_page_shows_the_unmatched_queue_oldest_first_escaped(
    make_dashboard: MakeDashboard, clock: Clock
) -> None:
    dashboard = await make_dashboard()
    await queue_leads(dashboard.app, {"id": "Q-1", "company": "<script>alert(1)</script> KK"})
    clock.advance(minutes=5)
    await queue_leads(dashboard.app, {"id": "Q-2", "source": "webinar"})
    clock.advance(minutes=10)
    response = await dashboard.client.get("/dashboard/queue", headers=BEARER)
    page = await response.text()
    assert response.status == 200
    assert "2 leads waiting." in page
    assert page.index("Q-1") < page.index("Q-2")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; KK" in page
    assert ">15m<" in page and ">10m<" in page  # how long each has waited
    # The same leads /routing queue lists.
    size, oldest = await dashboard.app.reader.queued_leads(10)
    assert size == 2 and [lead.external_id for lead in oldest] == ["Q-1", "Q-2"]


async def test_the_window_a_manager_chose_is_kept_through_the_queue_to_the_other_pages(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    await queue_leads(dashboard.app, {"id": "Q-1"})

    overview = await (
        await dashboard.client.get("/dashboard?since=30d&by=team", headers=BEARER)
    ).text()
    queue = await (
        await dashboard.client.get("/dashboard/queue?since=30d&by=team", headers=BEARER)
    ).text()
    unreadable = await dashboard.client.get("/dashboard/queue?since=soon", headers=BEARER)

    assert 'href="/dashboard/queue?since=30d&amp;by=team"' in overview
    assert 'href="/dashboard?since=30d&amp;by=team"' in queue
    assert 'href="/dashboard/fairness?since=30d&amp;by=team"' in queue
    assert 'href="/dashboard/queue.csv"' in queue  # the queue itself is the queue now
    # A window that cannot be read is no reason to refuse the queue: its links go without it.
    assert unreadable.status == 200
    assert 'href="/dashboard"' in await unreadable.text()


async def test_an_empty_queue_says_so(make_dashboard: MakeDashboard) -> None:
    dashboard = await make_dashboard()
    page = await (await dashboard.client.get("/dashboard/queue", headers=BEARER)).text()
    assert "The unmatched queue is empty." in page


async def test_the_queue_csv_has_each_queued_lead_and_defuses_spreadsheet_formulas(
    make_dashboard: MakeDashboard, clock: Clock
) -> None:
    dashboard = await make_dashboard()
    await queue_leads(dashboard.app, {"id": "Q-1", "company": '=HYPERLINK("http://x")'})
    clock.advance(hours=2)
    rows = await get_csv(dashboard.client, "/dashboard/queue.csv")
    assert rows == [
        {
            "lead": "Q-1",
            "company": '\'=HYPERLINK("http://x")',
            "source": "",
            "queue": "unmatched",
            "reason": rows[0]["reason"],
            "arrived_at": "2026-11-17T17:15:00+00:00",
            "waiting_s": "7200",
        }
    ]
    assert rows[0]["reason"]


async def test_the_queue_csv_dates_each_lead_to_the_second_for_a_spreadsheet(
    make_dashboard: MakeDashboard, clock: Clock
) -> None:
    dashboard = await make_dashboard()
    clock.advance(seconds=7.654321)
    await queue_leads(dashboard.app, {"id": "Q-1"})
    clock.advance(minutes=1)
    rows = await get_csv(dashboard.client, "/dashboard/queue.csv")
    assert [(row["arrived_at"], row["waiting_s"]) for row in rows] == [
        ("2026-11-17T17:15:07+00:00", "60")
    ]


# --- the overview and fairness, in production and with sample figures -----------------------


async def test_without_the_report_the_overview_says_it_is_not_available(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard(wall_clock=time.time)  # registered with no figures
    for path in ("/dashboard", "/dashboard/fairness"):
        page = await (await dashboard.client.get(path, headers=BEARER)).text()
        assert "The routing report is not available yet" in page
        assert "Sample" not in page and "<table" not in page
    for path in ("/dashboard/overview.csv", "/dashboard/fairness.csv"):
        response = await dashboard.client.get(path, headers=BEARER)
        assert response.status == 503
        assert "not available yet" in (await response.json())["error"]


async def test_as_serve_builds_it_the_overview_shows_the_report_of_the_database(
    make_dashboard: MakeDashboard, clock: Clock
) -> None:
    dashboard = await make_dashboard()  # as `leadrouter serve` builds it
    await a_morning_reported(dashboard.app, clock)

    response = await dashboard.client.get("/dashboard?since=7d&by=rule", headers=BEARER)

    page = await response.text()
    assert response.status == 200 and "not available" not in page
    for group in ("EMEA", "Small business", "(none)"):  # the queued lead matched no rule
        assert page.count(f"<td>{group}</td>") >= 2  # the figures and the conversion tables
    rows = await get_csv(dashboard.client, "/dashboard/overview.csv?since=7d&by=rule")
    expected = await report_rows(
        dashboard.app.uow, Window(clock() - timedelta(days=7), clock()), "rule"
    )
    assert [(r["group"], r["leads"], r["claim_sla_met"]) for r in rows] == [
        (row["group"] or "", str(row["leads"]), str(row["claim_sla_met"] or "")) for row in expected
    ]
    assert {r["group"]: r["leads"] for r in rows} == {"EMEA": "2", "Small business": "2", "": "1"}
    emea = expected[0]
    # Claimed after 3 minutes: a percentile is good to 1%, and printed to three digits.
    assert emea["time_to_claim_p50_s"] == pytest.approx(180, rel=0.02)
    claimed_in = figure(emea["time_to_claim_p50_s"], "duration")
    assert page.count(f"<td>{claimed_in}</td>") == 4  # p50 and p90 of each group's one claim


async def test_a_chart_with_no_figure_in_the_window_says_so_rather_than_stand_empty(
    make_dashboard: MakeDashboard, clock: Clock
) -> None:
    # The example policy sets no contact SLA, and nobody's first touch was told: those two
    # charts have nothing to draw, the claim charts have their points.
    dashboard = await make_dashboard()
    await a_morning_reported(dashboard.app, clock)

    page = await (await dashboard.client.get("/dashboard?since=7d", headers=BEARER)).text()

    empty = {
        chart: '<p class="note chart-empty">'
        in page[page.index(f'id="chart-{chart}"') :].split("</figure>")[0]
        for chart in ("time-to-claim", "time-to-first-touch", "claim-sla", "contact-sla")
    }
    assert empty == {
        "time-to-claim": False,
        "time-to-first-touch": True,
        "claim-sla": False,
        "contact-sla": True,
    }
    assert page.count("No lead of this window has this figure.") == 2


async def test_as_serve_builds_it_the_fairness_page_shows_each_teams_rotation(
    make_dashboard: MakeDashboard, clock: Clock
) -> None:
    dashboard = await make_dashboard()
    await a_morning_reported(dashboard.app, clock)

    rows = await get_csv(dashboard.client, "/dashboard/fairness.csv?since=7d")

    assert {(r["team"], r["rep"], r["leads"]) for r in rows} >= {
        ("smb", "carol", "1"),
        ("smb", "bob", "1"),
    }
    assert sum(int(r["leads"]) for r in rows) == 4


async def test_a_window_with_no_lead_says_so_once_with_no_empty_chart_or_table(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard()  # as `leadrouter serve` builds it, on a fresh database

    response = await dashboard.client.get("/dashboard?since=7d", headers=BEARER)

    page = await response.text()
    assert response.status == 200
    assert "No lead arrived in this window." in page
    assert "<table" not in page and 'class="chart"' not in page and "CSV" not in page
    assert "No lead of this window was rejected" not in page  # said once, above
    page = await (await dashboard.client.get("/dashboard/fairness", headers=BEARER)).text()
    assert "No team gave out a lead by rotation in this window." in page
    assert "<table" not in page and "CSV" not in page


async def test_the_overview_shows_each_group_with_its_figures_and_intervals(
    make_dashboard: MakeDashboard,
) -> None:
    figures = SampleFigures()
    dashboard = await make_dashboard(figures=figures)
    response = await dashboard.client.get("/dashboard?since=7d&by=rule", headers=BEARER)
    page = await response.text()
    assert response.status == 200
    for group in ("Sample rule A", "Sample rule B", "Sample rule &lt;C&gt;"):
        # The speed and the volume tables, its 3 misroute reasons, and the conversion table.
        assert page.count(f"<td>{group}</td>") == 6
    assert "<td>1m 35s</td>" in page and "<td>2m 30s</td>" in page  # to claim, p50
    assert "<td>10m</td>" in page  # and p90
    assert "<td>under 1s</td>" in page  # to card
    assert "<td>3.5–25.6%</td>" in page  # the conversion's 95% interval
    assert '<th scope="col">Nurture</th><th scope="col">Disqualified</th>' in page
    assert "<td>12.5%</td>" in page and "<td>0.0%</td>" in page  # nurtured, disqualified
    assert "<td>–</td>" in page  # no contact SLA figure: a dash, not a made-up 0
    assert page.count('class="too-few"') == 3  # Sample rule <C>, in all three tables
    # The whole window, then each of its 7 days, all by rule.
    windows = [window for window, _ in figures.asked]
    assert windows[0] == Window(datetime(2026, 11, 10, 17, 15, tzinfo=UTC), NOW)
    assert len(windows) == 8 and {by for _, by in figures.asked} == {"rule"}
    assert windows[1:] == windows[0].periods()


async def test_each_chart_has_its_figures_as_a_table_a_row_per_day_without_javascript(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    response = await dashboard.client.get("/dashboard?since=7d&by=rule", headers=BEARER)
    page = await response.text()

    charts = page.count('<figure class="chart"')
    assert charts >= 1 and page.count("<summary>The figures</summary>") == charts
    days = [(NOW - timedelta(days=n)).date().isoformat() for n in range(7, 0, -1)]
    for day in days:  # the first period starts 7 days before now, the last yesterday
        assert page.count(f'<th scope="row">{day}</th>') == charts
    assert '<th scope="col">Day</th><th scope="col">Sample rule A (min)</th>' in page
    # <C>'s leads were never touched: its first-touch column has the dash every table shows
    # where there is no figure (never a 0, nor another dash than the tables beside it).
    touch = page[page.index('id="chart-time-to-first-touch"') :].split("</figure>")[0]
    assert touch.count("<td>–</td>") == 7 and "—" not in touch


async def test_the_overview_csv_holds_the_figures_as_numbers_under_the_reports_names(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    rows = await get_csv(dashboard.client, "/dashboard/overview.csv?since=7d&by=team")
    assert [row["group"] for row in rows] == list(GROUPS)
    first = rows[0]
    assert first["leads"] == "210" and first["time_to_claim_p50_s"] == "60.0"
    assert first["conversion_ci_low"] == "0.0346" and first["contact_sla_met"] == "0.75"
    assert first["too_few"] == "false"


async def test_each_csv_is_named_for_its_window_so_two_downloads_never_clash(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    names = {}
    for path in (
        "/dashboard/overview.csv",
        "/dashboard/overview.csv?since=30d&by=team",
        "/dashboard/misroutes.csv?from=2026-11-01&to=2026-11-07",
        "/dashboard/fairness.csv?since=36h",
    ):
        response = await dashboard.client.get(path, headers=BEARER)
        assert response.status == 200
        names[path] = response.headers["Content-Disposition"]
    assert list(names.values()) == [
        'attachment; filename="leadrouter-overview-by-rule-7d-2026-11-17.csv"',
        'attachment; filename="leadrouter-overview-by-team-30d-2026-11-17.csv"',
        'attachment; filename="leadrouter-misroutes-by-rule-2026-11-01-to-2026-11-07.csv"',
        'attachment; filename="leadrouter-fairness-36h-2026-11-17.csv"',
    ]


async def test_the_fairness_page_and_csv_show_each_rep_against_their_share(
    make_dashboard: MakeDashboard,
) -> None:
    figures = SampleFigures()
    dashboard = await make_dashboard(figures=figures)
    page = await (await dashboard.client.get("/dashboard/fairness", headers=BEARER)).text()
    # A deviation is counted in leads, and the page says so wherever it shows one.
    assert "Sample team: 40 leads, largest deviation 4.0 leads" in page
    assert '<th scope="col">Expected leads</th><th scope="col">Deviation (leads)</th>' in page
    assert "<td>sample-ann</td><td>24</td><td>60.0%</td><td>50.0%</td>" in page
    # More (+) or fewer (-), as the page says and `leadrouter report` writes it.
    assert "<td>20.0</td><td>+4.0</td></tr>" in page
    assert "<td>20.0</td><td>-4.0</td></tr>" in page
    assert {by for _, by in figures.asked} == {"all"}
    rows = await get_csv(dashboard.client, "/dashboard/fairness.csv")
    assert [(r["team"], r["rep"], r["deviation"]) for r in rows] == [
        ("Sample team", "sample-ann", "4.0"),
        ("Sample team", "sample-bob", "-4.0"),
    ]


async def test_a_window_that_cannot_be_read_is_refused_with_a_sentence(
    make_dashboard: MakeDashboard,
) -> None:
    figures = SampleFigures()
    dashboard = await make_dashboard(figures=figures)
    response = await dashboard.client.get("/dashboard?since=forever", headers=BEARER)
    assert response.status == 400
    assert "since is a count of hours, days or weeks, such as 7d" in await response.text()
    response = await dashboard.client.get("/dashboard/overview.csv?by=colour", headers=BEARER)
    assert response.status == 400
    assert "by must be one of rule, team" in (await response.json())["error"]
    assert figures.asked == []


# --- reading a window ------------------------------------------------------------------------


def test_since_counts_back_from_now_in_hours_days_or_weeks() -> None:
    assert question_of({}, now=NOW).window == Window(NOW - timedelta(days=7), NOW)
    assert question_of({"since": "36h"}, now=NOW).window.since == NOW - timedelta(hours=36)
    assert question_of({"since": "2w"}, now=NOW).window.length == timedelta(weeks=2)


def test_from_and_to_are_whole_utc_days_both_included() -> None:
    question = question_of({"from": "2026-11-01", "to": "2026-11-07", "by": "team"}, now=NOW)
    assert question.window == Window(
        datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)
    )
    assert question.by == "team"
    assert question.query == {"from": "2026-11-01", "to": "2026-11-07", "by": "team"}


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"since": "0d"}, "since is a count"),
        ({"since": "7y"}, "since is a count"),
        ({"from": "2026-11-01"}, "give both from and to"),
        ({"from": "2026-11-01", "to": "2026-11-07", "since": "7d"}, "either since or from and to"),
        ({"from": "2026-11-07", "to": "2026-11-01"}, "must not be before"),
        ({"from": "yesterday", "to": "2026-11-01"}, "is not a date"),
        ({"since": "53w"}, "at most 366 days"),
        ({"since": "1000d"}, "at most 366 days"),
        ({"since": "999999999w"}, "at most 366 days"),
        ({"from": "9999-12-31", "to": "9999-12-31"}, "too far in the future"),
        ({"by": "colour"}, "by must be one of"),
    ],
)
def test_a_window_that_cannot_be_read_says_what_to_write(query: dict[str, str], says: str) -> None:
    with pytest.raises(BadWindow, match=says):
        question_of(query, now=NOW)


def test_the_longest_window_may_be_written_in_hours_days_or_weeks() -> None:
    for since in ("8784h", "366d", "52w"):
        assert question_of({"since": since}, now=NOW).window.length <= timedelta(days=366)


async def test_a_window_past_the_calendars_end_is_a_400_not_a_crash(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    for path in ("/dashboard", "/dashboard/overview.csv", "/dashboard/fairness.csv"):
        response = await dashboard.client.get(
            f"{path}?from=9999-12-31&to=9999-12-31", headers=BEARER
        )
        assert response.status == 400, path
        assert "to (9999-12-31) is too far in the future" in await response.text()


def test_a_month_is_charted_by_day_and_a_longer_window_by_week() -> None:
    month = Window(NOW - timedelta(days=31), NOW).periods()
    assert len(month) == 31 and all(p.length == timedelta(days=1) for p in month)
    quarter = Window(NOW - timedelta(days=90), NOW).periods()
    assert len(quarter) == 13 and quarter[-1].until == NOW
    assert quarter[-1].length == timedelta(days=6)  # the last week cut short at now


async def test_the_overview_lists_rejects_and_reassignments_by_reason_and_exports_them(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())
    response = await dashboard.client.get("/dashboard?since=7d&by=rule", headers=BEARER)
    page = await response.text()

    start = page.index('<table id="misroutes">')
    table = page[start : page.index("</table>", start)]
    assert table.count("<tr>") == 1 + 3 * 3  # the heading, then 3 reasons of each group
    assert "<td>Not my territory</td>" in table and "<td>4.4</td>" in table
    # Why the watchdog moved a lead, in words; the CSV keeps the report's name (`sla_missed`).
    assert "<td>Claim SLA missed</td>" in table and "<td>reassigned</td>" in table
    assert "<td>Sample rule &lt;C&gt;</td>" in table  # escaped, as every name
    rows = await get_csv(dashboard.client, "/dashboard/misroutes.csv?since=7d&by=rule")
    assert [(r["group"], r["signal"], r["reason"], r["per_100"]) for r in rows[:3]] == [
        ("Sample rule A", "rejected", "Not my territory", "4.44"),
        # A reason a spreadsheet would run as a formula is written as text.
        ("Sample rule A", "rejected", "'=cmd|' /C calc'!A0", "2.22"),
        ("Sample rule A", "reassigned", "sla_missed", "3.33"),
    ]
    assert len(rows) == 9


async def test_a_reject_in_the_database_shows_by_its_reason_and_none_says_so(
    make_dashboard: MakeDashboard, clock: Clock
) -> None:
    dashboard = await make_dashboard()  # as `leadrouter serve` builds it
    await a_morning_reported(dashboard.app, clock)
    page = await (await dashboard.client.get("/dashboard?since=7d", headers=BEARER)).text()
    assert 'id="no-misroutes"' in page and 'id="misroutes"' not in page

    offer = (await offers_of(dashboard.app.db, "E-2"))[-1]
    await reject(dashboard.app.uow, "E-2", by=offer.rep_id, reason="Not my territory")
    await refresh_report(dashboard.app.uow)

    rows = await get_csv(dashboard.client, "/dashboard/misroutes.csv?since=7d&by=rule")
    # One reject of EMEA's two leads: 50 per 100.
    assert rows == [
        {"group": "EMEA", "signal": "rejected", "reason": "Not my territory", "per_100": "50.0"}
    ]
    page = await (await dashboard.client.get("/dashboard?since=7d", headers=BEARER)).text()
    assert "<td>Not my territory</td>" in page and "<td>50.0</td>" in page


def test_every_way_a_lead_is_taken_from_a_rep_has_words_on_the_page() -> None:
    from bot.dashboard.pages import TAKEN_WORDS
    from storage.stories import TAKEN_KINDS

    assert set(TAKEN_WORDS) == set(TAKEN_KINDS)


async def test_the_conversion_table_shows_the_lost_deals_a_win_rate_is_taken_over(
    make_dashboard: MakeDashboard, clock: Clock
) -> None:
    # A win rate is won / (won + lost): the deals still open count in neither. With the lost
    # deals beside the won ones, a manager can see why 1 won of 3 converted is a 50% win rate.
    dashboard = await make_dashboard(figures=SampleFigures())

    page = await (await dashboard.client.get("/dashboard?since=7d&by=rule", headers=BEARER)).text()

    conversion = page[page.index('<table id="conversion">') :]
    headings = conversion[: conversion.index("</thead>")]
    assert '<th scope="col">Won</th><th scope="col">Lost</th><th scope="col">Win rate</th>' in (
        headings
    )
    first = conversion[
        conversion.index("<tbody>") : conversion.index("</tr>", conversion.index("<tbody>"))
    ]
    cells = [cell.split("</td>")[0] for cell in first.split("<td>")[1:]]
    # group, leads, converted, conversion, its interval, won, lost, win rate, its interval...
    assert cells[2:8] == ["3", "10.0%", "3.5–25.6%", "1", "1", "50.0%"]


# --- currencies --------------------------------------------------------------------------------


async def test_as_serve_builds_it_amounts_show_their_currency_and_those_left_out_are_counted(
    make_dashboard: MakeDashboard, clock: Clock
) -> None:
    from bot.service.outcomes import Reported, record_posted_events
    from routing.report import EventKind, OutcomeEvent

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

    page = await (await dashboard.client.get("/dashboard?since=7d&by=rule", headers=BEARER)).text()
    rows = await get_csv(dashboard.client, "/dashboard/overview.csv?since=7d&by=rule")

    conversion = page[page.index('<table id="conversion">') :]
    assert '<th scope="col">Pipeline (EUR)</th>' in conversion
    assert '<th scope="col">Won amount (EUR)</th>' in conversion
    assert conversion.count("<td>4,200.00</td>") == 2  # EMEA's pipeline and won amount
    assert "9,999" not in page
    assert "1 amount in another currency left out of the sums" in page
    by_group = {row["group"]: row for row in rows}
    assert (by_group["EMEA"]["won_amount"], by_group["EMEA"]["currency"]) == ("4200.0", "EUR")
    assert by_group["Small business"]["won"] == "1"
    assert by_group["Small business"]["amounts_left_out"] == "1"
    assert by_group["Small business"]["pipeline"] == ""


async def test_without_a_currency_set_the_pipeline_has_no_code_and_nothing_is_said_left_out(
    make_dashboard: MakeDashboard,
) -> None:
    dashboard = await make_dashboard(figures=SampleFigures())

    page = await (await dashboard.client.get("/dashboard?since=7d&by=rule", headers=BEARER)).text()

    assert '<th scope="col">Pipeline</th>' in page and "<td>12,500.00</td>" in page
    assert "left out" not in page
