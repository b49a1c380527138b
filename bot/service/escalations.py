"""What Slack could not bring to whom it was meant for: a queued lead its queue's channel
refused, or a manager's DM that refused an alert. Either way the lead is told to managers in
their DMs instead (never to the channel that refused it), and its story says who was told. A
manager Slack cannot reach is never a silent hole: what is personal to them (the digest) or
went to every manager at once is not sent twice, but the others hear, once a day, that the
manager cannot be reached.

The outbox item is given up first, and the escalation follows in a transaction of its own: the
delivery's, once the give-up is committed, or, should that one be lost (a crash in between, the
database gone for a moment), the watchdog's sweep's (`safety_nets`). Each escalation marks
its item escalated in the same transaction, by compare-and-set, so whichever comes second tells
nobody."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Any

from bot.service.kinds import (
    ALERTED,
    INSTEAD_OF,
    MANAGER_NOT_TOLD,
    QUEUE_POST_UNDELIVERABLE,
    OutboxKind,
)
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
from storage.models import LeadRow, LeadStatus, OfferRow, OutboxRow

log = logging.getLogger(__name__)

# A manager's DM of these that cannot go for good is passed on (`manager_unreached`); a queued
# lead's post or alert has its own (`queue_post_undeliverable`, `manager_not_told`); the note
# that a manager cannot be reached goes no further.
PASSED_ON = (
    OutboxKind.CONTACT_MISSED,
    OutboxKind.DIGEST,
    OutboxKind.BACKLOG,
    OutboxKind.POLICY_REFUSED,
)
ESCALATED_KINDS = (OutboxKind.QUEUE_POST, OutboxKind.MANAGER_ALERT, *PASSED_ON)
# How long after an item's give-up the sweep takes its escalation over: the delivery's own
# comes a moment after the give-up; the sweep must not race it (it would only find it done).
GIVEN_UP_GRACE = timedelta(minutes=1)


async def escalate(uow: UnitOfWork, item: OutboxRow, why: str) -> int | None:
    """What a given-up item of `ESCALATED_KINDS` calls for, done once: how many managers were
    told; None when its escalation was done already (or its kind calls for none)."""
    payload = item.payload
    if item.kind == OutboxKind.QUEUE_POST:
        return await queue_post_undeliverable(uow, int(payload["lead_id"]), item.dedupe_key, why)
    if item.kind == OutboxKind.MANAGER_ALERT:
        return await manager_not_told(
            uow,
            lead_id=int(payload["lead_id"]),
            manager=str(payload["manager"]),
            alert_key=item.dedupe_key,
            why=why,
            passed_on=INSTEAD_OF in payload,
            alerted=[str(manager) for manager in payload.get(ALERTED) or ()],
        )
    if item.kind in PASSED_ON:
        return await manager_unreached(
            uow,
            kind=item.kind,
            manager=str(payload["manager"]),
            key=item.dedupe_key,
            why=why,
            payload=payload,
        )
    return None


async def queue_post_undeliverable(
    uow: UnitOfWork, lead_id: int, post_key: str, why: str
) -> int | None:
    """A queued lead's post could not go to its queue's channel (archived, gone, the bot not in
    it): its managers get it in their DMs. Returns how many were told; none when the lead left
    the queue meanwhile; None when the post's item (key `post_key`) was escalated already."""
    policy = uow.policy()

    def work(tx: Transaction) -> int | None:
        if not repo.mark_escalated(session=tx.session, dedupe_key=post_key, now=uow.clock()):
            return None
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
        if _told_already(tx, alerts):
            return None
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
) -> int | None:
    """A manager's DM refused the alert of a queued lead (their account deactivated, say): the
    policy's other managers get it instead, but those `alerted` of it at the same time (they
    have it), and unless this alert was already one sent instead (`passed_on`), which goes no
    further. Returns how many were told; None when the alert's item (key `alert_key`) was
    escalated already."""
    policy = uow.policy()

    def work(tx: Transaction) -> int | None:
        if not repo.mark_escalated(session=tx.session, dedupe_key=alert_key, now=uow.clock()):
            return None
        row = _still_queued(tx, lead_id)
        if row is None:
            return 0
        name = _names(policy, [manager])
        alerts = []
        if not passed_on:
            said = f"{name} could not be told of this lead in Slack ({why}), so you are"
            now = uow.clock()
            alerts = alerts_instead(policy, lead_id, manager, alert_key, said, now, alerted=alerted)
        if _told_already(tx, alerts):
            return None
        others = [alert["payload"]["manager"] for alert in alerts]
        told = f"told {_names(policy, others)} instead" if others else "nobody else told"
        reason = f"{name}: {why} · {told}"
        _audit(tx, uow, lead_id, MANAGER_NOT_TOLD, reason, {"queue": row.queue})
        tx.queue(alerts)
        return len(alerts)

    return await uow.write(work)


async def manager_unreached(
    uow: UnitOfWork, *, kind: str, manager: str, key: str, why: str, payload: Mapping[str, Any]
) -> int | None:
    """A message of `kind` (its outbox key and payload) could not reach `manager` in Slack, for
    good (`why`: deactivated, an id Slack does not know). A missed contact SLA goes to the other
    managers instead, as a queued lead's alert does. A digest is the manager's own, the backlog
    word is about leads whose cards reach their reps anyway, and a refused policy went to every
    manager at once: none is sent to anyone else, but the others are told, once a day, that
    the manager cannot be reached. Returns how many were told; None when the item (key `key`)
    was escalated already."""
    if kind == OutboxKind.CONTACT_MISSED:
        return await _contact_miss_not_told(uow, manager, key, why, payload)
    policy = uow.policy()
    # A manager taken out of the policy meanwhile is missing to nobody.
    rows = (
        unreachable_notes(policy, manager, why, kind, uow.clock())
        if (manager in policy.managers)
        else []
    )

    def work(tx: Transaction) -> int | None:
        if not repo.mark_escalated(session=tx.session, dedupe_key=key, now=uow.clock()):
            return None
        return repo.queue_outbox_once(session=tx.session, rows=rows)

    try:
        queued = await uow.write(work)
    except repo.AlreadyQueued:
        # Another item's give-up queued the same note (one a day) just now: this item stays
        # unmarked, and the sweep marks it later, finding the note queued. Nobody was told
        # here, and the sweep does not count it as escalated until then.
        return None
    if queued is None:
        return None
    if manager in policy.managers and not rows:
        log.warning(
            "manager %s cannot be reached in Slack (%s), and the policy has no other manager "
            "to tell",
            manager,
            why,
        )
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
) -> int | None:
    """The alert of a missed contact SLA could not reach `manager`: the policy's other
    managers get it instead, but those told of it already; one sent instead goes no further."""
    policy = uow.policy()
    offer_id = int(payload["offer_id"])

    def work(tx: Transaction) -> int | None:
        if not repo.mark_escalated(session=tx.session, dedupe_key=key, now=uow.clock()):
            return None
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


def _told_already(tx: Transaction, alerts: list[dict[str, Any]]) -> bool:
    """Whether an item's alerts instead were queued already: by a replica of a release before
    revision 0017 (an upgrade under way), which told them as the item ended and marked nothing.
    This release queues them only in the transaction that marks the item, so never twice."""
    keys = [alert["dedupe_key"] for alert in alerts]
    return bool(keys and repo.outbox_keys_queued(session=tx.session, keys=keys))


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
