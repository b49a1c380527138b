"""The routing report over the database: `leadrouter report`, the dashboard, the digest's weekly
section and App Home all read it here, through the pure core (`routing.report`).

    await refresh_report(uow)                         # the stories and rollups up to date
    report = await routing_report(uow, window, by="rule")
    rows = await report_rows(uow, window, "rule")     # its groups, keyed as `--json` prints them

How it stays fast and right (docs/storage.md):

- Each lead's story is a row of its own (`lead_stories`), made from the rows that record what
  happened to it (`storage.stories`). `refresh_report` makes again the stories of the leads
  anything was recorded for since it last looked (less LAG, for transactions that were still
  running then), so an event that arrives late, twice or out of order is folded in with the
  rest, from scratch, the next time it runs (every minute, `bot.jobs`; and before a
  `leadrouter report`).
- Each past day's leads are tallied once per grouping (`report_rollups`), and made again once a
  story of that day changes or an SLA they counted as pending falls due; each past week's are
  its days' merged. A report merges the rollups of the whole weeks and days in its window and
  tallies the rest (the partial days at its ends, days whose rollups are out of date) from the
  stories themselves: what counts as what is decided once, in `routing.report.tally`, whichever
  way a lead is counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from bot.service.unit_of_work import Transaction, UnitOfWork
from routing.report import (
    GROUPINGS,
    LeadStory,
    Report,
    SlaStatus,
    Tally,
    fields_read,
    json_object,
    report_of_tallies,
    tally_by,
    team_weights,
)
from routing.report.tally import claim_sla_status, contact_sla_status
from routing.report.window import Window
from storage import repository as repo
from storage.stories import load_story_sources, stories_from

# Changes recorded this long before the refresh last looked are looked at again: a transaction
# stamps its changes when it begins and commits a little later (under a second, but for a run
# retried after lost races), and replicas' clocks may differ by a little.
LAG = timedelta(minutes=10)
# Leads whose stories are made per read and written per transaction: on SQLite a read of 500
# holds the event loop for about a tenth of a second (its rows are decoded there).
STORY_BATCH = 500
ROLLUP_DAYS = 400  # days rolled up per refresh at most: more than a year, the longest window
ONE_DAY = timedelta(days=1)
WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Refreshed:
    looked_at: int  # leads whose stories were made again
    written: int  # of those, the stories that had changed
    rolled_up: int  # days whose rollups were made again
    rebuilt: bool  # every story was made again (the first refresh, or the fields changed)


async def refresh_report(uow: UnitOfWork) -> Refreshed:
    """Bring every lead's story up to date, then the rollups of the days that need it.

    The stories are made on a reading session and only those that changed are written, each
    batch in a short transaction of its own: routing never waits for the report."""
    policy = uow.policy()
    fields = fields_read(policy)
    now = uow.clock()
    cursor = await uow.read(lambda session: repo.report_cursor(session=session))
    rebuilt = cursor is None or cursor.fields != fields
    since = None if rebuilt or cursor is None else cursor.watermark - LAG
    lead_ids = await uow.read(
        lambda session: repo.leads_changed_since(session=session, since=since)
    )
    written = 0
    for start in range(0, len(lead_ids), STORY_BATCH):
        changed = await _changed_stories(uow, lead_ids[start : start + STORY_BATCH], fields)
        if changed:
            await uow.write(partial(_save_stories, stories=changed, now=now))
            written += len(changed)
    await uow.write(
        lambda tx: repo.move_report_cursor(
            session=tx.session, watermark=now, fields=fields, now=now
        )
    )
    rolled_up = await roll_up_days(uow)
    return Refreshed(len(lead_ids), written, rolled_up, rebuilt)


async def _changed_stories(
    uow: UnitOfWork, lead_ids: Sequence[int], fields: Sequence[str]
) -> dict[int, LeadStory]:
    # The rows are read on a reading session and the stories made on a thread of their own,
    # so that a refresh of many leads leaves the event loop free for routing between reads.
    sources = await uow.read(partial(load_story_sources, lead_ids=lead_ids, fields=fields))
    made = await asyncio.to_thread(stories_from, sources)
    kept = await uow.read(lambda session: repo.stored_stories(session=session, lead_ids=made))
    return {lead_id: story for lead_id, story in made.items() if kept.get(lead_id) != story}


def _save_stories(tx: Transaction, *, stories: dict[int, LeadStory], now: datetime) -> None:
    repo.save_stories(session=tx.session, stories=stories, now=now)


async def roll_up_days(uow: UnitOfWork, *, limit: int = ROLLUP_DAYS) -> int:
    """Make again the rollups of past days that need it (today's leads are always tallied from
    their stories), then merge those of the past weeks whose days changed; how many days and
    weeks were."""
    now = uow.clock()
    today = repo.arrival_day(now)
    days = await uow.read(
        lambda session: repo.days_to_roll_up(session=session, before=today, now=now, limit=limit)
    )
    done = 0
    for day in days:
        read = await uow.read(partial(_day_stories, day=day))
        if read is None:
            continue
        changed, stories = read
        rollup = await asyncio.to_thread(_day_rollup, day, changed, stories, now)
        done += int(await uow.write(partial(_save_day_rollups, rollup=rollup, now=now)))
    weeks = await uow.read(
        lambda session: repo.weeks_to_merge(
            session=session,
            before=repo.monday_of(today),
            now=now,
            since=today - timedelta(days=limit),
        )
    )
    for monday, made_from, good_until in weeks:
        tallies = await uow.read(partial(_week_of_days, monday=monday))
        week = _DayRollup(monday, made_from, tallies, good_until)
        done += int(await uow.write(partial(_save_week_rollups, rollup=week, now=now)))
    return done


@dataclass(frozen=True, slots=True)
class _DayRollup:
    day: date  # or a week's Monday
    changed: int  # the day's change count when its stories were read (a week's: its days')
    tallies: dict[str, dict[str | None, Tally]]  # by grouping, then group
    good_until: datetime | None


def _save_day_rollups(tx: Transaction, *, rollup: _DayRollup, now: datetime) -> bool:
    return repo.save_day_rollups(
        session=tx.session,
        day=rollup.day,
        changed=rollup.changed,
        tallies=rollup.tallies,
        good_until=rollup.good_until,
        now=now,
    )


def _save_week_rollups(tx: Transaction, *, rollup: _DayRollup, now: datetime) -> bool:
    return repo.save_week_rollups(
        session=tx.session,
        monday=rollup.day,
        made_from=rollup.changed,
        tallies=rollup.tallies,
        good_until=rollup.good_until,
        now=now,
    )


def _week_of_days(session: Session, *, monday: date) -> dict[str, dict[str | None, Tally]]:
    return repo.day_rollups_of_week(session=session, monday=monday)


def _day_stories(session: Session, *, day: date) -> tuple[int, list[LeadStory]] | None:
    """The day's change count, then its stories: a story written in between makes the count
    stale, and the rollups are not saved (`save_day_rollups`)."""
    state = repo.day_states(session=session, first=day, last=day).get(day)
    if state is None:
        return None
    start = repo.day_start(day)
    return state.changed, repo.stories_between(session=session, start=start, end=start + ONE_DAY)


def _day_rollup(day: date, changed: int, stories: list[LeadStory], now: datetime) -> _DayRollup:
    tallies = {by: tally_by(stories, by=by, now=now) for by in GROUPINGS}
    return _DayRollup(day, changed, tallies, _pending_until(stories, now))


def _pending_until(stories: Sequence[LeadStory], now: datetime) -> datetime | None:
    """When the first SLA these stories count as pending falls due: their tally is good until
    then (a lapse recorded sooner changes a story, and so the day, anyway)."""
    dues = [
        due
        for story in stories
        for status, due in (
            (claim_sla_status(story, now), story.claim_due_at),
            (contact_sla_status(story, now), story.contact_due_at),
        )
        if status is SlaStatus.PENDING and due is not None
    ]
    return min(dues, default=None)


# --- reading the report -------------------------------------------------------------------------


async def routing_report(uow: UnitOfWork, window: Window, *, by: str) -> Report:
    """The report of the leads that arrived in `window`, grouped `by` one of
    `routing.report.GROUPINGS`, as things stand now (as of the last refresh)."""
    if by not in GROUPINGS:
        raise ValueError(f"a report is grouped by one of {', '.join(GROUPINGS)}, not {by!r}")
    policy = uow.policy()
    now = uow.clock()
    tallies = await uow.read(
        lambda session: window_tallies(
            session, by=by, since=window.since, until=window.until, now=now
        )
    )
    return report_of_tallies(
        tallies,
        by=by,
        now=now,
        since=window.since,
        until=window.until,
        teams=team_weights(policy),
        fields=fields_read(policy),
        currency=uow.currency,
    )


async def report_rows(uow: UnitOfWork, window: Window, by: str) -> list[dict[str, Any]]:
    """The report's groups as `leadrouter report --json` prints them, most leads first: what
    the dashboard shows (`bot.dashboard.figures.Figures`)."""
    report = await routing_report(uow, window, by=by)
    return [json_object(group) for group in report.groups]


def window_tallies(
    session: Session, *, by: str, since: datetime, until: datetime, now: datetime
) -> dict[str | None, Tally]:
    """The tallies of the leads that arrived in [since, until), by group: the rollups of the
    whole weeks and days that have them, the stories of the rest."""
    first, last = repo.arrival_day(since), repo.arrival_day(until - timedelta(microseconds=1))
    states = repo.day_states(session=session, first=first, last=last)
    weeks = repo.week_states(session=session, first=repo.monday_of(first), last=last)
    whole_weeks = [
        monday
        for monday in _mondays(first, last)
        if since <= repo.day_start(monday)
        and repo.day_start(monday + WEEK) <= until
        and repo.week_holds(monday, weeks, states, now)
    ]
    covered = {day for monday in whole_weeks for day in repo.days_of_week(monday)}
    rolled: list[date] = []
    live: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        start, end = max(since, repo.day_start(day)), min(until, repo.day_start(day + ONE_DAY))
        state = states.get(day)
        whole = start == repo.day_start(day) and end == repo.day_start(day + ONE_DAY)
        if state is None or day in covered:
            pass  # no lead arrived that day, or its week's rollups count it
        elif whole and state.rolled_up(now):
            rolled.append(day)
        elif live and live[-1][1] == start:
            live[-1] = (live[-1][0], end)  # one read for neighbouring days
        else:
            live.append((start, end))
        day += ONE_DAY
    tallies = repo.rollup_tallies(session=session, by=by, days=rolled, weeks=whole_weeks)
    for start, end in live:
        stories = repo.stories_between(session=session, start=start, end=end)
        for group, tally in tally_by(stories, by=by, now=now, since=start, until=end).items():
            tallies.setdefault(group, Tally()).absorb(tally)
    return tallies


def _mondays(first: date, last: date) -> list[date]:
    monday = repo.monday_of(first)
    found = []
    while monday <= last:
        found.append(monday)
        monday += WEEK
    return found
