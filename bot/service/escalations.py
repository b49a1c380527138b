"""A queued lead Slack could not bring to anyone where it was meant to go: its queue's channel
refused its post, or a manager's DM refused the alert. Either way the lead is told to managers
in their DMs instead (never to the channel that refused it), and its story says who was told."""

from __future__ import annotations

from collections.abc import Collection

from bot.service.kinds import MANAGER_NOT_TOLD, QUEUE_POST_UNDELIVERABLE
from bot.service.outbox_items import alerts_instead, queue_post_alerts
from bot.service.unit_of_work import Transaction, UnitOfWork
from routing.policy import Policy
from storage import repository as repo
from storage.models import LeadRow, LeadStatus


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
        team = offers[-1].team if offers else None
        said = f"It could not be posted in the {row.queue or 'unmatched'} queue's channel ({why})"
        alerts = queue_post_alerts(policy, lead_id, team, post_key, said, uow.clock())
        told = _names(policy, [alert["payload"]["manager"] for alert in alerts])
        _audit(tx, uow, lead_id, QUEUE_POST_UNDELIVERABLE, f"{why} · told {told}", row.queue)
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
