"""offers: the contact SLA, from claim to first touch (its length, its deadline, the watchdog's
check and the reminder at half)

Offers claimed before this revision have none: the contact SLA starts with the claims after it.

Revision ID: 0009
Revises: 0008
Created: 2026-12-14 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("contact_sla_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("contact_due_at", storage.models.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("contact_check_at", storage.models.UtcDateTime(), nullable=True))
        batch.add_column(
            sa.Column("contact_remind_at", storage.models.UtcDateTime(), nullable=True)
        )
        batch.create_index("ix_offers_contact_check", ["contact_check_at"])
        batch.create_index("ix_offers_contact_remind", ["contact_remind_at"])


def downgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.drop_index("ix_offers_contact_remind")
        batch.drop_index("ix_offers_contact_check")
        batch.drop_column("contact_remind_at")
        batch.drop_column("contact_check_at")
        batch.drop_column("contact_due_at")
        batch.drop_column("contact_sla_seconds")
