"""The routing report's stories (`lead_stories`) and how far they are up to date (`report_cursor`).
What a story says is `storage.stories`'; their days' rollups, `storage.repository.rollups`'.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, func, select, union
from sqlalchemy.orm import Session

from routing.performance import OutcomeRow
from routing.report import LeadStory
from storage.models import (
    AuditEventRow,
    LeadStoryRow,
    ReportCursorRow,
    ReportDayRow,
    ReportRollupRow,
)
from storage.repository.common import LEADS, OFFERS, id_chunks, insert_or_update, table_of
from storage.repository.rollups import arrival_day, count_changes
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
    statement = insert_or_update(session, _CURSOR).values(name=CURSOR, **values)
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
    upsert = insert_or_update(session, STORIES)
    kept = [name for name in rows[0] if name != "lead_id"]
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=["lead_id"], set_={name: upsert.excluded[name] for name in kept}
        ),
        rows,
    )
    count_changes(
        session=session,
        days=Counter(arrival_day(story.created_at) for story in stories.values()),
    )


def stories_between(*, session: Session, start: datetime, end: datetime) -> list[LeadStory]:
    """The stories of the leads that arrived in [start, end)."""
    rows = session.execute(
        select(*_STORY_COLUMNS).where(STORIES.c.created_at >= start, STORIES.c.created_at < end)
    )
    return [story_of_row(row) for row in rows]


_OUTCOME_COUNTS = (
    select(
        STORIES.c.current_rep,
        STORIES.c.segment,
        STORIES.c.source,
        func.count(),
        func.count(STORIES.c.converted_at),
    )
    .where(STORIES.c.created_at >= bindparam("since", type_=STORIES.c.created_at.type))
    .where(STORIES.c.current_rep.is_not(None))
    .group_by(STORIES.c.current_rep, STORIES.c.segment, STORIES.c.source)
)


def outcome_counts(*, session: Session, since: datetime) -> list[OutcomeRow]:
    """Per rep, segment and source (as stored): how many of the leads that arrived since `since`
    the rep holds now, and how many of those converted (the performance distribution's rates,
    `routing.performance.OutcomeCounts.from_rows`). The rep who holds a lead, not the one it
    arrived to (the report's `rep`): a conversion is the work of the rep who took it over."""
    rows = session.execute(_OUTCOME_COUNTS, {"since": since})
    return [(row[0], row[1], row[2], row[3], row[4]) for row in rows]
