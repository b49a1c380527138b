"""the routing report: each lead's story, day and week rollups, and how a decision picked its rep

`lead_stories` is derived data, filled by the report's refresh (`bot.service.report`) from the
rows already here: the first refresh after this revision makes a story for every lead stored.
Decisions stored before it recorded neither their method nor whether a fallback took the lead:
those stay None, so their leads count in no team's fairness and as no fallback.

Revision ID: 0011
Revises: 0010
Created: 2026-12-14 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, storage.models.UtcDateTime(), nullable=nullable)


def _moment(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, storage.models.EpochMicroseconds(), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("method", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("fallback", sa.Boolean(), nullable=True))
    op.create_index("ix_offers_card_posted_at", "offers", ["card_posted_at"])
    op.create_index("ix_lead_events_recorded_at", "lead_events", ["recorded_at"])
    op.create_table(
        "lead_stories",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        _moment("created_at", nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=255), nullable=True),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("rep", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=1000), nullable=True),
        sa.Column("segment", sa.String(length=255), nullable=True),
        sa.Column("region", sa.String(length=255), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("unmatched", sa.Boolean(), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        _moment("card_posted_at"),
        _moment("claimed_at"),
        _moment("claim_due_at"),
        sa.Column("claim_misses", sa.Integer(), nullable=False),
        _moment("first_touch_at"),
        _moment("contact_due_at"),
        sa.Column("contact_misses", sa.Integer(), nullable=False),
        _moment("converted_at"),
        _moment("won_at"),
        _moment("lost_at"),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("close_date", sa.Date(), nullable=True),
        sa.Column("marks", sa.JSON(), nullable=True),
        _when("made_at", nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    op.create_index("ix_lead_stories_created_at", "lead_stories", ["created_at"])
    op.create_table(
        "report_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("rolled", sa.Integer(), nullable=True),
        _when("good_until"),
        _when("rolled_at"),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "report_weeks",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("made_from", sa.Integer(), nullable=False),
        _when("good_until"),
        _when("rolled_at"),
        sa.PrimaryKeyConstraint("week"),
    )
    op.create_table(
        "report_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("by", sa.String(length=32), nullable=False),
        sa.Column("group_key", sa.String(length=1000), nullable=True),
        sa.Column("tally", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_report_rollups_by_span", "report_rollups", ["by", "days", "day"])
    op.create_table(
        "report_cursor",
        sa.Column("name", sa.String(length=64), nullable=False),
        _when("watermark", nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("report_cursor")
    op.drop_index("ix_report_rollups_by_span", table_name="report_rollups")
    op.drop_table("report_rollups")
    op.drop_table("report_weeks")
    op.drop_table("report_days")
    op.drop_index("ix_lead_stories_created_at", table_name="lead_stories")
    op.drop_table("lead_stories")
    op.drop_index("ix_lead_events_recorded_at", table_name="lead_events")
    op.drop_index("ix_offers_card_posted_at", table_name="offers")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("fallback")
        batch.drop_column("method")
