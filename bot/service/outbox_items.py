"""The side effects a use case queues, as outbox items: each names its kind (the worker that
carries it out), a key that queues it at most once, and its lane (where it goes, paced)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from bot.service.kinds import ALERTED, BACKLOG, INSTEAD_OF, OWNER_WRITE_KINDS, OutboxKind
from routing.decision import Decision
from routing.policy import Policy
from storage import repository as repo
from storage.models import LeadRow, OfferRow

OFFER_CARD_KEY = "offer-card:"  # then the offer's id


def offer_card_key(offer_id: int) -> str:
    """The outbox key of an offer's DM card: it is queued once, whatever retries."""
    return f"{OFFER_CARD_KEY}{offer_id}"


def card_items(
    policy: Policy,
    decision: Decision,
    lead_id: int,
    offer_id: int,
    now: datetime,
    *,
    backlog: bool = False,
) -> list[dict[str, Any]]:
    """The items that post a new offer's card: in the rep's DM, and a copy in the team's
    channel if it has one. Two items, each in its own lane and each posted at most once.
    `backlog`: queued where no card delivery runs (marked on the DM card's item)."""
    payload = {"offer_id": offer_id, "lead_id": lead_id}
    items = [
        repo.outbox_values(
            kind=OutboxKind.OFFER_CARD,
            dedupe_key=offer_card_key(offer_id),
            payload={**payload, BACKLOG: True} if backlog else payload,
            now=now,
            lane=policy.slack_of(decision.rep),
        )
    ]
    team = policy.teams.get(decision.team) if decision.team else None
    if team is not None and team.channel:
        items.append(
            repo.outbox_values(
                kind=OutboxKind.TEAM_CARD,
                dedupe_key=f"team-card:{offer_id}",
                payload=payload,
                now=now,
                lane=team.channel,
            )
        )
    return items


def settle_card(offer_id: int, now: datetime, *, again: str | None = None) -> dict[str, Any]:
    """The offer was claimed or moved on: its card says so. `again` names a second change of
    an offer already settled once (a claimed lead taken back: "uncontacted")."""
    return repo.outbox_values(
        kind=OutboxKind.SETTLE_CARD,
        dedupe_key=f"settle-card:{offer_id}" + (f":{again}" if again else ""),
        payload={"offer_id": offer_id},
        now=now,
    )


def queue_post(
    lead_id: int, decision: Decision, reassignments: int, now: datetime
) -> dict[str, Any]:
    """The lead went to a queue: it is posted in the queue's channel."""
    return repo.outbox_values(
        kind=OutboxKind.QUEUE_POST,
        dedupe_key=f"queue-post:{lead_id}:{reassignments}",
        payload={"lead_id": lead_id, "queue": decision.queue, "channel": decision.channel},
        now=now,
        lane=decision.channel,
    )


def owner_write(
    crm_system: str, lead_id: int, rep_id: str, offer_id: int, now: datetime
) -> dict[str, Any]:
    """Set the lead's CRM record owner to the rep of this offer. In the lead's lane: its CRM
    writes land in the order they were queued (`bot.crm.writeback`)."""
    return repo.outbox_values(
        kind=OWNER_WRITE_KINDS[crm_system],
        dedupe_key=f"crm-owner:{offer_id}",
        payload={"lead_id": lead_id, "rep": rep_id, "offer_id": offer_id},
        now=now,
        lane=crm_lane(lead_id),
    )


def crm_lane(lead_id: int) -> str:
    """The lane of a lead's CRM writes (a Slack lane is a channel or user id: never this)."""
    return f"crm-lead:{lead_id}"


