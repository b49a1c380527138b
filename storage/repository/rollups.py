"""The routing report's rollups: each UTC day of arrivals (`report_days`) and each week of them
(`report_weeks`, Monday to Sunday), with the report's tally of their leads per group for each
grouping (`report_rollups`, as JSON). A week's rollups are its days' merged, so a quarter's
report reads thirteen weeks and a few days rather than ninety days.

A day's rollups hold while they were made from its stories as they stand (`rolled` equals its
change count `changed`) and no SLA they counted as pending has fallen due (`good_until`); a
week's, while the change counts of its days add up to what they did when it was merged
(`made_from`: they only grow) and before its `good_until`, the earliest of its days'.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Insert, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from routing.report import Tally
from storage.models import ReportDayRow, ReportRollupRow, ReportWeekRow
from storage.repository.common import insert_or_update, table_of

DAYS = table_of(ReportDayRow)
WEEKS = table_of(ReportWeekRow)
ROLLUPS = table_of(ReportRollupRow)
ONE_DAY = timedelta(days=1)
WEEK = 7  # a week rollup's span, in days; a day's is 1


def arrival_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def days_of_week(monday: date) -> list[date]:
    return [monday + timedelta(days=n) for n in range(WEEK)]


def count_changes(*, session: Session, days: Mapping[date, int]) -> None:
    """Count a change to each of these days (`days`: how many stories of its leads were
    written), so that its rollups, and its week's, are made again."""
    bump = insert_or_update(session, DAYS)
    session.execute(
        bump.on_conflict_do_update(
            index_elements=["day"], set_={"changed": DAYS.c.changed + bump.excluded.changed}
        ),
        [{"day": day, "changed": count} for day, count in sorted(days.items())],
    )


# --- days ---------------------------------------------------------------------------------------


class DayState(NamedTuple):
    changed: int
    rolled: int | None
    good_until: datetime | None

    def rolled_up(self, now: datetime) -> bool:
        """Whether the day's rollups count its leads as things stand at `now`."""
        return self.rolled == self.changed and _good(self.good_until, now)


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


