"""dashboard_sign_outs: dashboard sessions ended before they expired

Signing out of the dashboard cleared the cookie in that browser only: a copy of it kept working
until it expired. Each sign-out is now recorded here, by session id (or, signing out everywhere,
by person), and a session found here is refused by every replica. Rows go once the sessions
they end have expired (`storage.retention`). Sessions signed before this revision carry no id
and are refused: their holders sign in again.

Revision ID: 0016
Revises: 0015
Created: 2026-12-07 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sign_outs",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("at", storage.models.UtcDateTime(), nullable=False),
        sa.Column("expires_at", storage.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(
        "ix_dashboard_sign_outs_expires_at", "dashboard_sign_outs", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_dashboard_sign_outs_expires_at", table_name="dashboard_sign_outs")
    op.drop_table("dashboard_sign_outs")
