"""The `ReadModel` port of the event handlers on PostgreSQL, over the gateway's other adapters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events.lifecycle import RevisionStatus
from casebook_gateway.adapters import casestore, imagestore, listings, revisions
from casebook_gateway.ports import Revision


class SqlReadModel:
    """The `ReadModel` port in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def case_for_update(self, case_id: str) -> dict[str, Any] | None:
        return await casestore.get_case(self.session, case_id, lock=True)

    async def update_case(self, case_id: str, **values: Any) -> None:
        await casestore.update_case(self.session, case_id, **values)

    async def revision_for_update(self, case_id: str, n: int) -> Revision | None:
        row = await revisions.get(self.session, case_id, n, for_update=True)
        return None if row is None else Revision(n=row.n, status=row.status, content=row.content)

    async def decide_revision(self, case_id: str, n: int, *, status: str, by: str, at: datetime,
                              reasons: Sequence[dict[str, str]] = ()) -> None:
        await revisions.decide(self.session, case_id, n, status=RevisionStatus(status), by=by, at=at,
                               reasons=list(reasons))

    async def update_image(self, image_id: str, **values: Any) -> bool:
        return await imagestore.update_image(self.session, image_id, **values)

    async def record_history(self, case_id: str, *, actor: str, action: str, from_status: str | None = None,
                             to_status: str | None = None, reasons: Sequence[dict[str, str]] = (),
                             revision: int | None = None) -> None:
        await casestore.insert_history(self.session, case_id, actor=actor, action=action, from_status=from_status,
                                       to_status=to_status, reasons=list(reasons), revision=revision)

    async def update_export(self, export_id: str, **values: Any) -> None:
        await listings.update_export(self.session, export_id, **values)

