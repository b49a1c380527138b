"""The dashboard's pages, each with its table as CSV: the overview (volume, speed, SLAs, misroute
signals and conversion by a grouping, with charts over time), fairness per team, the
experiments' arms compared (no CSV: the overview's, by arm, has their figures), and the
unmatched queue. Read-only: each page reads through the service layer's read side, nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from aiohttp import web

from bot.dashboard import charts
from bot.dashboard.access import Visitor
from bot.dashboard.figures import (
    DEFAULT_SINCE,
    GROUPINGS,
    BadWindow,
    FigureRow,
    Figures,
    Question,
    question_of,
)
from bot.dashboard.render import Renderer, csv_download
from routing.experiments import ARMS, CANDIDATE, CONTROL
from routing.money import left_out_sentence
from routing.report.arms import arms_of_rows, row_differences
from storage.models import LeadRow

QueuedLeads = Callable[[int], Awaitable[tuple[int, Sequence[LeadRow]]]]

NOT_AVAILABLE = "the routing report is not available yet, so there are no figures to export"
QUEUE_SHOWN = 200
QUEUE_CSV = 10_000


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # as `leadrouter report --json` names the figure (`bot.dashboard.figures`)
    heading: str
    kind: str  # how the page writes it: group, text, count, share, duration, per100, amount


_GROUP = (Column("group", "Group", "group"), Column("leads", "Leads", "count"))
_SPEED = (
    Column("time_to_card_p50_s", "To card p50", "duration"),
    Column("time_to_claim_p50_s", "To claim p50", "duration"),
    Column("time_to_claim_p90_s", "To claim p90", "duration"),
    Column("time_to_first_touch_p50_s", "To first touch p50", "duration"),
    Column("time_to_first_touch_p90_s", "To first touch p90", "duration"),
    Column("claim_sla_met", "Claim SLA met", "share"),
    Column("contact_sla_met", "Contact SLA met", "share"),
    Column("rejects_per_100", "Rejects per 100", "per100"),
    Column("reassignments_per_100", "Reassigned per 100", "per100"),
)
_VOLUME = (
    Column("assigned_share", "Assigned", "share"),
    Column("queued_share", "Queued", "share"),
    Column("nurture_share", "Nurture", "share"),
    Column("disqualified_share", "Disqualified", "share"),
    Column("unmatched_share", "Unmatched", "share"),
)
OVERVIEW = (*_GROUP, *_VOLUME, *_SPEED)  # the CSV's first columns, in this order
# The page shows them as two tables, each of a width a laptop shows whole: (id, heading, columns).
OVERVIEW_TABLES = (
    ("speed", "Speed and SLAs", (*_GROUP, *_SPEED)),
    ("overview", "Where the leads went", (*_GROUP, *_VOLUME)),
)
# The overview's charts over time, a line per group: speed to lead (to the claim, then to the
# first call, e-mail or meeting) and both SLAs kept. (id, title, figure, unit)
TRENDS = (
    ("time-to-claim", "Time to claim, median (minutes)", "time_to_claim_p50_s", "min"),
    (
        "time-to-first-touch",
        "Time to first touch, median (minutes)",
        "time_to_first_touch_p50_s",
        "min",
    ),
    ("claim-sla", "Claim SLA met (%)", "claim_sla_met", "%"),
    ("contact-sla", "Contact SLA met (%)", "contact_sla_met", "%"),
)
# Shares with their 95% Wilson interval: (share, low, high) keys.
CONVERSION = (
    ("conversion_rate", "conversion_ci_low", "conversion_ci_high"),
    ("win_rate", "win_ci_low", "win_ci_high"),
)
OVERVIEW_CSV = (
    *(column.key for column in OVERVIEW),
    "converted",
    *CONVERSION[0],
    "won",
    "lost",
    *CONVERSION[1],
    "pipeline",
    "won_amount",
    "currency",  # what the amounts are in (LEADROUTER_CURRENCY); empty when not named
    "amounts_left_out",  # opportunities whose amount was in another currency: in no sum
    "too_few",
)
# Misroute signals by reason: (the report's key, what the page calls it).
MISROUTE_SIGNALS = (
    ("rejects_per_100_by_reason", "rejected"),
    ("reassignments_per_100_by_reason", "reassigned"),
)
MISROUTES_CSV = ("group", "signal", "reason", "per_100")
# Why a lead was taken from a rep, as the report names it (`storage.stories.TAKEN_KINDS`), in the
# page's words, as the next rep's card says it (`bot.card`); a rep's reject reason is shown as they
# chose it (their note never: it is for the next rep and the lead's story).
TAKEN_WORDS = {
    "sla_missed": "Claim SLA missed",
    "rep_out_of_office": "Rep out of office",
    "reassigned": "Moved on from the rep",  # `offers.reassign`'s default kind: no cause kept
    "card_undeliverable": "Card could not reach the rep in Slack",
}
FAIRNESS_CSV = ("team", "rep", "leads", "share", "expected_share", "expected", "deviation")
QUEUE_CSV_COLUMNS = ("lead", "company", "source", "queue", "reason", "arrived_at", "waiting_s")


class Pages:
    def __init__(
        self,
        renderer: Renderer,
        *,
        figures: Figures | None,
        queued_leads: QueuedLeads,
        clock: Callable[[], datetime],
    ) -> None:
        self.renderer = renderer
        self.figures = figures
        self.queued_leads = queued_leads
        self.clock = clock

    # --- overview ------------------------------------------------------------------------------

    async def overview(self, request: web.Request, visitor: Visitor) -> web.Response:
        question, problem = self._question(request)
        rows: Sequence[FigureRow] = ()
        trends: list[charts.Chart] = []
        if question is not None and self.figures is not None:
            rows = await self.figures(question.window, question.by)
        if rows and question is not None and self.figures is not None:
            periods = [(p, await self.figures(p, question.by)) for p in question.window.periods()]
            groups = charts.group_names(rows)
            trends = [
                charts.trend(
                    chart_id,
                    title,
                    key=key,
                    unit=unit,
                    groups=groups,
                    periods=periods,
                    step=question.window.step,
                )
                for chart_id, title, key, unit in TRENDS
            ]
        return self._page(
            "overview.html",
            "Overview",
            visitor,
            question,
            problem,
            rows=rows,
            tables=OVERVIEW_TABLES,
            conversion=CONVERSION,
            misroutes=misroutes(rows),
            taken_words=TAKEN_WORDS,
            charts=[chart.as_json() for chart in trends],
            currency=next((row["currency"] for row in rows if row.get("currency")), None),
            left_out=amounts_left_out(rows),
        )

    async def overview_csv(self, request: web.Request, visitor: Visitor) -> web.Response:
        asked = self._csv_question(request)
        if isinstance(asked, web.Response):
            return asked
        question, figures = asked
        rows = await figures(question.window, question.by)
        name = f"overview-by-{question.by}-{question.label}"
        return csv_download(name, OVERVIEW_CSV, rows, at=self._dated(question))

    async def misroutes_csv(self, request: web.Request, visitor: Visitor) -> web.Response:
        asked = self._csv_question(request)
        if isinstance(asked, web.Response):
            return asked
        question, figures = asked
        rows = await figures(question.window, question.by)
        name = f"misroutes-by-{question.by}-{question.label}"
        return csv_download(name, MISROUTES_CSV, misroutes(rows), at=self._dated(question))

    # --- fairness ------------------------------------------------------------------------------

    async def fairness(self, request: web.Request, visitor: Visitor) -> web.Response:
        question, problem = self._question(request)
        teams = await self._teams(question) if question is not None else []
        return self._page(
            "fairness.html",
            "Fairness",
            visitor,
            question,
            problem,
            teams=teams,
            charts=[charts.fairness(team).as_json() for team in teams],
        )

    async def fairness_csv(self, request: web.Request, visitor: Visitor) -> web.Response:
        asked = self._csv_question(request)
        if isinstance(asked, web.Response):
            return asked
        teams = await self._teams(asked[0])
        rows = [{"team": team.get("team"), **rep} for team in teams for rep in team.get("reps", [])]
        name = f"fairness-{asked[0].label}"
        return csv_download(name, FAIRNESS_CSV, rows, at=self._dated(asked[0]))

    async def _teams(self, question: Question) -> list[Mapping[str, Any]]:
        if self.figures is None:
            return []
        everyone = await self.figures(question.window, "all")
        return list(everyone[0].get("fairness") or []) if everyone else []

    # --- experiments -------------------------------------------------------------------------

    async def experiments(self, request: web.Request, visitor: Visitor) -> web.Response:
        question, problem = self._question(request)
        experiments: list[dict[str, Any]] = []
        if question is not None and self.figures is not None:
            rows = await self.figures(question.window, "arm")
            for name, arms in arms_of_rows(rows).items():
                control, candidate = arms.get(CONTROL), arms.get(CANDIDATE)
                if control is not None and candidate is not None:
                    verdicts = [d.verdict for d in row_differences(control, candidate)]
                else:
                    missing = CONTROL if control is None else CANDIDATE
                    verdicts = [f"No lead in its {missing} arm in this window: nothing to compare."]
                shown = [(arm, arms[arm]) for arm in ARMS if arm in arms]
                experiments.append({"name": name, "arms": shown, "verdicts": verdicts})
        return self._page(
            "experiments.html", "Experiments", visitor, question, problem, experiments=experiments
        )

    # --- the unmatched queue -------------------------------------------------------------------

    async def queue(self, request: web.Request, visitor: Visitor) -> web.Response:
        size, oldest = await self.queued_leads(QUEUE_SHOWN)
        # The queue is the queue now, whatever the window; the window the manager came with is
        # kept in the links, for the other pages (one that cannot be read is dropped).
        question, _ = self._question(request)
        return self.renderer.page(
            "queue.html",
            title="Unmatched queue",
            page="queue",
            visitor=visitor,
            query=question.query if question else {},
            size=size,
            leads=self._queued(oldest, tz=visitor.tz),
        )

    async def queue_csv(self, request: web.Request, visitor: Visitor) -> web.Response:
        _, oldest = await self.queued_leads(QUEUE_CSV)
        rows = self._queued(oldest, tz=UTC)
        return csv_download("queue", QUEUE_CSV_COLUMNS, rows, at=self.clock())

    def _queued(self, leads: Sequence[LeadRow], *, tz: tzinfo) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {
                "lead": lead.external_id,
                "company": lead.company,
                "source": lead.source,
                "queue": lead.queue or "unmatched",
                "reason": lead.reason,
                "arrived_at": lead.created_at.astimezone(tz),
                "waiting_s": int((now - lead.created_at).total_seconds()),
            }
            for lead in leads
        ]

    # --- shared --------------------------------------------------------------------------------

    def _csv_question(self, request: web.Request) -> tuple[Question, Figures] | web.Response:
        """A CSV's question and the figures to answer it, or the refusal: a window the caller
        got wrong (400), or no report wired (503)."""
        question, problem = self._question(request)
        if question is None:
            return _refused(400, problem or "")
        if self.figures is None:
            return _refused(503, NOT_AVAILABLE)
        return question, self.figures

    def _dated(self, question: Question) -> datetime | None:
        """The day a file's name ends with: today's, unless its window names its own dates."""
        return None if "from" in question.query else self.clock()

    def _question(self, request: web.Request) -> tuple[Question | None, str | None]:
        try:
            return question_of(request.query, now=self.clock()), None
        except BadWindow as exc:
            return None, str(exc)

    def _page(
        self,
        template: str,
        title: str,
        visitor: Visitor,
        question: Question | None,
        problem: str | None,
        **context: Any,
    ) -> web.Response:
        return self.renderer.page(
            template,
            status=400 if problem else 200,
            title=title,
            page=template.removesuffix(".html"),
            visitor=visitor,
            question=question,
            query=question.query if question else {},
            problem=problem,
            available=self.figures is not None,
            groupings=GROUPINGS,
            default_since=DEFAULT_SINCE,
            **context,
        )


def misroutes(rows: Sequence[FigureRow]) -> list[dict[str, Any]]:
    """Each group's rejects and reassignments per 100 of its leads, by reason, most first."""
    return [
        {"group": row.get("group"), "signal": signal, "reason": reason, "per_100": per_100}
        for row in rows
        for key, signal in MISROUTE_SIGNALS
        for reason, per_100 in (row.get(key) or {}).items()
    ]


def _refused(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def amounts_left_out(rows: Sequence[FigureRow]) -> str | None:
    """The sentence under the amounts when some were in another currency (each lead is in one
    group, so the groups' counts add up); None when none was."""
    count = sum(row.get("amounts_left_out") or 0 for row in rows)
    return left_out_sentence(count) if count else None
