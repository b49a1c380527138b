"""The service layer: one short function per use case, each taking the unit of work.

    result = await claim(uow, "L-1042", by="ann")     # bot.service.offers

A use case loads the state the pure router needs (`routing`), calls it, and saves the outcome, the
audit trail and the side effects to carry out (the outbox) in one transaction, so a lead is never
half-routed. It makes no SQL and no ORM call (`storage` does) and never calls Slack or a CRM:
those are reached through the outbox, after commit. Every entry point (HTTP, Slack, jobs, the
CLI, the CRM sync and write-back) calls these and nothing below them.

    unit_of_work   the UnitOfWork (database, policy, clock, what happens at commit) and the
                   Transaction its work gets; `write`, `routing` (run again on a lost race)
    world          the routing state inside a routing transaction, and its scopes (PostgreSQL)
    group_commit   new leads arriving together, routed in one transaction
    intake         a new lead, a batch, leads from a CRM; a lead found by its id
    offers         claim, reject, assign from the queue, reassign, a card Slack refused
    availability   out of office, back
    watchdog       the SLA sweep, reminders, the backlog summary at start
    safety_nets    the sweep finishing, one by one, what a lost transaction left half done
    escalations    a queued lead its queue's channel or a manager's DM refused: told to
                   managers in their DMs instead
    contact_sla    the contact SLA, from claim to first touch: started on the claim, looked at
                   by the sweep (a miss told, and the lead moved where the policy says)
    digests        a manager's digest: queued once per tick, or read now
    crm            pages read from a CRM taken in, HubSpot's contacts queued, write-backs
    outcomes       a lead's first touch, opportunity, won or lost, reported by a CRM or
                   `POST /events`: each stored once, late or out of order, or before its
                   lead (it waits for the lead a day, `apply_waiting_events`)
    accounts       accounts imported or synced
    policies       policy versions activated or refused, listed, found; offers of departed reps
    experiments    an experiment promoted or stopped: a new policy version
    requests       a Slack request acted on once
    sign_outs      dashboard sessions signed out, for every replica; a session looked up
    retention      housekeeping rows pruned
    replay         a policy tried on the leads of a window, writing nothing
    gauges         the backlogs `/metrics` shows
    report         the routing report: its stories and rollups brought up to date, a window's
                   report (`leadrouter report`, the dashboard)
    weekly         the week's figures, for a manager's digest and App Home, a rep's App Home
    steps          what several use cases do inside their transaction: find a lead, record
                   decisions, move a lead on
    outbox_items   the side effects queued; `kinds`, the names workers read them by
    views, errors  what use cases answer with, and the refusals they raise
"""
