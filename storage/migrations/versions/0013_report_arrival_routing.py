"""the routing report judges each lead by the routing it got on arrival; the rep holding it now

A story's rule, team, rep, method, policy version, arm, unmatched and fallback were its latest
decision's; they are now its first decision's (`storage.stories`). The stories and rollups
stored were made the old way, so this revision has them made again, from the rows they come
from, by the report's next refresh (`bot.service.report.refresh_report`, at start and every
minute):

- the stories' cursor is forgotten, so the refresh makes every lead's story again (and writes
  those that differ, which counts a change to their days);
- every day's rollups are marked as never made (`rolled` None) and every week's, and their
  tallies, deleted: until the refresh has remade them, a report tallies those days from the
  stories themselves.

`current_rep` is the rep a lead's latest decision gives it to, whom the performance
distribution's rates credit, as they credited `rep` until now: it starts as the stored `rep`,
the latest decision's as of the last refresh, so those rates read the same across the upgrade.

Revision ID: 0013
Revises: 0012
Created: 2026-12-07 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lead_stories") as batch:
        batch.add_column(sa.Column("current_rep", sa.String(length=64), nullable=True))
    op.execute("UPDATE lead_stories SET current_rep = rep")
    _make_the_report_again()


def downgrade() -> None:
    with op.batch_alter_table("lead_stories") as batch:
        batch.drop_column("current_rep")
    _make_the_report_again()


def _make_the_report_again() -> None:
    op.execute("DELETE FROM report_cursor WHERE name = 'stories'")
    op.execute("DELETE FROM report_rollups")
    op.execute("DELETE FROM report_weeks")
    op.execute("UPDATE report_days SET rolled = NULL, good_until = NULL, rolled_at = NULL")
