"""The retention settings: a sensible default for each table, `forever` (or 0) to keep its rows,
and a sentence for a value that cannot work."""

from __future__ import annotations

import pytest

from bot.retention import Retention
from bot.settings import SettingsError, load_settings


def test_by_default_request_keys_go_after_a_week_finished_work_after_a_month_audit_after_400_days(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("REQUEST_KEYS", "OUTBOX", "JOB_RUNS", "AUDIT"):
        monkeypatch.delenv(f"RETENTION_{name}_DAYS", raising=False)
    assert load_settings().retention == Retention(request_keys=7, outbox=30, job_runs=30, audit=400)


def test_forever_or_zero_keeps_a_tables_rows_and_a_number_sets_its_days(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETENTION_REQUEST_KEYS_DAYS", " 14 ")
    monkeypatch.setenv("RETENTION_OUTBOX_DAYS", "0")
    monkeypatch.setenv("RETENTION_JOB_RUNS_DAYS", "Forever")
    monkeypatch.setenv("RETENTION_AUDIT_DAYS", "forever")

    assert load_settings().retention == Retention(
        request_keys=14, outbox=None, job_runs=None, audit=None
    )


@pytest.mark.parametrize(
    ("variable", "value", "sentence"),
    [
        (
            "RETENTION_OUTBOX_DAYS",
            "30d",
            "RETENTION_OUTBOX_DAYS: must be a whole number of days, such as 30, or forever "
            "(or 0) to keep these rows forever",
        ),
        ("RETENTION_REQUEST_KEYS_DAYS", "-1", "RETENTION_REQUEST_KEYS_DAYS: must be a whole"),
        ("RETENTION_JOB_RUNS_DAYS", "never", "RETENTION_JOB_RUNS_DAYS: must be a whole"),
        ("RETENTION_JOB_RUNS_DAYS", "1.5", "RETENTION_JOB_RUNS_DAYS: must be a whole"),
        ("RETENTION_JOB_RUNS_DAYS", "", "RETENTION_JOB_RUNS_DAYS: must be a whole"),
        (
            "RETENTION_AUDIT_DAYS",
            "7",
            "RETENTION_AUDIT_DAYS: must be at least 8 days: a weekly digest counts its week's "
            "SLA misses from the audit rows (or forever)",
        ),
        (
            "RETENTION_AUDIT_DAYS",
            "40000",
            "RETENTION_AUDIT_DAYS: must be at most 36,500 days (a hundred years); "
            "write forever to keep these rows forever",
        ),
    ],
)
def test_a_retention_that_cannot_work_stops_the_start_with_a_sentence(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, sentence: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert sentence in str(raised.value)
