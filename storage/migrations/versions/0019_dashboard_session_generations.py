"""dashboard_session_generations: signing out everywhere without asking any clock

Signing out everywhere recorded when it happened, by the clock of the replica asked, and ended
the sessions issued until then, by the clocks of the replicas that signed them in: with clocks a
second apart, a session signed in just before could survive it, and one signed in just after be
refused. Each person now has a session generation here, carried by the sessions they sign in
and moved on by signing out everywhere. Whoever has an `everywhere:<who>` row in
`dashboard_sign_outs` starts at generation 1: their sessions signed in before revision 0019 (of
generation 0) sign in again once; everybody else's stay signed in. Those rows are left for
replicas not yet upgraded to read, and go with retention once expired. A downgrade turns each
generation into an `everywhere:<who>` row dated then, which ends every session of those people.

Revision ID: 0019
Revises: 0018
Created: 2026-12-07 22:40:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVERYWHERE = "everywhere:"
_SESSION = timedelta(hours=12)  # the longest a session lasts (`bot.dashboard.access`)
_sign_outs = sa.table(
    "dashboard_sign_outs",
    sa.column("key", sa.String),
    sa.column("at", sa.DateTime),
    sa.column("expires_at", sa.DateTime),
)
_generations = sa.table(
    "dashboard_session_generations",
    sa.column("who", sa.String),
    sa.column("generation", sa.Integer),
)


def upgrade() -> None:
    op.create_table(
        "dashboard_session_generations",
        sa.Column("who", sa.String(length=255), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("who"),
    )
    everywhere = _sign_outs.c.key.startswith(_EVERYWHERE, autoescape=True)
    op.execute(
        _generations.insert().from_select(
            ["who", "generation"],
            sa.select(sa.func.substr(_sign_outs.c.key, len(_EVERYWHERE) + 1), sa.literal(1)).where(
                everywhere
            ),
        )
    )


def downgrade() -> None:
    # Stored as naive UTC, as `storage.models.UtcDateTime` stores it.
    now = datetime.now(UTC).replace(tzinfo=None)
    who = op.get_bind().execute(sa.select(_generations.c.who)).scalars().all()
    if who:
        keys = [_EVERYWHERE + person for person in who]
        op.execute(_sign_outs.delete().where(_sign_outs.c.key.in_(keys)))
        op.bulk_insert(
            _sign_outs,
            [{"key": key, "at": now, "expires_at": now + _SESSION} for key in keys],
        )
    op.drop_table("dashboard_session_generations")
