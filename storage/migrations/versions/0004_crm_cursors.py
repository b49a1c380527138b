"""crm_cursors: how far each CRM sync (new Salesforce leads, accounts) has read

Revision ID: 0004
Revises: 0003
Created: 2026-11-22 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("watermark", storage.models.UtcDateTime(), nullable=False),
        sa.Column("updated_at", storage.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("crm_cursors")
