"""offers.moved_because: why an offer was taken from its rep

An offer taken from its rep closed `reassigned` whatever the reason, and the next rep's card,
`/routing why` and the team's channel said the lead was "taken from" them: blame, for a rep
who went out of office or whose card Slack would not take. Each such offer now keeps why it
moved (`storage.models.MoveReason`: out_of_office, card_undeliverable, left_policy). Offers
moved before stay None and read as they did.

Revision ID: 0018
Revises: 0017
Created: 2026-12-07 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("moved_because", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("moved_because")
