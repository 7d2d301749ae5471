"""Event handlers of the featuring service: approved cases come from events only, so a replay rebuilds them."""

from __future__ import annotations

from casebook_events import CaseApproved, CaseDeleted, CaseUpdated, Topic
from casebook_featuring.adapters import catalog
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    async def approved(d: Delivery) -> None:
        e: CaseApproved = d.event
        await catalog.record_approval(d.session, e)

    async def updated(d: Delivery) -> None:
        e: CaseUpdated = d.event
        # Only a de-listing matters here: re-listing a case always goes through a new approval.
        if not e.listed_public:
            await catalog.delist(d.session, e.case_id, e.owner_id, revision=e.revision)

    async def deleted(d: Delivery) -> None:
        e: CaseDeleted = d.event
        await catalog.delist(d.session, e.case_id, e.owner_id, deleted=True)

    return {Topic.CASE_APPROVED: approved, Topic.CASE_UPDATED: updated, Topic.CASE_DELETED: deleted}
