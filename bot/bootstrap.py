"""The one place that wires real parts together; tests call it with fakes instead.

app = bootstrap(settings)                  # the database, the policy, the service
app = bootstrap(settings, clock=FakeClock(), policy=policy_for_test)
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.service import Service
from bot.settings import Settings
from routing.policy import Policy, load_policy
from storage.db import Database, open_database


@dataclass
class App:
    settings: Settings
    db: Database
    service: Service
    policy: Policy

    async def close(self) -> None:
        await self.service.aclose()
        await self.db.dispose()


def bootstrap(
    settings: Settings,
    *,
    policy: Policy | None = None,
    db: Database | None = None,
    clock: Callable[[], datetime] | None = None,
) -> App:
    """Build the application from settings. Raises PolicyError for a bad policy file."""
    loaded = policy if policy is not None else load_policy(settings.rules)
    database = db if db is not None else open_database(settings.database_url)
    service = Service(
        db=database, policy=lambda: loaded, clock=clock or (lambda: datetime.now(UTC))
    )
    # Everything loaded so far lives as long as the process: keep the collector from walking it
    # on every full collection (it doubled the time per decision in the routing benchmark).
    gc.collect()
    gc.freeze()
    return App(settings=settings, db=database, service=service, policy=loaded)
