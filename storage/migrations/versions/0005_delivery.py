"""delivery: attempts named by a lease token, destinations paced across replicas, SLA from the
card's post

Revision ID: 0005
Revises: 0004
Created: 2026-12-06 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("lane", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("lease_token", sa.String(length=255), nullable=True))
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("card_posted_at", storage.models.UtcDateTime(), nullable=True))
    op.create_table(
        "slack_lanes",
        sa.Column("lane", sa.String(length=255), nullable=False),
        sa.Column("not_before", storage.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lane"),
    )
    # Offers made before this revision started their SLA at the decision, as they were told.
    op.execute("UPDATE offers SET card_posted_at = offered_at WHERE message_ts IS NOT NULL")


def downgrade() -> None:
    op.drop_table("slack_lanes")
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("card_posted_at")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("lease_token")
        batch.drop_column("lane")
