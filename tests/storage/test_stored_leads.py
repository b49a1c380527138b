"""A stored lead reads back as the lead it was: `lead_of_raw` (unchecked, for replays) gives
what `parse_lead` would, for every lead intake could have stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from bench.bench_routing import iter_leads, make_accounts
from bot.files.leads import LeadRow, open_leads, read_leads
from routing.accounts import AccountIndex
from routing.engine import route
from routing.leads import parse_lead
from routing.model import Lead
from storage.decisions import lead_of_raw, lead_values
from tests.routing.examples import EXAMPLES, example_policy

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)


def stored_raw(lead: Lead) -> dict[str, Any]:
    """The lead's `raw` column as the database gives it back: what intake wrote, through JSON."""
    decision = route(lead, policy=example_policy(), now=NOW)
    values = lead_values(lead, decision, NOW, example_policy())
    raw: dict[str, Any] = json.loads(json.dumps(values["raw"]))
    return raw


def leads_people_send() -> list[Lead]:
    rows = read_leads(open_leads(EXAMPLES / "demo-leads.csv"))
    demo = [row.lead for row in rows if isinstance(row, LeadRow)]
    accounts = make_accounts(3, 200, ["alice", "bob"])
    generated = islice(iter_leads(3, accounts, AccountIndex(accounts)), 500)
    odd = {
        "id": " 42 ",
        "email": "Ünïcode@Bücher.DE",
        "employees": "1,200",
        "score": "7",
        "crm_system": "HubSpot",
        "crm_id": "9",
        "fields.plan": " pro ",
        "fields": {"tags": ["a", 1, True], "empty": " ", "none": None},
        "region_hint": 3.5,
    }
    return [
        *demo,
        *(parse_lead(raw) for _, _, raw in generated),
        parse_lead(odd),
    ]


def test_a_stored_lead_reads_back_as_parse_lead_reads_it() -> None:
    leads = leads_people_send()
    assert len(leads) > 500

    for lead in leads:
        raw = stored_raw(lead)
        assert lead_of_raw(raw) == parse_lead(raw) == lead


def test_a_raw_lead_intake_would_not_have_written_is_checked_after_all() -> None:
    raw = {"id": "L-1", "email": "a@b.co", "industry_code": "x", "fields": {"plan": "pro"}}

    assert lead_of_raw(raw) == parse_lead(raw)
    assert lead_of_raw(raw).fields == {"plan": "pro", "industry_code": "x"}
