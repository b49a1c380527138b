"""A sales manager's week, end to end: what the digests tell Nora in Slack is what happened.

Twelve days of a sales floor are scripted on a clock the test moves: reps in Berlin and Los
Angeles, their manager in New York, leads by day, by night and at the weekend, claims, a reject,
SLA breaches, a rep out of office who comes back, a lead left in the unmatched queue, Slack down
at one digest's time, a `/routing digest` mid-week, and a restart of the app (a new bootstrap
over the same database file) across a digest's time. The clocks go back in Europe (25 October
2026) and in the US (1 November) in between.

The app runs as `serve` runs it, with the scheduler's part played here: the jobs `declare_jobs`
gives, each run when its trigger fires on the test's clock (the interval jobs on their interval
from start, the `at_start` ones at each start), and the outbox's Slack items carried out to the
fake Slack after every step. Every digest Nora receives is then read from the fake Slack's
recorded posts and checked against figures worked out here from the script alone; so are the
fairness figures of the dashboard and of each rep's App Home.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from bot.bootstrap import App, bootstrap
from bot.home import load_home
from bot.jobs import SWEEP, Job, declare_jobs
from bot.service.availability import set_back, set_out_of_office
from bot.service.digests import digest_now
from bot.service.intake import find_lead, intake
from bot.service.offers import assign, claim, reject
from bot.service.unit_of_work import UnitOfWork
from bot.settings import Settings
from bot.slack.assign import assignees_of
from bot.slack.blocks import Message
from bot.slack.digest import digest_message
from bot.slack.week import rep_week_lines
from routing.durations import format_duration
from routing.leads import parse_lead
from routing.policy import parse_policy
from routing.report.window import Window
from storage.db import open_database
from tests.bot.conftest import Clock
from tests.bot.test_slack_blocks import rich_as_mrkdwn
from tests.fakes.slack import Call, FakeSlack

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")

POLICY = """\
timezone: UTC
reps:
  - {id: lena, name: Lena Lang, slack: ULENA, timezone: Europe/Berlin, hours: "08:00-18:00"}
  - {id: jonas, name: Jonas Jung, slack: UJONAS, timezone: Europe/Berlin, hours: "08:00-18:00",
     capacity: 20}
  - {id: sam, name: Sam Soto, slack: USAM, timezone: America/Los_Angeles, hours: "08:00-17:00"}
  - {id: rosa, name: Rosa Ruiz, slack: UROSA, timezone: America/Los_Angeles, hours: "08:00-17:00"}
managers:
  - {id: nora, name: Nora Nash, slack: UNORA, timezone: America/New_York,
     digest: "0 9 * * mon-fri"}
teams:
  emea: {members: [lena, jonas], distribution: round_robin, manager: nora}
  west: {members: [sam, rosa], distribution: round_robin, manager: nora}
rules:
  - name: Europe
    when: {region: EMEA}
    assign: {team: emea}
  - name: Americas
    when: {region: NA}
    assign: {team: west}
fallback: {queue: unmatched}
sla: {default: 30m, max_reassignments: 1, check_every: 10m}
"""
SLA = timedelta(minutes=30)
SWEEP_EVERY = timedelta(minutes=10)
REPS = ("lena", "jonas", "sam", "rosa")  # in policy order
NAMES = {"lena": "Lena Lang", "jonas": "Jonas Jung", "sam": "Sam Soto", "rosa": "Rosa Ruiz"}
CAPACITY = {"jonas": 20}
TEAMS = {"emea": ("lena", "jonas"), "west": ("sam", "rosa")}
RULE_OF_COUNTRY = {"DE": ("Europe", "emea"), "US": ("Americas", "west")}
DIGEST_CRON = "0 9 * * mon-fri"

START = datetime(2026, 10, 22, 12, 0, tzinfo=UTC)  # Thursday, 08:00 in New York
END = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)  # Tuesday, 10:00 in New York
# The restart: the app stops just before Wednesday's 09:00 in New York and is back just after.
STOPPED = datetime(2026, 10, 28, 12, 58, tzinfo=UTC)
# Slack fails Friday's digest twice: it goes out with the sweep's next run, once Slack is back.
SLACK_BACK = datetime(2026, 10, 23, 13, 10, tzinfo=UTC)
RESTARTED = datetime(2026, 10, 28, 13, 4, tzinfo=UTC)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# --- what the test knows from its own script -----------------------------------------------------


@dataclass
class Offer:
    rep: str
    posted: datetime  # its card reached Slack: the claim SLA starts
    ended: datetime | None = None
    how: str | None = None  # claimed, missed, rejected, away

    @property
    def due(self) -> datetime:
        return self.posted + SLA


@dataclass
class Story:
    """One lead as the script made it happen."""

    id: str
    arrived: datetime
    country: str
    source: str
    company: str
    offers: list[Offer] = field(default_factory=list)
    queued: list[list[datetime | None]] = field(default_factory=list)  # [since, until) spans
    claimed_at: datetime | None = None

    @property
    def rule(self) -> str | None:
        ruled = RULE_OF_COUNTRY.get(self.country)
        return ruled[0] if ruled else None

    def holder_at(self, when: datetime) -> str | None:
        for offer in self.offers:
            if offer.posted <= when and (offer.ended is None or offer.ended > when):
                return offer.rep
            if offer.how == "claimed" and offer.posted <= when:
                return offer.rep
        return None

    def queued_at(self, when: datetime) -> bool:
        return any(s <= when and (u is None or u > when) for s, u in self.queued if s is not None)

    def claim_sla(self, now: datetime) -> str | None:
        """met, missed, pending or None (no card, no SLA), as a manager means it: an offer let
        lapse is a miss whatever came after; a claim by its offer's due time is met."""
        posted = [o for o in self.offers if o.posted <= now]
        if not posted:
            return None
        if any(o.how == "missed" and o.ended is not None and o.ended <= now for o in posted):
            return "missed"
        if self.claimed_at is not None and self.claimed_at <= now:
            held = next(o for o in posted if o.how == "claimed")
            return "met" if self.claimed_at <= held.due else "missed"
        return "missed" if posted[-1].due <= now else "pending"


