"""offers: where the copy of a card in the team's channel was posted

Revision ID: 0002
Revises: 0001
Created: 2026-11-22 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("team_channel", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("team_message_ts", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("team_message_ts")
        batch.drop_column("team_channel")
