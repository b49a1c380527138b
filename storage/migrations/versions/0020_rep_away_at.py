"""rep_state.away_at, and offers indexed by rep and status: lost out-of-office moves found

A rep marked out of office has the absence recorded in one transaction and each of their
unclaimed offers moved on in one of its own after it. A crash or a database blip in between
left offers with a rep who is out: nobody saw them, and the watchdog charged the rep a miss
when their SLA ran out. The absence now keeps when it was recorded (`away_at`), so that the
watchdog's sweep finds the offers the rep held then, still offered to them a while later, and
moves them on as the absence would have; `ix_offers_rep_status` finds a rep's open offers
among all they were ever made (it replaces `ix_offers_rep_id`, its first column). Absences
recorded before this revision have no `away_at`, and the sweep leaves their offers alone.

Revision ID: 0020
Revises: 0019
Created: 2026-12-07 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rep_state") as batch:
        batch.add_column(sa.Column("away_at", storage.models.UtcDateTime(), nullable=True))
    with op.batch_alter_table("offers") as batch:
        batch.create_index("ix_offers_rep_status", ["rep_id", "status"], unique=False)
        batch.drop_index("ix_offers_rep_id")


def downgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.create_index("ix_offers_rep_id", ["rep_id"], unique=False)
        batch.drop_index("ix_offers_rep_status")
    with op.batch_alter_table("rep_state") as batch:
        batch.drop_column("away_at")
