"""The featuring catalog in memory: the `Catalog` port for the service-test tier (no database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from casebook_events import CaseApproved, lifecycle
from casebook_featuring import core
from casebook_platform.memory import MemoryStore


class MemoryCatalog(MemoryStore):
    """Approved cases, the featured list and the monthly picks; the rules are the core's and lifecycle's, as on
    PostgreSQL."""

    def __init__(self) -> None:
        super().__init__()
        self.state = {"cases": {}, "featured": {}, "picks": {}}

    @property
    def cases(self) -> dict[str, dict[str, Any]]:
        return self.state["cases"]  # type: ignore[no-any-return]

    @property
    def featured(self) -> dict[str, dict[str, Any]]:
        return self.state["featured"]  # type: ignore[no-any-return]

    async def record_approval(self, e: CaseApproved) -> None:
        row = self.cases.get(e.case_id)
        if row is not None and not lifecycle.newer_wins(row["revision"], e.revision, deleted=row["deleted"]):
            return
        self.cases[e.case_id] = {"owner_id": e.owner_id, "title": e.title, "revision": e.revision,
                                 "approved_at": e.approved_at, "listed": True, "deleted": False}
        if e.case_id in self.featured:
            self.featured[e.case_id]["title"] = e.title

    async def delist(self, case_id: str, owner_id: str, *, revision: int = 0, deleted: bool = False) -> None:
        row = self.cases.get(case_id)
        if row is None:
            self.cases[case_id] = {"owner_id": owner_id, "title": "", "revision": revision, "approved_at": None,
                                   "listed": False, "deleted": deleted}
            return
        if not core.delisting_applies(row["revision"], row["deleted"], revision, deletion=deleted):
            return
        row.update(listed=False, deleted=deleted, revision=max(revision, row["revision"]))
        self.featured.pop(case_id, None)

    def add_featured(self, case_id: str, title: str, editor_id: str, at: datetime) -> None:
        """What an editor's `POST /v1/featured` stores (the routes do it on PostgreSQL)."""
        self.featured[case_id] = {"title": title, "featured_by": editor_id, "featured_at": at}

    @property
    def picks(self) -> dict[str, dict[str, Any]]:
        return self.state["picks"]  # type: ignore[no-any-return]

    def save_pick(self, month: str, case_id: str, editor_id: str, at: datetime) -> None:
        """What an editor's `PUT /v1/case-of-the-month/{month}` stores: one pick per month, the last one wins."""
        self.picks[month] = {"case_id": case_id, "title": self.cases[case_id]["title"], "picked_by": editor_id,
                             "picked_at": at}

    async def feed_items(self, limit: int) -> list[core.FeedItem]:
        """The feed's entries, by the core's rules as on PostgreSQL: only cases still listed, newest first."""
        shown = set(self.listed())
        items = [core.featured_item(case_id, self.cases[case_id]["title"], f["featured_at"],
                                    self.cases[case_id]["approved_at"])
                 for case_id, f in self.featured.items() if case_id in shown]
        items += [core.pick_item(month, p["case_id"], self.cases[p["case_id"]]["title"], p["picked_at"])
                  for month, p in self.picks.items() if p["case_id"] in shown]
        return core.feed_order(items, limit)

    def listed(self) -> list[str]:
        """Ids of the cases that show in the listings: approved, listed and not deleted."""
        return sorted(i for i, r in self.cases.items()
                      if r["listed"] and not r["deleted"] and r["approved_at"] is not None)