@dataclass
class Absence:
    rep: str
    since: datetime
    until: datetime | None  # back
    reason: str


@dataclass
class Script:
    stories: dict[str, Story] = field(default_factory=dict)
    misses: list[tuple[datetime, str]] = field(default_factory=list)  # (when recorded, rep)
    absences: list[Absence] = field(default_factory=list)
    asked: list[tuple[datetime, Message]] = field(default_factory=list)  # /routing digest

    def open_offer(self, lead: str) -> Offer:
        offer = self.stories[lead].offers[-1]
        assert offer.ended is None, f"{lead} has no open offer in the script"
        return offer


# --- the app, run as `serve` runs it, on the test's clock ---------------------------------------


@dataclass
class Posted:
    at: datetime  # the test's clock when the outbox carried it out
    call: Call


class Floor:
    """The application over one SQLite file, its jobs fired as their triggers say on `clock`,
    its Slack items carried out to the fake Slack after every step."""

    def __init__(self, path: Path, slack: FakeSlack, clock: Clock, script: Script) -> None:
        self.path, self.slack, self.clock, self.script = path, slack, clock, script
        self.app: App | None = None
        self.started = clock.now
        self.jobs: list[Job] = []
        self.next_run: dict[str, datetime] = {}
        self.seen = 0
        self.posts: list[Posted] = []

    @property
    def uow(self) -> UnitOfWork:
        assert self.app is not None
        return self.app.uow

    async def start(self) -> None:
        """A new process: bootstrap over the same database file; the `at_start` jobs run."""
        db = open_database(f"sqlite+aiosqlite:///{self.path}")
        await db.create_tables()
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{self.path}",
            slack_bot_token=SecretStr("xoxb-test-token"),
            slack_signing_secret=SecretStr("slack-signing-secret-for-tests"),
            slack_api_url=self.slack.api_url,
        )
        self.app = bootstrap(settings, db=db, policy=parse_policy(POLICY), clock=self.clock)
        assert self.app.delivery is not None
        self.app.delivery.pace_s = 0.0  # Slack's pace is real seconds; this week's are not
        self.jobs = declare_jobs(self.app.policy)
        now = self.started = self.clock.now
        for job in self.jobs:
            self.next_run[job.name] = self._first_run(job, now)
        for job in self.jobs:
            if job.at_start:
                await job.call(self.uow)
        await self.deliver()

    async def stop(self) -> None:
        assert self.app is not None
        await self.deliver()
        await self.app.close()
        self.app = None

    def _first_run(self, job: Job, now: datetime) -> datetime:
        interval = _interval(job)
        if interval is not None:
            return now + interval
        fire: datetime | None = job.trigger.get_next_fire_time(None, now)
        assert fire is not None
        return fire.astimezone(UTC)

    def _following(self, job: Job, fired: datetime) -> datetime:
        interval = _interval(job)
        if interval is not None:
            return fired + interval
        fire: datetime | None = job.trigger.get_next_fire_time(fired, fired + timedelta(seconds=1))
        assert fire is not None
        return fire.astimezone(UTC)

    async def run_until(self, until: datetime) -> None:
        """Move the clock to `until`, running each job at each time its trigger fires on the
        way (the interval jobs first at an instant both fire, as they are declared first)."""
        assert self.app is not None
        while True:
            due = min(self.next_run.values())
            if due > until:
                break
            self.clock.now = due
            for job in self.jobs:
                if self.next_run[job.name] == due:
                    await job.call(self.uow)
                    self.next_run[job.name] = self._following(job, due)
                    if job.name == SWEEP:
                        self.record_misses(due)
            await self.deliver()
        self.clock.now = until

    def record_misses(self, swept: datetime) -> None:
        """What the sweep at `swept` did, as the script knows it: each open offer past its
        due time was missed by its rep."""
        for story in self.script.stories.values():
            offer = story.offers[-1] if story.offers else None
            if offer is not None and offer.ended is None and offer.due <= swept:
                offer.ended, offer.how = swept, "missed"
                self.script.misses.append((swept, offer.rep))

    async def deliver(self) -> None:
        assert self.app is not None and self.app.delivery is not None
        while await self.app.delivery.deliver_due():
            pass
        calls = self.slack.calls_to("chat.postMessage")
        for call in calls[self.seen :]:
            self.posts.append(Posted(self.clock.now, call))
        self.seen = len(calls)

    def digests(self) -> list[Posted]:
        return [post for post in self.posts if _key(post.call).startswith("digest:")]


