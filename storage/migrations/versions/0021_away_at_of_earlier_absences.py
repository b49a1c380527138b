"""rep_state.away_at for the absences recorded before 0020

0020 keeps when an absence was recorded (`away_at`), which the watchdog's sweep needs to find
the leads a rep held as they were marked out and whose moves were lost. A rep already out when
0020 ran had none, so such leads stayed with them. Their `away_at` is now the time of their
latest `out_of_office` audit event (what recorded the absence), or, where there is none, when
their state last changed, which is no earlier than the absence.

Revision ID: 0021
Revises: 0020
Created: 2026-12-08 02:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The audit events that record an absence (`bot.service.availability`) are about no lead, so
# `ix_audit_events_lead_id` finds them among all others; `data` names the rep.
_REP_OF_EVENT = {
    "sqlite": "json_extract(a.data, '$.rep')",
    "postgresql": "(a.data ->> 'rep')",
}


def upgrade() -> None:
    rep = _REP_OF_EVENT[op.get_bind().dialect.name]
    op.execute(
        "UPDATE rep_state SET away_at = COALESCE("
        " (SELECT MAX(a.at) FROM audit_events a"
        f"  WHERE a.lead_id IS NULL AND a.kind = 'out_of_office' AND {rep} = rep_state.rep_id),"
        " updated_at)"
        " WHERE away AND away_at IS NULL"
    )


def downgrade() -> None:
    """Nothing to undo: 0020's downgrade drops the column."""
