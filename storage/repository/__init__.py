"""Loading and saving, as keyword-only functions over a session, by family of tables. No decisions
are made here. Callers take them from here (`from storage import repository as repo`).

A write's functions take a synchronous `Session`: a write is one synchronous unit of work
(`Database.run`); a coroutine that reads (over an `AsyncSession`) calls one of them through
`AsyncSession.run_sync`. The rest, read by coroutines only, take the `AsyncSession` itself.

    routing_state  what a decision needs: loads, absences, rotations, candidate accounts, people
    leads          leads by external id, id or CRM record, stored in bulk; the queue
    outcomes       a lead's outcome events (first touch, opportunity, won, lost), stored once
    offers         offers and their changes; the watchdog's overdue offers and reminders
    contact_sla    a claimed offer's contact SLA: started, looked at once lapsed, reminded
    outbox         side effects queued, leased, ended; lanes
    accounts       accounts and their name keys
    runs           job runs, CRM cursors, request keys
    audit          the audit trail
    policies       policy versions and which one is active
    common         the tables, chunked IN lists, bulk inserts, conflicts
"""

from __future__ import annotations

from storage.repository.accounts import all_accounts, upsert_accounts
from storage.repository.audit import add_audit, audits_by_rep, lead_audits
from storage.repository.common import (
    AlreadyQueued,
    Conflict,
    StateChanged,
    insert_rows,
    repeated_external_id,
)
from storage.repository.contact_sla import (
    clear_contact_reminders,
    contact_work_due,
    due_contact_reminders,
    lapsed_contact_clocks,
    start_contact_clock,
    stop_contact_clocks,
)
from storage.repository.leads import (
    find_lead,
    find_leads,
    insert_leads,
    lead_by_id,
    lead_ids,
    lead_ids_of_crm_records,
    leads_by_id,
    queued_leads,
    read_again,
    set_lead_status,
    stored_crm_ids,
    unmatched_queue,
)
from storage.repository.offers import (
    change_offer_status,
    clear_reminders,
    close_offers,
    count_open_offers,
    current_offer,
    due_reminders,
    insert_offers,
    offer_by_id,
    offers_by_id,
    offers_of_lead,
    offers_of_leads,
    overdue_offers,
    record_card_posted,
    reps_with_unclaimed_offers,
    unclaimed_offers_of_rep,
)
from storage.repository.outbox import (
    UNSURE,
    Claimed,
    claim_outbox,
    finish_outbox,
    insert_outbox,
    lane_free_at,
    outbox_depth,
    outbox_items_since,
    outbox_pending,
    outbox_values,
    pace_lane,
    queue_outbox_once,
    renew_outbox,
)
from storage.repository.outcomes import (
    first_touch_at,
    first_touches,
    insert_lead_events,
    lead_event_values,
    lead_events,
    outcome_event,
)
from storage.repository.policies import (
    ActivatedMeanwhile,
    active_policy_version,
    latest_activation,
    policy_activations,
    policy_version,
    policy_versions_starting,
    record_activation,
    store_policy_version,
)
from storage.repository.routing_state import (
    Candidates,
    RepStates,
    TeamStates,
    candidate_accounts,
    count_open_leads,
    count_open_leads_many,
    load_rep_states,
    load_team_states,
    open_leads_of_people,
    read_rep_states,
    reps_holding_accounts,
    save_team_state,
    set_away,
)
from storage.repository.runs import (
    crm_cursor,
    last_job_runs,
    move_crm_cursor,
    previous_job_run,
    remember_request,
    take_job_run,
)

__all__ = [
    "UNSURE",
    "ActivatedMeanwhile",
    "AlreadyQueued",
    "Candidates",
    "Claimed",
    "Conflict",
    "RepStates",
    "StateChanged",
    "TeamStates",
    "active_policy_version",
    "add_audit",
    "all_accounts",
    "audits_by_rep",
    "candidate_accounts",
    "change_offer_status",
    "claim_outbox",
    "clear_contact_reminders",
    "clear_reminders",
    "close_offers",
    "contact_work_due",
    "count_open_leads",
    "count_open_leads_many",
    "count_open_offers",
    "crm_cursor",
    "current_offer",
    "due_contact_reminders",
    "due_reminders",
    "find_lead",
    "find_leads",
    "finish_outbox",
    "first_touch_at",
    "first_touches",
    "insert_lead_events",
    "insert_leads",
    "insert_offers",
    "insert_outbox",
    "insert_rows",
    "lane_free_at",
    "lapsed_contact_clocks",
    "last_job_runs",
    "latest_activation",
    "lead_audits",
    "lead_by_id",
    "lead_event_values",
    "lead_events",
    "lead_ids",
    "lead_ids_of_crm_records",
    "leads_by_id",
    "load_rep_states",
    "load_team_states",
    "move_crm_cursor",
    "offer_by_id",
    "offers_by_id",
    "offers_of_lead",
    "offers_of_leads",
    "open_leads_of_people",
    "outbox_depth",
    "outbox_items_since",
    "outbox_pending",
    "outbox_values",
    "outcome_event",
    "overdue_offers",
    "pace_lane",
    "policy_activations",
    "policy_version",
    "policy_versions_starting",
    "previous_job_run",
    "queue_outbox_once",
    "queued_leads",
    "read_again",
    "read_rep_states",
    "record_activation",
    "record_card_posted",
    "remember_request",
    "renew_outbox",
    "repeated_external_id",
    "reps_holding_accounts",
    "reps_with_unclaimed_offers",
    "save_team_state",
    "set_away",
    "set_lead_status",
    "start_contact_clock",
    "stop_contact_clocks",
    "store_policy_version",
    "stored_crm_ids",
    "take_job_run",
    "unclaimed_offers_of_rep",
    "unmatched_queue",
    "upsert_accounts",
]