def _interval(job: Job) -> timedelta | None:
    """An interval job's interval; the jobs of every minute (the report's refresh, the waiting
    outcome events) run with the sweep, every ten minutes, to keep twelve days quick: a report
    refreshed less often can only make the digest's figures harder to get right."""
    interval = getattr(job.trigger, "interval", None)
    if not isinstance(interval, timedelta):
        return None
    return max(interval, SWEEP_EVERY)


def _key(call: Call) -> str:
    metadata = call.params.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return str((metadata.get("event_payload") or {}).get("key", ""))


# --- the week's events, each done through the service layer as Slack's listeners do ----------


class Week:
    def __init__(self, floor: Floor, script: Script) -> None:
        self.floor, self.script = floor, script

    async def at(self, when: datetime) -> None:
        await self.floor.run_until(when)

    async def arrives(
        self,
        lead_id: str,
        when: datetime,
        *,
        country: str,
        source: str,
        to: str | None,
    ) -> None:
        """A lead arrives at `when`; `to`: the rep the script expects it offered to (None:
        queued)."""
        await self.at(when)
        company = f"{lead_id} GmbH" if country == "DE" else f"{lead_id} Inc"
        lead = parse_lead(
            {
                "id": lead_id,
                "email": f"buyer@{lead_id.lower()}.example",
                "company": company,
                "country": country,
                "source": source,
            }
        )
        result = await intake(self.floor.uow, lead)
        story = Story(lead_id, when, country, source, company)
        self.script.stories[lead_id] = story
        assert (result.lead.rep, result.lead.status) == (
            to,
            "offered" if to else "queued",
        ), f"{lead_id}: {result.lead.reason}"
        if to is None:
            story.queued.append([when, None])
        else:
            story.offers.append(Offer(to, when))
        await self.floor.deliver()

    async def claims(self, lead_id: str, when: datetime) -> None:
        await self.at(when)
        offer = self.script.open_offer(lead_id)
        result = await claim(self.floor.uow, lead_id, by=offer.rep)
        assert result.claimed, f"{offer.rep} could not claim {lead_id}"
        offer.ended, offer.how = when, "claimed"
        self.script.stories[lead_id].claimed_at = when
        await self.floor.deliver()

    async def rejects(self, lead_id: str, when: datetime, *, then: str | None) -> None:
        await self.at(when)
        offer = self.script.open_offer(lead_id)
        await reject(self.floor.uow, lead_id, by=offer.rep, reason="Not my territory")
        offer.ended, offer.how = when, "rejected"
        await self.moved_on(lead_id, when, then)

    async def moved_on(self, lead_id: str, when: datetime, then: str | None) -> None:
        """The lead went on to `then` (None: the queue) at `when`, as the product says."""
        view = await find_lead(self.floor.uow, lead_id)
        story = self.script.stories[lead_id]
        assert view.rep == then, f"{lead_id} went to {view.rep}, not {then}: {view.reason}"
        if then is None:
            assert view.status == "queued"
            story.queued.append([when, None])
        else:
            story.offers.append(Offer(then, when))
        await self.floor.deliver()

    async def lapses(self, lead_id: str, *, then: str | None) -> None:
        """The lead's open offer passes its SLA: the sweep after it moves it on to `then`."""
        offer = self.script.open_offer(lead_id)
        swept = _next_sweep(offer.due, started=self.floor.started)
        await self.at(swept)
        assert offer.how == "missed" and offer.ended == swept
        await self.moved_on(lead_id, swept, then)

    async def assigns(self, lead_id: str, when: datetime, *, to: str) -> None:
        """Nora picks a rep for a lead waiting in the unmatched queue."""
        await self.at(when)
        await assign(self.floor.uow, lead_id, rep_id=to, by="nora")
        story = self.script.stories[lead_id]
        story.queued[-1][1] = when
        story.offers.append(Offer(to, when))
        await self.floor.deliver()

    async def nora_asks(self, when: datetime) -> None:
        """`/routing digest`: Nora's digest now, as its listener draws it."""
        await self.at(when)
        policy = self.floor.uow.policy()
        digest = await digest_now(self.floor.uow, "nora")
        message = digest_message(
            digest, manager_tz=policy.managers["nora"].tz, assignees=assignees_of(policy)
        )
        self.script.asked.append((when, message))

    async def out(self, rep: str, when: datetime, reason: str) -> None:
        """The rep's "I'm out": away until further notice."""
        await self.at(when)
        await set_out_of_office(self.floor.uow, rep, until=None, reason=reason, by=rep)
        self.script.absences.append(Absence(rep, when, None, reason))
        await self.floor.deliver()

    async def back(self, rep: str, when: datetime) -> None:
        await self.at(when)
        await set_back(self.floor.uow, rep, by=rep)
        absence = next(a for a in self.script.absences if a.rep == rep and a.until is None)
        absence.until = when
        await self.floor.deliver()