def manager_alerts(
    policy: Policy, offer: OfferRow, row: LeadRow, now: datetime, *, why: str | None = None
) -> list[dict[str, Any]]:
    """Tell the managers of the offer's team that its lead went to the queue; `why`, when it
    was not for want of a claim (the watchdog's reason, said by default)."""
    managers = managers_of(policy, offer.team)
    payload = {"lead_id": row.id, "offer_id": offer.id, ALERTED: managers}
    return [
        repo.outbox_values(
            kind=OutboxKind.MANAGER_ALERT,
            dedupe_key=manager_alert_key(offer.id, manager),
            payload=payload | ({"why": why} if why else {}) | {"manager": manager},
            now=now,
            lane=policy.slack_of(manager),
        )
        for manager in managers
    ]


def manager_alert_key(offer_id: int | None, manager: str) -> str:
    """The key of the alert to `manager` that the offer's lead went to the queue."""
    return f"manager-alert:{offer_id}:{manager}"


def queue_post_alerts(
    policy: Policy, lead_id: int, team: str | None, post_key: str, why: str, now: datetime
) -> list[dict[str, Any]]:
    """The post of a queued lead (its outbox key `post_key`) could not go to the queue's
    channel: its managers get the lead in their DMs instead, with why, once per post."""
    managers = managers_of(policy, team)
    return [
        repo.outbox_values(
            kind=OutboxKind.MANAGER_ALERT,
            dedupe_key=f"manager-alert:{post_key}:{manager}",
            payload={"lead_id": lead_id, "manager": manager, "why": why, ALERTED: managers},
            now=now,
            lane=policy.slack_of(manager),
        )
        for manager in managers
    ]


