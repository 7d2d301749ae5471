"""Event handlers of the featuring service: approved cases come from events only, so a replay rebuilds them."""

from __future__ import annotations

from collections.abc import Callable

from casebook_events import CaseApproved, CaseDeleted, CaseUpdated, Topic
from casebook_featuring.adapters.catalog import SqlCatalog
from casebook_featuring.ports import Catalog
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime

CatalogFor = Callable[[Delivery], Catalog]


def handlers(*, catalog: CatalogFor) -> dict[str, Handler]:
    """The handler of each consumed topic; `catalog` gives the catalog within a delivery's transaction."""

    async def approved(d: Delivery) -> None:
        e: CaseApproved = d.event
        await catalog(d).record_approval(e)

    async def updated(d: Delivery) -> None:
        e: CaseUpdated = d.event
        # Only a de-listing matters here: re-listing a case always goes through a new approval.
        if not e.listed_public:
            await catalog(d).delist(e.case_id, e.owner_id, revision=e.revision)

    async def deleted(d: Delivery) -> None:
        e: CaseDeleted = d.event
        await catalog(d).delist(e.case_id, e.owner_id, deleted=True)

    return {Topic.CASE_APPROVED: approved, Topic.CASE_UPDATED: updated, Topic.CASE_DELETED: deleted}


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    """The handlers on PostgreSQL, in each delivery's transaction (what the app factory wires)."""
    return handlers(catalog=lambda d: SqlCatalog(d.session))
