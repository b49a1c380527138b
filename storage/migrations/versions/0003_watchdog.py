"""offers: the SLA given and when to remind; job_runs: once-per-tick jobs across replicas

Revision ID: 0003
Revises: 0002
Created: 2026-11-22 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("sla_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("remind_at", storage.models.UtcDateTime(), nullable=True))
        batch.create_index("ix_offers_status_remind", ["status", "remind_at"], unique=False)
    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(length=128), nullable=False),
        sa.Column("due_at", storage.models.UtcDateTime(), nullable=False),
        sa.Column("runner", sa.String(length=255), nullable=False),
        sa.Column("started_at", storage.models.UtcDateTime(), nullable=False),
        sa.Column("finished_at", storage.models.UtcDateTime(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("job", "due_at"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    with op.batch_alter_table("offers") as batch:
        batch.drop_index("ix_offers_status_remind")
        batch.drop_column("remind_at")
        batch.drop_column("sla_seconds")
