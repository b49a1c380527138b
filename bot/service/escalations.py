"""A queued lead Slack could not bring to anyone where it was meant to go: its queue's channel
refused its post, or a manager's DM refused the alert. Either way the lead is told to managers
in their DMs instead (never to the channel that refused it), and its story says who was told."""

from __future__ import annotations

from collections.abc import Collection

from bot.service.kinds import MANAGER_NOT_TOLD, QUEUE_POST_UNDELIVERABLE
from bot.service.outbox_items import alerts_instead, manager_alert_key, queue_post_alerts
from bot.service.unit_of_work import Transaction, UnitOfWork
from routing.policy import Policy
from storage import repository as repo
from storage.models import LeadRow, LeadStatus, OfferRow


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
        _audit(tx, uow, lead_id, QUEUE_POST_UNDELIVERABLE, f"{why} · {told}", row.queue)
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
        _audit(tx, uow, lead_id, MANAGER_NOT_TOLD, f"{name}: {why} · {told}", row.queue)
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
    tx: Transaction, uow: UnitOfWork, lead_id: int, kind: str, reason: str, queue: str | None
) -> None:
    repo.add_audit(
        session=tx.session,
        lead_id=lead_id,
        at=uow.clock(),
        kind=kind,
        actor=None,
        reason=reason,
        data={"queue": queue},
    )


def _names(policy: Policy, managers: list[str]) -> str:
    """The managers by name, for a story ("nobody: ..." when there are none)."""
    names = [
        policy.managers[manager].name if manager in policy.managers else manager
        for manager in managers
    ]
    return ", ".join(names) or "nobody: the policy has no manager"
