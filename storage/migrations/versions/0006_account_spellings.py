"""accounts: domains in one spelling (Unicode, not punycode) and name keys without the legal forms
routing now strips (Oyj, Sp. z o.o., ...)

Accounts are looked up by their stored registrable domain (`WHERE domain IN ...`) and their stored
name keys, so rows written before this revision would miss a lead that spells the domain the
other way, or count keys the router no longer makes. Both are worked out again here, with the
routing code of the version that runs the migration, from what the import stored: the name and
the domain as given (`website`). Only rows that change are written.

Revision ID: 0006
Revises: 0005
Created: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from routing.company_names import company_key, name_blocking_keys
from routing.domains import registrable_domain

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 1000  # accounts per round: their keys are read together

accounts = sa.table(
    "accounts",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("domain", sa.String),
    sa.column("website", sa.String),
)
account_keys = sa.table("account_keys", sa.column("account_id", sa.String), sa.column("key"))


def upgrade() -> None:
    bind = op.get_bind()
    after = ""
    while True:
        rows = bind.execute(
            sa.select(accounts.c.id, accounts.c.name, accounts.c.domain, accounts.c.website)
            .where(accounts.c.id > after)
            .order_by(accounts.c.id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        after = rows[-1][0]
        stored: dict[str, set[str]] = {}
        for account_id, key in bind.execute(
            sa.select(account_keys.c.account_id, account_keys.c.key).where(
                account_keys.c.account_id.in_([row[0] for row in rows])
            )
        ):
            stored.setdefault(account_id, set()).add(key)
        for account_id, name, domain, website in rows:
            spelt = registrable_domain(website) if website else domain
            if spelt != domain:
                bind.execute(
                    accounts.update().where(accounts.c.id == account_id).values(domain=spelt)
                )
            keys = name_blocking_keys(company_key(name))
            if keys != stored.get(account_id, set()):
                bind.execute(account_keys.delete().where(account_keys.c.account_id == account_id))
                if keys:
                    bind.execute(
                        account_keys.insert(),
                        [{"account_id": account_id, "key": key} for key in sorted(keys)],
                    )


def downgrade() -> None:
    # Nothing to undo: the previous version reads these rows like rows it imported in Unicode.
    pass
