"""accounts: a country (ISO alpha-2) and a state, evidence when a lead is matched by company name

Rows stored before this revision have neither; an accounts file imported again fills them in.
Accounts synced from a CRM are read only when they change there, so the accounts cursors are
dropped: the next sync reads every account once more, with its country and state, as the first
sync did. The leads cursor is left alone: it must not route old leads again.

Revision ID: 0007
Revises: 0006
Created: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

crm_cursors = sa.table("crm_cursors", sa.column("name", sa.String))
# `bot.crm.sync.accounts_cursor(system)`, written out: a migration keeps the names it found.
_ACCOUNTS_CURSORS = ("salesforce:accounts", "hubspot:accounts")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("country", sa.String(length=2), nullable=True))
        batch.add_column(sa.Column("state", sa.String(length=255), nullable=True))
    op.execute(crm_cursors.delete().where(crm_cursors.c.name.in_(_ACCOUNTS_CURSORS)))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("state")
        batch.drop_column("country")