def _next_sweep(due: datetime, *, started: datetime) -> datetime:
    """The first sweep at or after `due`: sweeps run every SWEEP_EVERY from the app's start."""
    sweeps = math.ceil((due - started).total_seconds() / SWEEP_EVERY.total_seconds())
    return started + sweeps * SWEEP_EVERY


# --- the script ---------------------------------------------------------------------------------


async def play_the_week(floor: Floor, script: Script) -> None:
    week = Week(floor, script)
    await floor.start()  # Thursday 22 October, 08:00 in New York

    # Friday 23 October. Berlin is on summer time (UTC+2) until Sunday.
    await week.arrives("L01", utc(10, 23, 7, 2), country="DE", source="web", to="lena")
    await week.claims("L01", utc(10, 23, 7, 12))
    await week.arrives("L02", utc(10, 23, 8, 2), country="DE", source="webinar", to="jonas")
    await week.claims("L02", utc(10, 23, 8, 22))
    # Slack is down at Nora's 09:00: her digest goes out at the first try after it is back,
    # and a lead that no rule matches has come into the queue meanwhile.
    await week.at(utc(10, 23, 12, 59))
    floor.slack.fail("chat.postMessage", status=503, times=2)
    await week.arrives("L02b", utc(10, 23, 13, 2), country="BR", source="web", to=None)
    await week.arrives("L03", utc(10, 23, 16, 32), country="US", source="web", to="sam")
    await week.claims("L03", utc(10, 23, 16, 37))
    await week.arrives("L04", utc(10, 23, 17, 2), country="US", source="web", to="rosa")
    await week.lapses("L04", then="sam")  # Rosa lets it lapse: her SLA miss
    await week.claims("L04", utc(10, 23, 17, 50))
    await week.arrives("L05", utc(10, 23, 22, 2), country="US", source="webinar", to="rosa")
    await week.rejects("L05", utc(10, 23, 22, 5), then="sam")
    await week.claims("L05", utc(10, 23, 22, 15))

    # The weekend: nobody works, leads wait in the queue.
    await week.arrives("L06", utc(10, 24, 11, 2), country="DE", source="web", to=None)
    await week.arrives("L07", utc(10, 24, 20, 2), country="US", source="partner", to=None)
    # Sunday night, after Europe's clocks went back: a lead no rule matches, left in the queue.
    await week.arrives("L08", utc(10, 25, 23, 32), country="BR", source="partner", to=None)

    # Monday 26 October. Berlin is on UTC+1 now, New York still on UTC-4.
    await week.arrives("L09", utc(10, 26, 7, 32), country="DE", source="web", to="lena")
    await week.claims("L09", utc(10, 26, 7, 47))
    await week.assigns("L06", utc(10, 26, 12, 2), to="lena")
    await week.claims("L06", utc(10, 26, 12, 12))
    # 09:30 in New York, just after Nora's Monday digest.
    await week.arrives("L10", utc(10, 26, 13, 32), country="DE", source="web", to="jonas")
    await week.claims("L10", utc(10, 26, 13, 40))
    await week.assigns("L07", utc(10, 26, 16, 2), to="sam")
    await week.claims("L07", utc(10, 26, 16, 22))

    # Tuesday 27 October: Lena is out sick.
    await week.out("lena", utc(10, 27, 7, 0), "sick")
    await week.arrives("L11", utc(10, 27, 7, 32), country="DE", source="web", to="jonas")
    await week.claims("L11", utc(10, 27, 7, 52))
    await week.arrives("L12", utc(10, 27, 8, 2), country="DE", source="webinar", to="jonas")
    await week.claims("L12", utc(10, 27, 8, 12))
    await week.arrives("L13", utc(10, 27, 18, 2), country="US", source="web", to="rosa")
    await week.claims("L13", utc(10, 27, 18, 22))

    # Wednesday 28 October: a deploy restarts the app across Nora's 09:00.
    await week.at(STOPPED)
    await floor.stop()
    floor.clock.now = RESTARTED
    await floor.start()
    await week.arrives("L14", utc(10, 28, 15, 2), country="DE", source="web", to="jonas")
    await week.lapses("L14", then=None)  # nobody else in EMEA: the queue
    await week.assigns("L14", utc(10, 28, 16, 2), to="jonas")
    await week.claims("L14", utc(10, 28, 16, 7))

    # Thursday 29 October: Lena is back.
    await week.back("lena", utc(10, 29, 9, 0))
    await week.arrives("L15", utc(10, 29, 10, 2), country="DE", source="web", to="lena")
    await week.claims("L15", utc(10, 29, 10, 17))
    await week.arrives("L16", utc(10, 29, 17, 2), country="US", source="web", to="sam")
    await week.claims("L16", utc(10, 29, 17, 27))
    await week.nora_asks(utc(10, 29, 20, 0))  # Thursday afternoon in New York
    await week.arrives("L17", utc(10, 29, 22, 2), country="US", source="webinar", to="rosa")
    await week.lapses("L17", then="sam")
    await week.claims("L17", utc(10, 29, 22, 45))

    # Friday 30 October.
    await week.arrives("L18", utc(10, 30, 15, 32), country="DE", source="web", to="jonas")
    await week.claims("L18", utc(10, 30, 15, 52))

    # The weekend; the US clocks go back on Sunday 1 November.
    await week.arrives("L19", utc(10, 31, 10, 2), country="DE", source="web", to=None)
    await week.arrives("L20", utc(11, 1, 18, 2), country="US", source="webinar", to=None)

    # Monday 2 November: New York on UTC-5, Nora's digest at 14:00 UTC.
    await week.arrives("L21", utc(11, 2, 8, 2), country="DE", source="web", to="lena")
    await week.claims("L21", utc(11, 2, 8, 32))
    await week.arrives("L22", utc(11, 2, 13, 32), country="DE", source="web", to="jonas")
    await week.claims("L22", utc(11, 2, 13, 50))
    # Three minutes before Nora's digest, after the report's last refresh.
    await week.arrives("L23", utc(11, 2, 13, 57), country="US", source="web", to=None)
    await week.assigns("L19", utc(11, 2, 15, 2), to="jonas")
    await week.claims("L19", utc(11, 2, 15, 22))
    await week.assigns("L20", utc(11, 2, 16, 2), to="rosa")
    await week.claims("L20", utc(11, 2, 16, 12))

    await week.at(END)


