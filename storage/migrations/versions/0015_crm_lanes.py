"""outbox: a lead's CRM writes in its lane, kept in order across replicas

A CRM worker takes a lead's owner write only once every write queued before it for that lead
has ended, whichever replica took it: the claim looks for an earlier item of the same lane
still to carry out, through `ix_outbox_lane_pending` (a lane's pending items, by id). Owner
writes still to carry out are put in their lead's lane (`crm-lead:<lead id>`); those done or
given up keep none.

Revision ID: 0015
Revises: 0014
Created: 2026-12-07 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = "done_at IS NULL AND failed_at IS NULL"
_OWNER_WRITES = ("crm.set_owner.salesforce", "crm.set_owner.hubspot")
_outbox = sa.table(
    "outbox",
    sa.column("kind", sa.String),
    sa.column("lane", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("done_at", sa.DateTime),
    sa.column("failed_at", sa.DateTime),
)


def upgrade() -> None:
    op.create_index(
        "ix_outbox_lane_pending",
        "outbox",
        ["lane", "id"],
        sqlite_where=sa.text(_PENDING),
        postgresql_where=sa.text(_PENDING),
    )
    lead_id = _outbox.c.payload["lead_id"].as_string()
    op.execute(
        _outbox.update()
        .where(
            _outbox.c.kind.in_(_OWNER_WRITES),
            _outbox.c.done_at.is_(None),
            _outbox.c.failed_at.is_(None),
        )
        .values(lane=sa.literal("crm-lead:") + lead_id)
    )


def downgrade() -> None:
    # The version before kept a lead's writes in order within its process, from the payload.
    op.execute(_outbox.update().where(_outbox.c.kind.in_(_OWNER_WRITES)).values(lane=None))
    op.drop_index("ix_outbox_lane_pending", table_name="outbox")
