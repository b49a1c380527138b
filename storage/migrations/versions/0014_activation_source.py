"""policy_activations: the file each activation read

`policy history` named each activation by its version's file, the one that version was first
read from; a rollback from another file, or `experiment stop --rules other.yml`, showed the
wrong one. Each activation now keeps its own. Activations made before stay None and are shown
with their version's file, as before.

Revision ID: 0014
Revises: 0013
Created: 2026-12-07 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("policy_activations") as batch:
        batch.add_column(sa.Column("source", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("policy_activations") as batch:
        batch.drop_column("source")
