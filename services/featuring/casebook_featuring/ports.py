"""The ports of the featuring service: what its handlers need, whatever stores it."""

from __future__ import annotations

from typing import Protocol

from casebook_events import CaseApproved
from casebook_featuring import core


class Catalog(Protocol):
    """The approved cases and the featured list, as the event handlers change them (in one transaction)."""

    async def record_approval(self, e: CaseApproved) -> None:
        """List an approved case; an approval older than what is known, or of a deleted case, changes nothing."""

    async def delist(self, case_id: str, owner_id: str, *, revision: int = 0, deleted: bool = False) -> None:
        """Take a case out of the listings and the featured list; a deletion is final."""


class FeedSource(Protocol):
    """What the Atom feed is built from."""

    async def feed_items(self, limit: int) -> list[core.FeedItem]:
        """The newest `limit` featured cases and Case of the Month picks of listed cases, newest first."""