# --- what Nora should read ----------------------------------------------------------------------


def digest_ticks(start: datetime, end: datetime) -> list[datetime]:
    """Every 09:00 in New York on a weekday in (start, end], as instants."""
    ticks = []
    day = start.astimezone(NEW_YORK).date()
    while day <= end.astimezone(NEW_YORK).date():
        tick = datetime(day.year, day.month, day.day, 9, 0, tzinfo=NEW_YORK).astimezone(UTC)
        if day.weekday() < 5 and start < tick <= end:
            ticks.append(tick)
        day += timedelta(days=1)
    return ticks


def nyc(when: datetime) -> str:
    return when.astimezone(NEW_YORK).strftime("%a %H:%M %Z")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def rate(count: int, of: int) -> str:
    return "–" if of == 0 else f"{count / of:.0%}"


def sections(blocks: list[dict[str, Any]]) -> list[str]:
    """The text of each section, header and rich text block (this as the mrkdwn it stands for)."""
    return [
        rich_as_mrkdwn(block) if block["type"] == "rich_text" else block["text"]["text"]
        for block in blocks
        if block.get("type") in ("section", "header", "rich_text")
    ]


def expected_daily(
    script: Script, since: datetime, until: datetime, now: datetime
) -> dict[str, Any]:
    """The digest of [since, until) from the script: the misses of the period; the queue, loads
    and absences at `now`, when it went out."""
    queued = sorted(
        (s for s in script.stories.values() if s.queued_at(now)), key=lambda s: s.arrived
    )
    misses = {rep: 0 for rep in REPS}
    for when, rep in script.misses:
        if since <= when < until:
            misses[rep] += 1
    loads = {rep: 0 for rep in REPS}
    for story in script.stories.values():
        holder = story.holder_at(now)
        if holder is not None:
            loads[holder] += 1
    away = [a for a in script.absences if a.since <= now and (a.until is None or a.until > now)]
    return {"queued": queued, "misses": misses, "loads": loads, "away": away}


