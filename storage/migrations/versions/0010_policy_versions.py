"""policy_versions and policy_activations: every policy served, by the hash of its text, and which
one every replica serves; leads and decisions: the version of the policy that decided them

Rows stored before this revision have no version: they are shown as "unversioned".

Revision ID: 0010
Revises: 0009
Created: 2026-12-14 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("stored_at", storage.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "policy_activations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("replaces", sa.Integer(), nullable=False),
        sa.Column("at", storage.models.UtcDateTime(), nullable=False),
        sa.Column("how", sa.String(length=64), nullable=False),
        sa.Column("by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["version"], ["policy_versions.version"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("replaces", name="uq_policy_activations_replaces"),
    )
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("policy_version", sa.String(length=64), nullable=True))
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("policy_version", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("policy_version")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("policy_version")
    op.drop_table("policy_activations")
    op.drop_table("policy_versions")
