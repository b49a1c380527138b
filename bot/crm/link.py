"""One configured CRM as the rest of leadrouter holds it: its client, the runner its calls go
through, and who its owners are. Light to import: the adapters (and their SDKs) are not."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

from bot.crm.base import CrmCalls, CrmClient
from bot.crm.owners import OwnerDirectory

T = TypeVar("T")


@dataclass
class CrmLink:
    """One configured CRM: its client, the runner its calls go through, who its owners are."""

    crm: CrmClient
    calls: CrmCalls
    owners: OwnerDirectory

    @property
    def system(self) -> str:
        return self.crm.system

    async def next_page(self, pages: Iterator[T]) -> T | None:
        """The next page of a CRM read, fetched on the CRM's threads; None after the last."""
        page: T | None = await self.calls(next, pages, None)
        return page