def daily_sections(script: Script, since: datetime, until: datetime, now: datetime) -> list[str]:
    """The digest's sections but the week's, for [since, until), read at `now`."""
    want = expected_daily(script, since, until, now)
    queued: list[Story] = want["queued"]
    if queued:
        head = (
            f"*Unmatched queue:* {plural(len(queued), 'lead')}, "
            f"oldest waiting {format_duration((now - queued[0].arrived).total_seconds())}"
        )
        lines = [head] + [
            f"*{s.id}* · {s.company} · {s.source} · "
            f"waiting {format_duration((now - s.arrived).total_seconds())}"
            for s in queued
        ]
    else:
        lines = ["*Unmatched queue:* empty"]
    missed = sorted(((rep, n) for rep, n in want["misses"].items() if n), key=lambda item: -item[1])
    if missed:
        total = sum(n for _, n in missed)
        lines.append(
            f"*SLA misses since {nyc(since)}:* {total}\n"
            + "\n".join(f"• {NAMES[rep]}: {n}" for rep, n in missed)
        )
    else:
        lines.append(f"*SLA misses since {nyc(since)}:* none")
    loads = []
    for rep in REPS:
        open_ = want["loads"][rep]
        cap = CAPACITY.get(rep)
        loads.append(
            f"• {NAMES[rep]}: {open_} (no cap)" if cap is None else f"• {NAMES[rep]}: {open_}/{cap}"
        )
    lines.append("*Open leads against capacity*\n" + "\n".join(loads))
    if want["away"]:
        lines.append(
            "*Out of office*\n"
            + "\n".join(f"• {NAMES[a.rep]} until further notice · {a.reason}" for a in want["away"])
        )
    else:
        lines.append("*Out of office:* nobody")
    return lines


@dataclass(frozen=True)
class WeekFigures:
    leads: int
    met: int
    charged: int  # met or missed
    claim_times: tuple[float, ...]  # seconds from arrival to claim
    queued: int
    unmatched: int


def week_figures(script: Script, since: datetime, until: datetime, now: datetime) -> WeekFigures:
    """The leads that arrived in [since, until), as things stood at `now`."""
    stories = [s for s in script.stories.values() if since <= s.arrived < until]
    status = [s.claim_sla(now) for s in stories]
    return WeekFigures(
        leads=len(stories),
        met=status.count("met"),
        charged=status.count("met") + status.count("missed"),
        claim_times=tuple(
            sorted(
                (s.claimed_at - s.arrived).total_seconds()
                for s in stories
                if s.claimed_at is not None and s.claimed_at <= now
            )
        ),
        queued=sum(s.queued_at(now) for s in stories),
        unmatched=sum(s.rule is None for s in stories),
    )


def nearest_rank_median(values: tuple[float, ...]) -> float:
    return values[max(1, math.ceil(0.5 * len(values))) - 1]


def managers_week(now: datetime) -> tuple[datetime, datetime]:
    """The week a Monday digest at `now` speaks of, and the one before, as Nora counts weeks:
    from the same wall time in New York seven days earlier."""
    local = now.astimezone(NEW_YORK)
    week_ago = local.replace(tzinfo=None) - timedelta(days=7)
    since = week_ago.replace(tzinfo=NEW_YORK).astimezone(UTC)
    before = (week_ago - timedelta(days=7)).replace(tzinfo=NEW_YORK).astimezone(UTC)
    return since, before


def check_week_line(text: str, script: Script, now: datetime) -> None:
    since, before_since = managers_week(now)
    this = week_figures(script, since, now, now)
    before = week_figures(script, before_since, since, now)
    change = (
        ("none the week before" if this.leads else "none the week before either")
        if before.leads == 0
        else f"{(this.leads - before.leads) / before.leads:+.0%} on the week before"
    )
    pattern = (
        re.escape(
            f"*This week:* {plural(this.leads, 'lead')} ({change}) · "
            f"claim SLA met {rate(this.met, this.charged)} "
            f"({rate(before.met, before.charged)} the week before) · "
            "claimed in "
        )
        + r"(?P<median>[^(]+) \(median\) · "
        + re.escape(
            f"queued {rate(this.queued, this.leads)} "
            f"(no rule matched {rate(this.unmatched, this.leads)})"
        )
    )
    found = re.fullmatch(pattern, text)
    assert found, f"the week's line reads\n  {text}\nbut the script says\n  {pattern}"
    median = nearest_rank_median(this.claim_times)
    shown = _seconds(found["median"])
    # The report keeps durations within 1%, and the line shows whole minutes.
    assert abs(shown - median) <= max(0.01 * median, 60), (found["median"], median)


