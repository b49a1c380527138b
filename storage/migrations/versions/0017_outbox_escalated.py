"""outbox: a given-up item's escalation, marked done once

A queued lead's post its queue's channel refused, or a manager's DM that refused an alert, a
digest or a word on a backlog or a refused policy, is told to other managers in a transaction of
its own, after the item's give-up is committed. The item now says when that was done
(`escalated_at`), set by a compare-and-set in the escalation's own transaction: the watchdog's
sweep finds items given up a while ago and not escalated (through `ix_outbox_to_escalate`) and
does it then, and a late delivery and the sweep cannot both tell the managers. Items given up
before this revision were escalated as they ended (or lost, which nothing then recorded): they
are marked done as of their give-up, so that nobody is told of an old lead again.

Revision ID: 0017
Revises: 0016
Created: 2026-12-07 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TO_ESCALATE = "failed_at IS NOT NULL AND escalated_at IS NULL"
_ESCALATED_KINDS = (
    "slack.queue_post",
    "slack.manager_alert",
    "slack.contact_missed",
    "slack.digest",
    "slack.backlog",
    "slack.policy_refused",
)
_outbox = sa.table(
    "outbox",
    sa.column("kind", sa.String),
    sa.column("failed_at", sa.DateTime),
    sa.column("escalated_at", sa.DateTime),
)


def upgrade() -> None:
    op.add_column("outbox", sa.Column("escalated_at", storage.models.UtcDateTime(), nullable=True))
    op.execute(
        _outbox.update()
        .where(_outbox.c.kind.in_(_ESCALATED_KINDS), _outbox.c.failed_at.is_not(None))
        .values(escalated_at=_outbox.c.failed_at)
    )
    op.create_index(
        "ix_outbox_to_escalate",
        "outbox",
        ["kind", "failed_at"],
        sqlite_where=sa.text(_TO_ESCALATE),
        postgresql_where=sa.text(_TO_ESCALATE),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_to_escalate", table_name="outbox")
    op.drop_column("outbox", "escalated_at")
