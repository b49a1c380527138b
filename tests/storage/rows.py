"""Rows for the storage tests to write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)


def queued_lead(external_id: str, **values: Any) -> dict[str, Any]:
    """A `leads` row for `repo.insert_leads`: a queued lead with nothing else known."""
    return {
        "external_id": external_id,
        "status": "queued",
        "rep_id": None,
        "team": None,
        "rule": None,
        "queue": None,
        "reason": "",
        "account_id": None,
        "email": None,
        "company": None,
        "crm_system": None,
        "crm_id": None,
        "source": None,
        "raw": {},
        "facts": {},
        "created_at": NOW,
        "updated_at": NOW,
        **values,
    }
