"""experiments: the experiment and arm each decision was made in, and each lead story's arm

Decisions and stories stored before this revision took part in no experiment: None.

Revision ID: 0012
Revises: 0011
Created: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("experiment", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("arm", sa.String(length=16), nullable=True))
    with op.batch_alter_table("lead_stories") as batch:
        batch.add_column(sa.Column("arm", sa.String(length=96), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lead_stories") as batch:
        batch.drop_column("arm")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("arm")
        batch.drop_column("experiment")