def save_day_rollups(
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
    _replace_rollups(session, day, 1, tallies)
    return True


# --- weeks --------------------------------------------------------------------------------------


class WeekState(NamedTuple):
    made_from: int  # the sum of its days' change counts when it was merged
    good_until: datetime | None


def week_states(*, session: Session, first: date, last: date) -> dict[date, WeekState]:
    """The weeks whose Monday is from `first` to `last` that have rollups."""
    rows = session.execute(
        select(WEEKS.c.week, WEEKS.c.made_from, WEEKS.c.good_until).where(
            WEEKS.c.week >= first, WEEKS.c.week <= last
        )
    )
    return {row.week: WeekState(row.made_from, row.good_until) for row in rows}


def week_holds(
    monday: date, weeks: Mapping[date, WeekState], days: Mapping[date, DayState], now: datetime
) -> bool:
    """Whether the week's rollups count its leads as things stand at `now`; `days` holds the
    states of every day of that week that has any."""
    state = weeks.get(monday)
    if state is None or not _good(state.good_until, now):
        return False
    changed = sum(days[day].changed for day in days_of_week(monday) if day in days)
    return changed == state.made_from


def weeks_to_merge(
    *, session: Session, before: date, now: datetime, since: date
) -> list[tuple[date, int, datetime | None]]:
    """Weeks from the one of `since` to the one before `before` (a Monday) whose rollups are
    missing or out of date and whose days' rollups all hold: each with the sum of its days'
    change counts and the earliest of their `good_until`. Newest first."""
    first = monday_of(since)
    days = day_states(session=session, first=first, last=before - ONE_DAY)
    weeks = week_states(session=session, first=first, last=before - ONE_DAY)
    found = []
    for monday in sorted({monday_of(day) for day in days}, reverse=True):
        if monday >= before or week_holds(monday, weeks, days, now):
            continue
        states = [days[day] for day in days_of_week(monday) if day in days]
        if all(state.rolled_up(now) for state in states):
            dues = [state.good_until for state in states if state.good_until is not None]
            found.append((monday, sum(state.changed for state in states), min(dues, default=None)))
    return found


def day_rollups_of_week(*, session: Session, monday: date) -> dict[str, dict[str | None, Tally]]:
    """The week's day rollups merged: by grouping, then group."""
    rows = session.execute(
        select(ROLLUPS.c.by, ROLLUPS.c.group_key, ROLLUPS.c.tally).where(
            ROLLUPS.c.days == 1,
            ROLLUPS.c.day >= monday,
            ROLLUPS.c.day < monday + timedelta(days=WEEK),
        )
    )
    merged: dict[tuple[str, str | None], dict[str, Any]] = {}
    for by, group, data in rows:
        _merge(merged, (by, group), data)
    tallies: dict[str, dict[str | None, Tally]] = {}
    for (by, group), parts in merged.items():
        tallies.setdefault(by, {})[group] = _tally_of(parts)
    return tallies


def save_week_rollups(
    *,
    session: Session,
    monday: date,
    made_from: int,
    tallies: Mapping[str, Mapping[str | None, Tally]],
    good_until: datetime | None,
    now: datetime,
) -> bool:
    """Replace the week's rollups with `tallies`, merged from its days' when their change counts
    added up to `made_from`; False, writing nothing, if a day of it has changed since."""
    changed = session.execute(
        select(func.coalesce(func.sum(DAYS.c.changed), 0)).where(
            DAYS.c.day >= monday, DAYS.c.day < monday + timedelta(days=WEEK)
        )
    ).scalar_one()
    if changed != made_from:
        return False
    values = {"made_from": made_from, "good_until": good_until, "rolled_at": now}
    upsert = insert_or_update(session, WEEKS).values(week=monday, **values)
    session.execute(upsert.on_conflict_do_update(index_elements=["week"], set_=values))
    _replace_rollups(session, monday, WEEK, tallies)
    return True


# --- reading rollups ----------------------------------------------------------------------------


def rollup_tallies(
    *, session: Session, by: str, days: Sequence[date], weeks: Sequence[date] = ()
) -> dict[str | None, Tally]:
    """The tallies rolled up for these days and weeks (by their Monday), grouped `by`, merged
    per group. Merged as read, a row at a time into plain dicts, and made a `Tally` once per
    group: a quarter's report by rule reads hundreds of rows."""
    spans = {1: sorted(set(days)), WEEK: sorted(set(weeks))}
    wanted = [
        and_(ROLLUPS.c.days == span, ROLLUPS.c.day.in_(starts))
        for span, starts in spans.items()
        if starts
    ]
    if not wanted:
        return {}
    rows = session.execute(
        select(ROLLUPS.c.group_key, ROLLUPS.c.tally).where(ROLLUPS.c.by == by, or_(*wanted))
    )
    merged: dict[str | None, dict[str, Any]] = {}
    for group, data in rows:
        _merge(merged, group, data)
    return {group: _tally_of(parts) for group, parts in merged.items()}


def _replace_rollups(
    session: Session, start: date, span: int, tallies: Mapping[str, Mapping[str | None, Tally]]
) -> None:
    session.execute(delete(ReportRollupRow).where(ROLLUPS.c.day == start, ROLLUPS.c.days == span))
    rows = [
        {"day": start, "days": span, "by": by, "group_key": group, "tally": tally_json(tally)}
        for by, groups in tallies.items()
        for group, tally in groups.items()
    ]
    if rows:
        session.execute(_insert_rollups(), rows)


@cache
def _insert_rollups() -> Insert:
    return insert(ROLLUPS)


def _good(good_until: datetime | None, now: datetime) -> bool:
    return good_until is None or now < good_until


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


def _merge(merged: dict[Any, dict[str, Any]], key: Any, data: Mapping[str, Any]) -> None:
    into = merged.get(key)
    if into is None:
        merged[key] = _started(data)
    else:
        _add(into, data)


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