def _seconds(duration: str) -> float:
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return float(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([dhms])", duration)))


def team_lines(script: Script, now: datetime) -> str:
    since, _ = managers_week(now)
    lines = []
    for team in ("emea", "west"):
        stories = [
            s
            for s in script.stories.values()
            if since <= s.arrived < now
            and s.offers
            and s.offers[0].posted == s.arrived
            and RULE_OF_COUNTRY.get(s.country, ("", ""))[1] == team
        ]
        status = [s.claim_sla(now) for s in stories]
        met, charged = status.count("met"), status.count("met") + status.count("missed")
        lines.append(
            f"• {team}: "
            + (
                "no lead"
                if not stories
                else f"{plural(len(stories), 'lead')}, claim SLA met {rate(met, charged)}"
            )
        )
    return "*Your teams' SLAs this week*\n" + "\n".join(lines)


def movers(script: Script, now: datetime, by: str) -> str:
    """The digest's three rules (or sources) whose leads changed most against the week before,
    most changed first (then this week's busiest, then by name), with their claim SLA when it
    moved."""
    since, before_since = managers_week(now)

    def group(story: Story) -> str | None:
        return story.rule if by == "rule" else story.source

    def of(start: datetime, end: datetime) -> dict[str | None, list[Story]]:
        groups: dict[str | None, list[Story]] = {}
        for story in script.stories.values():
            if start <= story.arrived < end:
                groups.setdefault(group(story), []).append(story)
        return groups

    this, before = of(since, now), of(before_since, since)

    def claim(stories: list[Story] | None) -> str:
        if stories is None:
            return "–"
        status = [s.claim_sla(now) for s in stories]
        return rate(status.count("met"), status.count("met") + status.count("missed"))

    changes = sorted(
        this.keys() | before.keys(),
        key=lambda g: (
            -abs(len(this.get(g, [])) - len(before.get(g, []))),
            -len(this.get(g, [])),
            g or "",
        ),
    )
    lines = []
    for name in changes[:3]:
        now_leads, before_leads = len(this.get(name, [])), len(before.get(name, []))
        if now_leads == before_leads:
            continue
        unnamed = "No rule matched" if by == "rule" else "No source"
        line = f"• {name or unnamed}: {before_leads} → {now_leads} leads"
        if name in this and now_leads < 30:
            line += " (too few to go by)"
        if claim(this.get(name)) != claim(before.get(name)):
            line += f"; claim SLA met {claim(before.get(name))} → {claim(this.get(name))}"
        lines.append(line)
    head = (
        "*Top movers, by rule* (leads the week before → this week)"
        if by == "rule"
        else "*Top movers, by source*"
    )
    return head + "\n" + "\n".join(lines)


# --- the test -----------------------------------------------------------------------------------


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


async def test_what_a_manager_reads_over_a_week_is_what_happened_each_digest_once_at_nine(
    tmp_path: Path, slack: FakeSlack
) -> None:
    script = Script()
    floor = Floor(tmp_path / "leads.db", slack, Clock(START), script)
    await play_the_week(floor, script)
    # Twelve days take a while to play: the fairness figures are read from the same floor.
    await assert_fairness_is_each_rotation_pick_counted_once(floor, script)
    await floor.stop()
    assert_each_digest_went_out_once_at_nine_telling_its_period(floor, script)
    assert_routing_digest_answers_with_the_time_since_the_last_digest(script)


def assert_each_digest_went_out_once_at_nine_telling_its_period(
    floor: Floor, script: Script
) -> None:
    digests = floor.digests()
    ticks = digest_ticks(START, END)
    # One digest for each weekday's 09:00 in New York, however the clocks moved: Wednesday's,
    # whose time came while the app was restarting, as soon as it was back.
    assert [_key(d.call) for d in digests] == [f"digest:nora:{t.isoformat()}" for t in ticks]
    late = {SLACK_BACK: utc(10, 23, 13, 0), RESTARTED: STOPPED}
    for digest, tick in zip(digests, ticks, strict=True):
        assert digest.call.params["channel"] == "UNORA"
        assert tick.astimezone(NEW_YORK).strftime("%H:%M") == "09:00"
        posted_at = next((back for back, down in late.items() if down <= tick < back), tick)
        assert digest.at == posted_at, f"the digest of {tick} went out at {digest.at}"

    since = ticks[0] - timedelta(days=1)
    for digest, tick in zip(digests, ticks, strict=True):
        weekly = tick.astimezone(NEW_YORK).weekday() == 0  # the first of each week: Monday's
        assert_digest_tells(
            digest.call.params, script, since=since, now=tick, weekly=weekly, read_at=digest.at
        )
        since = tick


def assert_digest_tells(
    message: dict[str, Any],
    script: Script,
    *,
    since: datetime,
    now: datetime,
    weekly: bool,
    read_at: datetime | None = None,
) -> None:
    """A digest of [since, now), as Nora reads it in Slack (`message`: its text and blocks), says
    what the script says of that period, with the week's figures if `weekly`: the misses of the
    period, and the queue, loads and absences as they stood when it went out (`read_at`)."""
    read = sections(message["blocks"])
    want = daily_sections(script, since, now, read_at or now)
    if read[0].startswith("All clear"):
        assert read == [
            f"All clear: nothing in the queue, no SLA misses since {nyc(since)}, "
            "nobody out, no open leads."
        ]
        assert want == [
            "*Unmatched queue:* empty",
            f"*SLA misses since {nyc(since)}:* none",
            "*Open leads against capacity*\n"
            + "\n".join(
                f"• {NAMES[r]}: 0" + ("/20" if r in CAPACITY else " (no cap)") for r in REPS
            ),
            "*Out of office:* nobody",
        ], f"the digest of {now} says all clear"
        assert not weekly
        return
    assert read[0] == f"Routing digest since {nyc(since)}"
    daily = [text for text in read[1:] if not text.startswith("*This week")]
    queue_lines = [t for t in daily if t.startswith(("*Unmatched", "*L"))]
    rest = [t for t in daily if t.startswith(("*SLA", "*Open", "*Out"))]
    assert queue_lines + rest == want, f"the digest of {now}"
    week = [text for text in read if text.startswith("*This week")]
    assert len(week) == (1 if weekly else 0), f"the digest of {now}"
    if weekly:
        check_week_line(week[0], script, now)
        assert team_lines(script, now) in read
        assert movers(script, now, "rule") in read
        assert movers(script, now, "source") in read
    summary = expected_daily(script, since, now, read_at or now)
    missed = len([m for m in script.misses if since <= m[0] < now])
    assert message["text"] == (
        f"Routing digest: {plural(len(summary['queued']), 'lead')} in the queue, "
        f"{missed} SLA miss{'' if missed == 1 else 'es'}, "
        f"{len(summary['away'])} out of office"
    )


def assert_routing_digest_answers_with_the_time_since_the_last_digest(script: Script) -> None:
    """`/routing digest`: the time since the last scheduled digest, and the week to now."""
    assert script.asked
    for when, message in script.asked:
        last = max(tick for tick in digest_ticks(START, END) if tick <= when)
        assert_digest_tells(
            {"text": message.text, "blocks": message.blocks},
            script,
            since=last,
            now=when,
            weekly=True,
        )


def rotation_picks(script: Script, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    """Each team's leads its rotation gave each member: offered on arrival, in [since, until)."""
    picks: dict[str, dict[str, int]] = {team: dict.fromkeys(m, 0) for team, m in TEAMS.items()}
    for story in script.stories.values():
        first = story.offers[0] if story.offers else None
        if since <= story.arrived < until and first is not None and first.posted == story.arrived:
            team = RULE_OF_COUNTRY[story.country][1]
            picks[team][first.rep] += 1
    return picks


async def assert_fairness_is_each_rotation_pick_counted_once(floor: Floor, script: Script) -> None:
    """The dashboard's fairness page and each rep's App Home share, against the script."""
    assert floor.app is not None and floor.app.figures is not None
    # Out of office, Lena missed her turns; back, she takes her share again.
    picks = rotation_picks(script, START, END)
    assert picks == {"emea": {"lena": 4, "jonas": 7}, "west": {"sam": 2, "rosa": 4}}

    # The dashboard's fairness page over the whole scripted fortnight.
    (everyone,) = await floor.app.figures(Window(START, END), "all")
    shown = {
        team["team"]: {rep["rep"]: (rep["leads"], rep["expected_share"]) for rep in team["reps"]}
        for team in everyone["fairness"]
    }
    assert shown == {
        team: {rep: (count, 0.5) for rep, count in reps.items()} for team, reps in picks.items()
    }

    # Each rep's App Home: their share of their team's rotation in the last seven days.
    week = rotation_picks(script, END - timedelta(days=7), END)
    policy = floor.app.policy
    for team, members in TEAMS.items():
        given = sum(week[team].values())
        for rep in members:
            async with floor.app.db.reading() as session:
                home = await load_home(session, policy, rep_id=rep, manager_id=None, now=END)
            assert home.rep_week is not None
            share, claims = rep_week_lines(home.rep_week)
            got = week[team][rep]
            assert share == (
                f"• {team}: you got {got} of its {plural(given, 'lead')} "
                f"({got / given:.0%}); your share is 50%"
            ), rep
            mine = claim_sla_of(script, END - timedelta(days=7), END, rep=rep)
            teams = claim_sla_of(script, END - timedelta(days=7), END, team=team)
            assert claims == (
                f"Your claim SLA met this week: {mine} (your teams': {team} {teams})"
            ), rep


def claim_sla_of(
    script: Script, since: datetime, until: datetime, *, rep: str = "", team: str = ""
) -> str:
    """The claim SLA met of the leads of [since, until) a rep or a team was offered on arrival
    (the routing the report judges), as things stand at `until`."""
    status = [
        story.claim_sla(until)
        for story in script.stories.values()
        if since <= story.arrived < until
        and story.offers
        and story.offers[0].posted == story.arrived
        and (story.offers[0].rep == rep or RULE_OF_COUNTRY[story.country][1] == team)
    ]
    return rate(status.count("met"), status.count("met") + status.count("missed"))
