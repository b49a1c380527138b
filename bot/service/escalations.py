"""What Slack could not bring to whom it was meant for: a queued lead its queue's channel
refused, or a manager's DM that refused an alert. Either way the lead is told to managers in
their DMs instead (never to the channel that refused it), and its story says who was told. A
manager Slack cannot reach is never a silent hole: what is personal to them (the digest) or
went to every manager at once is not sent twice, but the others hear, once a day, that the
manager cannot be reached."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from bot.service.kinds import INSTEAD_OF, MANAGER_NOT_TOLD, QUEUE_POST_UNDELIVERABLE, OutboxKind
from bot.service.outbox_items import (
    alerts_instead,
    contact_missed_instead,
    contact_missed_key,
    manager_alert_key,
    queue_post_alerts,
    unreachable_notes,
)
from bot.service.unit_of_work import Transaction, UnitOfWork
from routing.policy import Policy
from storage import repository as repo
from storage.models import LeadRow, LeadStatus, OfferRow

log = logging.getLogger(__name__)


async def queue_post_undeliverable(uow: UnitOfWork, lead_id: int, post_key: str, why: str) -> int:
    """A queued lead's post could not go to its queue's channel (archived, gone, the bot not in
    it): its managers get it in their DMs. Returns how many were told; none when the lead left
    the queue meanwhile."""
    policy = uow.policy()

    def work(tx: Transaction) -> int:
        row = _still_queued(tx, lead_id)
        if row is None:
            return 0
        offers = repo.offers_of_lead(session=tx.session, lead_id=lead_id)
        last = offers[-1] if offers else None
        said = f"It could not be posted in the {row.queue or 'unmatched'} queue's channel ({why})"
        alerts = queue_post_alerts(
            policy, lead_id, last.team if last else None, post_key, said, uow.clock()
        )
        # A manager alerted as the lead went to the queue (the watchdog gave up on it, or no
        # rep's card could go) has it in their DM already, with Assign: not a second time.
        had = _alerted_already(tx, last, [alert["payload"]["manager"] for alert in alerts])
        alerts = [alert for alert in alerts if alert["payload"]["manager"] not in had]
        told = f"told {_names(policy, [alert['payload']['manager'] for alert in alerts])}"
        if had:
            told = (f"{told}; " if alerts else "") + f"{_names(policy, had)} had it already"
        reason = f"{why} · {told}"
        _audit(tx, uow, lead_id, QUEUE_POST_UNDELIVERABLE, reason, {"queue": row.queue})
        tx.queue(alerts)
        return len(alerts)

    return await uow.write(work)


async def manager_not_told(
    uow: UnitOfWork,
    *,
    lead_id: int,
    manager: str,
    alert_key: str,
    why: str,
    passed_on: bool,
    alerted: Collection[str] = (),
) -> int:
    """A manager's DM refused the alert of a queued lead (their account deactivated, say): the
    policy's other managers get it instead, but those `alerted` of it at the same time (they
    have it), and unless this alert was already one sent instead (`passed_on`), which goes no
    further. Returns how many were told."""
    policy = uow.policy()

    def work(tx: Transaction) -> int:
        row = _still_queued(tx, lead_id)
        if row is None:
            return 0
        name = _names(policy, [manager])
        alerts = []
        if not passed_on:
            said = f"{name} could not be told of this lead in Slack ({why}), so you are"
            now = uow.clock()
            alerts = alerts_instead(policy, lead_id, manager, alert_key, said, now, alerted=alerted)
        others = [alert["payload"]["manager"] for alert in alerts]
        told = f"told {_names(policy, others)} instead" if others else "nobody else told"
        reason = f"{name}: {why} · {told}"
        _audit(tx, uow, lead_id, MANAGER_NOT_TOLD, reason, {"queue": row.queue})
        tx.queue(alerts)
        return len(alerts)

    return await uow.write(work)


async def manager_unreached(
    uow: UnitOfWork, *, kind: str, manager: str, key: str, why: str, payload: Mapping[str, Any]
) -> int:
    """A message of `kind` (its outbox key and payload) could not reach `manager` in Slack, for
    good (`why`: deactivated, an id Slack does not know). A missed contact SLA goes to the other
    managers instead, as a queued lead's alert does. A digest is the manager's own, the backlog
    word is about leads whose cards reach their reps anyway, and a refused policy went to every
    manager at once: none is sent to anyone else, but the others are told, once a day, that
    the manager cannot be reached. Returns how many were told."""
    if kind == OutboxKind.CONTACT_MISSED:
        return await _contact_miss_not_told(uow, manager, key, why, payload)
    policy = uow.policy()
    if manager not in policy.managers:
        return 0  # taken out of the policy meanwhile: nobody is missing
    rows = unreachable_notes(policy, manager, why, kind, uow.clock())
    if not rows:
        log.warning(
            "manager %s cannot be reached in Slack (%s), and the policy has no other manager "
            "to tell",
            manager,
            why,
        )
        return 0
    try:
        queued = await uow.write(lambda tx: repo.queue_outbox_once(session=tx.session, rows=rows))
    except repo.AlreadyQueued:
        return 0  # another replica's give-up queued them first
    if queued:
        log.warning(
            "manager %s cannot be reached in Slack (%s); the other managers are told (once a day)",
            manager,
            why,
        )
        uow.outbox_written()
    return queued


async def _contact_miss_not_told(
    uow: UnitOfWork, manager: str, key: str, why: str, payload: Mapping[str, Any]
) -> int:
    """The alert of a missed contact SLA could not reach `manager`: the policy's other
    managers get it instead, but those told of it already; one sent instead goes no further."""
    policy = uow.policy()
    offer_id = int(payload["offer_id"])

    def work(tx: Transaction) -> int:
        name = _names(policy, [manager])
        alerts = []
        others = [m for m in sorted(policy.managers) if m != manager]
        keys = {contact_missed_key(offer_id, m): m for m in others}
        keys |= {f"{key}:instead:{m}": m for m in others}
        queued = repo.outbox_keys_queued(session=tx.session, keys=list(keys))
        had = sorted({keys[k] for k in queued})
        if INSTEAD_OF not in payload:
            said = f"{name} could not be told of this in Slack ({why}), so you are"
            now = uow.clock()
            alerts = contact_missed_instead(policy, payload, manager, key, said, now, told=had)
        told = [alert["payload"]["manager"] for alert in alerts]
        if told:
            outcome = f"told {_names(policy, told)} instead"
        elif had and INSTEAD_OF not in payload:
            outcome = f"{_names(policy, had)} had it already"
        else:
            outcome = "nobody else told"
        reason = f"{name}, of the missed contact SLA: {why} · {outcome}"
        data = {"offer_id": offer_id}  # no "rep": the story would name them as not told
        _audit(tx, uow, int(payload["lead_id"]), MANAGER_NOT_TOLD, reason, data)
        tx.queue(alerts)
        return len(alerts)

    return await uow.write(work)


def _alerted_already(tx: Transaction, offer: OfferRow | None, managers: list[str]) -> list[str]:
    """Which of `managers` were alerted that the offer's lead went to the queue."""
    if offer is None:
        return []
    keys = {manager_alert_key(offer.id, manager): manager for manager in managers}
    queued = repo.outbox_keys_queued(session=tx.session, keys=list(keys))
    return [manager for key, manager in keys.items() if key in queued]


def _still_queued(tx: Transaction, lead_id: int) -> LeadRow | None:
    row = repo.lead_by_id(session=tx.session, lead_id=lead_id)
    return row if row is not None and row.status == LeadStatus.QUEUED.value else None


def _audit(
    tx: Transaction, uow: UnitOfWork, lead_id: int, kind: str, reason: str, data: dict[str, Any]
) -> None:
    repo.add_audit(
        session=tx.session,
        lead_id=lead_id,
        at=uow.clock(),
        kind=kind,
        actor=None,
        reason=reason,
        data=data,
    )


def _names(policy: Policy, managers: list[str]) -> str:
    """The managers by name, for a story ("nobody: ..." when there are none)."""
    names = [
        policy.managers[manager].name if manager in policy.managers else manager
        for manager in managers
    ]
    return ", ".join(names) or "nobody: the policy has no manager"