def alerts_instead(
    policy: Policy,
    lead_id: int,
    refused: str,
    alert_key: str,
    why: str,
    now: datetime,
    *,
    alerted: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The alert of a queued lead to the manager `refused` (its key `alert_key`) could not go:
    every other manager of the policy gets it instead, once, but those `alerted` of the lead
    with them (they have it already); one of these that cannot go either is not passed on
    again (`instead_of`)."""
    return [
        repo.outbox_values(
            kind=OutboxKind.MANAGER_ALERT,
            dedupe_key=f"{alert_key}:instead:{manager}",
            payload={"lead_id": lead_id, "manager": manager, "why": why, INSTEAD_OF: refused},
            now=now,
            lane=policy.slack_of(manager),
        )
        for manager in sorted(policy.managers)
        if manager != refused and manager not in alerted
    ]


def reminder(policy: Policy, offer_id: int, rep_id: str, now: datetime) -> dict[str, Any]:
    """Half the offer's SLA has passed: nudge its rep."""
    return repo.outbox_values(
        kind=OutboxKind.REMINDER,
        dedupe_key=f"reminder:{offer_id}",
        payload={"offer_id": offer_id},
        now=now,
        lane=policy.slack_of(rep_id),
    )


def contact_reminder(policy: Policy, offer_id: int, rep_id: str, now: datetime) -> dict[str, Any]:
    """Half the contact SLA of a lead the rep claimed has passed, untouched: nudge them."""
    return repo.outbox_values(
        kind=OutboxKind.CONTACT_REMINDER,
        dedupe_key=f"contact-reminder:{offer_id}",
        payload={"offer_id": offer_id},
        now=now,
        lane=policy.slack_of(rep_id),
    )


def contact_missed_alerts(
    policy: Policy, offer: OfferRow, now: datetime, *, touched_at: datetime | None, moved: bool
) -> list[dict[str, Any]]:
    """Tell the managers of the offer's team that its rep did not touch the lead in time
    (`touched_at`: they did, late); `moved`: it was taken from them and routed again."""
    due = offer.contact_due_at
    payload = {
        "offer_id": offer.id,
        "lead_id": offer.lead_id,
        "rep": offer.rep_id,
        "due_at": due.isoformat() if due else None,
        "touched_at": touched_at.isoformat() if touched_at else None,
        "moved": moved,
    }
    return [
        repo.outbox_values(
            kind=OutboxKind.CONTACT_MISSED,
            dedupe_key=contact_missed_key(offer.id, manager),
            payload={**payload, "manager": manager},
            now=now,
            lane=policy.slack_of(manager),
        )
        for manager in managers_of(policy, offer.team)
    ]


def contact_missed_key(offer_id: int | None, manager: str) -> str:
    """The key of the alert to `manager` that the offer's rep missed its contact SLA."""
    return f"contact-missed:{offer_id}:{manager}"


def contact_missed_instead(
    policy: Policy,
    payload: Mapping[str, Any],
    refused: str,
    alert_key: str,
    why: str,
    now: datetime,
    *,
    told: Collection[str],
) -> list[dict[str, Any]]:
    """The alert of a missed contact SLA (its `payload`, its key `alert_key`) could not reach
    the manager `refused`: every other manager of the policy gets it instead, with `why`, but
    those `told` of it already; one of these that cannot go either is passed on no further."""
    return [
        repo.outbox_values(
            kind=OutboxKind.CONTACT_MISSED,
            dedupe_key=f"{alert_key}:instead:{manager}",
            payload={**payload, "manager": manager, "why": why, INSTEAD_OF: refused},
            now=now,
            lane=policy.slack_of(manager),
        )
        for manager in sorted(policy.managers)
        if manager != refused and manager not in told
    ]


def unreachable_key(missing: str, day: date, manager: str) -> str:
    """The key of the note to `manager` that `missing` could not be reached on `day` (UTC)."""
    return f"manager-unreachable:{missing}:{day.isoformat()}:{manager}"


def unreachable_notes(
    policy: Policy, missing: str, why: str, missed: str, now: datetime
) -> list[dict[str, Any]]:
    """A message to the manager `missing` could not reach them (`why`; `missed`: its outbox
    kind): a note to each other manager of the policy, keyed by the day, so one a day each."""
    day = now.astimezone(UTC).date()
    payload = {"missing": missing, "why": why, "missed": missed}
    return [
        repo.outbox_values(
            kind=OutboxKind.MANAGER_UNREACHABLE,
            dedupe_key=unreachable_key(missing, day, manager),
            payload={**payload, "manager": manager},
            now=now,
            lane=policy.slack_of(manager),
        )
        for manager in sorted(policy.managers)
        if manager != missing
    ]


def policy_refused(
    serving: Policy, manager: str, *, version: str, source: str, problems: str, now: datetime
) -> dict[str, Any]:
    """A policy file failed its checks and `serving` goes on: tell a manager, once per version
    refused (every replica that reads the file queues it under the same key)."""
    return repo.outbox_values(
        kind=OutboxKind.POLICY_REFUSED,
        dedupe_key=f"policy-refused:{version}:{manager}",
        payload={
            "manager": manager,
            "version": version,
            "source": source,
            "problems": problems,
            "serving": serving.version,
        },
        now=now,
        lane=serving.slack_of(manager),
    )


def absence_told(
    policy: Policy,
    rep_id: str,
    *,
    by: str,
    until: datetime | None,
    offers: Sequence[int] | None,
    change: int,
    now: datetime,
) -> dict[str, Any]:
    """Tell a rep in a DM that `by` marked them out of office (`offers`: their unclaimed ones
    then, which move on; where they went is read as it goes) or back (`offers` None); once per
    change (`change`: the id of the audit event that records it)."""
    payload: dict[str, Any] = {"rep": rep_id, "by": by, "away": offers is not None}
    if offers is not None:
        payload |= {"until": until.isoformat() if until else None, "offers": list(offers)}
    return repo.outbox_values(
        kind=OutboxKind.ABSENCE_TOLD,
        dedupe_key=f"absence-told:{change}",
        payload=payload,
        now=now,
        lane=policy.slack_of(rep_id),
    )


def managers_of(policy: Policy, team_name: str | None) -> list[str]:
    """Who hears of a team's leads: its manager; for a team without one (or a lead of no
    team), every manager in the policy, so that nobody misses it."""
    team = policy.teams.get(team_name) if team_name else None
    return [team.manager] if team is not None and team.manager else sorted(policy.managers)
