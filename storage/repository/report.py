"""The routing report's tables: each lead's story (`lead_stories`), the days of arrivals with their
rollups (`report_days`, `report_rollups`), and how far the stories are up to date
(`report_cursor`). What a story says is `storage.stories`'; when they are made, the service's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Insert, delete, insert, select, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from routing.report import LeadStory, Tally
from storage.models import (
    AuditEventRow,
    LeadStoryRow,
    ReportCursorRow,
    ReportDayRow,
    ReportRollupRow,
)
from storage.repository.common import LEADS, OFFERS, id_chunks, table_of
from storage.stories import (
    STORY_COLUMNS,
    leads_with_events_since,
    story_of_row,
    story_values,
)

STORIES = table_of(LeadStoryRow)
DAYS = table_of(ReportDayRow)
ROLLUPS = table_of(ReportRollupRow)
_CURSOR = table_of(ReportCursorRow)
_AUDITS = table_of(AuditEventRow)
_STORY_COLUMNS = [STORIES.c[name] for name in STORY_COLUMNS]


# --- which stories to make ----------------------------------------------------------------------


def leads_changed_since(*, session: Session, since: datetime | None) -> list[int]:
    """The leads something was recorded for at or after `since`, in id order; every lead when
    `since` is None. Whatever changes a lead's story writes a row stamped with when it was
    written: an audit event (routed, claimed, rejected, moved, a lapse), a card's post, an
    outcome event."""
    if since is None:
        return list(session.execute(select(LEADS.c.id).order_by(LEADS.c.id)).scalars())
    touched = union(
        select(_AUDITS.c.lead_id).where(_AUDITS.c.at >= since, _AUDITS.c.lead_id.is_not(None)),
        select(OFFERS.c.lead_id).where(OFFERS.c.card_posted_at >= since),
    )
    found = set(session.execute(touched).scalars())
    found |= leads_with_events_since(session=session, since=since)
    return sorted(found)


class Cursor(NamedTuple):
    watermark: datetime
    fields: tuple[str, ...]


CURSOR = "stories"


def report_cursor(*, session: Session) -> Cursor | None:
    row = session.execute(
        select(_CURSOR.c.watermark, _CURSOR.c.fields).where(_CURSOR.c.name == CURSOR)
    ).first()
    return Cursor(row.watermark, tuple(row.fields)) if row is not None else None


def move_report_cursor(
    *, session: Session, watermark: datetime, fields: Sequence[str], now: datetime
) -> None:
    """The stories are up to date as of `watermark`, for `fields`."""
    values = {"watermark": watermark, "fields": list(fields), "updated_at": now}
    statement = _upsert(session, _CURSOR).values(name=CURSOR, **values)
    session.execute(statement.on_conflict_do_update(index_elements=["name"], set_=values))


# --- stories ------------------------------------------------------------------------------------


def stored_stories(*, session: Session, lead_ids: Iterable[int]) -> dict[int, LeadStory]:
    stories: dict[int, LeadStory] = {}
    for chunk in id_chunks(lead_ids):
        rows = session.execute(select(*_STORY_COLUMNS).where(STORIES.c.lead_id.in_(chunk)))
        stories.update((row.lead_id, story_of_row(row)) for row in rows)
    return stories


def save_stories(*, session: Session, stories: Mapping[int, LeadStory], now: datetime) -> None:
    """Store these stories (new, or in place of the lead's), and count a change to the day each
    lead arrived on, so that its rollups are made again."""
    if not stories:
        return
    rows = [story_values(lead_id, stories[lead_id], now=now) for lead_id in sorted(stories)]
    upsert = _upsert(session, STORIES)
    kept = [name for name in rows[0] if name != "lead_id"]
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=["lead_id"], set_={name: upsert.excluded[name] for name in kept}
        ),
        rows,
    )
    days = Counter(arrival_day(story.created_at) for story in stories.values())
    bump = _upsert(session, DAYS)
    session.execute(
        bump.on_conflict_do_update(
            index_elements=["day"], set_={"changed": DAYS.c.changed + bump.excluded.changed}
        ),
        [{"day": day, "changed": count} for day, count in sorted(days.items())],
    )


def stories_between(*, session: Session, start: datetime, end: datetime) -> list[LeadStory]:
    """The stories of the leads that arrived in [start, end)."""
    rows = session.execute(
        select(*_STORY_COLUMNS).where(STORIES.c.created_at >= start, STORIES.c.created_at < end)
    )
    return [story_of_row(row) for row in rows]


def _upsert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (sqlite_insert if dialect == "sqlite" else pg_insert)(table)


# --- days and their rollups ---------------------------------------------------------------------


def arrival_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class DayState(NamedTuple):
    changed: int
    rolled: int | None
    good_until: datetime | None

    def rolled_up(self, now: datetime) -> bool:
        """Whether the day's rollups count its leads as things stand at `now`."""
        return self.rolled == self.changed and (self.good_until is None or now < self.good_until)


def day_states(*, session: Session, first: date, last: date) -> dict[date, DayState]:
    """The days from `first` to `last` (both included) that any lead arrived on."""
    rows = session.execute(
        select(DAYS.c.day, DAYS.c.changed, DAYS.c.rolled, DAYS.c.good_until).where(
            DAYS.c.day >= first, DAYS.c.day <= last
        )
    )
    return {row.day: DayState(row.changed, row.rolled, row.good_until) for row in rows}


def days_to_roll_up(*, session: Session, before: date, now: datetime, limit: int) -> list[date]:
    """Days before `before` whose rollups are missing or out of date, newest first."""
    rows = session.execute(
        select(DAYS.c.day)
        .where(
            DAYS.c.day < before,
            (DAYS.c.rolled.is_(None))
            | (DAYS.c.rolled != DAYS.c.changed)
            | (DAYS.c.good_until <= now),
        )
        .order_by(DAYS.c.day.desc())
        .limit(limit)
    )
    return list(rows.scalars())


def rollup_tallies(*, session: Session, by: str, days: Sequence[date]) -> dict[str | None, Tally]:
    """The tallies rolled up for these days, grouped `by`, merged per group. Merged as read, a
    row at a time into plain dicts, and made a `Tally` once per group: a quarter's report by rule
    reads thousands of rows."""
    merged: dict[str | None, dict[str, Any]] = {}
    if not days:
        return {}
    rows = session.execute(
        select(ROLLUPS.c.day, ROLLUPS.c.group_key, ROLLUPS.c.tally).where(
            ROLLUPS.c.by == by, ROLLUPS.c.day >= min(days), ROLLUPS.c.day <= max(days)
        )
    )
    wanted = set(days)
    for day, group, data in rows:
        if day not in wanted:
            continue
        into = merged.get(group)
        if into is None:
            merged[group] = _started(data)
        else:
            _add(into, data)
    return {group: _tally_of(parts) for group, parts in merged.items()}


def save_rollups(
    *,
    session: Session,
    day: date,
    changed: int,
    tallies: Mapping[str, Mapping[str | None, Tally]],
    good_until: datetime | None,
    now: datetime,
) -> bool:
    """Replace the day's rollups with `tallies` (by grouping, then group), made from its stories
    as they stood when the day's change count was `changed`; False, writing nothing, if a story
    of the day has been written since."""
    marked = session.execute(
        update(DAYS)
        .where(DAYS.c.day == day, DAYS.c.changed == changed)
        .values(rolled=changed, good_until=good_until, rolled_at=now)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(delete(ReportRollupRow).where(ROLLUPS.c.day == day))
    rows = [
        {"day": day, "by": by, "group_key": group, "tally": tally_json(tally)}
        for by, groups in tallies.items()
        for group, tally in groups.items()
    ]
    if rows:
        session.execute(_insert_rollups(), rows)
    return True


@cache
def _insert_rollups() -> Insert:
    return insert(ROLLUPS)


# --- a tally as JSON ----------------------------------------------------------------------------

_HISTOGRAMS = ("time_to_card", "time_to_claim", "time_to_first_touch")
_PAIRS = ("picks",)
_AMOUNTS = ("pipeline", "won_amount")


def tally_json(tally: Tally) -> dict[str, Any]:
    """A tally as JSON: counters as objects (histograms keyed by bucket, picks as [team, rep,
    count] lists), amounts as strings, so that `tally_of_json` gives it back exactly."""
    data: dict[str, Any] = {}
    for spec in fields(Tally):
        value = getattr(tally, spec.name)
        if spec.name in _PAIRS:
            data[spec.name] = [[*key, count] for key, count in sorted(value.items())]
        elif isinstance(value, Counter):
            data[spec.name] = {str(key): count for key, count in value.items()}
        elif isinstance(value, Decimal):
            data[spec.name] = str(value)
        else:
            data[spec.name] = value
    return data


def tally_of_json(data: Mapping[str, Any]) -> Tally:
    return _tally_of(_started(data))


# A tally being merged from rows: counters as dicts keyed as in JSON (histograms by the bucket's
# text), picks by (team, rep), amounts as Decimals.


def _started(data: Mapping[str, Any]) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for name, value in data.items():
        if name in _PAIRS:
            parts[name] = {(team, rep): count for team, rep, count in value}
        elif isinstance(value, dict):
            parts[name] = dict(value)
        elif name in _AMOUNTS:
            parts[name] = Decimal(value)
        else:
            parts[name] = value
    return parts


def _add(parts: dict[str, Any], data: Mapping[str, Any]) -> None:
    for name, value in data.items():
        if name in _PAIRS:
            pairs = parts.setdefault(name, {})
            for team, rep, count in value:
                pairs[team, rep] = pairs.get((team, rep), 0) + count
        elif isinstance(value, dict):
            counts = parts.setdefault(name, {})
            get = counts.get
            for key, count in value.items():
                counts[key] = get(key, 0) + count
        elif name in _AMOUNTS:
            parts[name] = parts.get(name, 0) + Decimal(value)
        else:
            parts[name] = parts.get(name, 0) + value


def _tally_of(parts: Mapping[str, Any]) -> Tally:
    tally = Tally()
    for spec in fields(Tally):
        if spec.name not in parts:
            continue
        value = parts[spec.name]
        if spec.name in _HISTOGRAMS:
            value = Counter({int(key): count for key, count in value.items()})
        elif isinstance(value, dict):
            value = Counter(value)
        setattr(tally, spec.name, value)
    return tally
