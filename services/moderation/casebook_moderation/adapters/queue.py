"""Database operations on the review queue, shared by the event handlers and the editors' routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import CaseSubmitted, Reason
from casebook_moderation import core
from casebook_moderation.adapters.db import decisions, images, items

Emit = Callable[[BaseModel], Awaitable[Any]]


async def lock_case(session: AsyncSession, case_id: str) -> None:
    """Serialise every event of one case: an image event and its submission may be handled concurrently, and
    without the lock each could miss the other's uncommitted row and leave the item waiting forever."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": case_id})


async def get_item(session: AsyncSession, case_id: str, *, for_update: bool = False) -> Row[Any] | None:
    q = select(items).where(items.c.case_id == case_id)
    return (await session.execute(q.with_for_update() if for_update else q)).first()


async def update_item(session: AsyncSession, case_id: str, **values: Any) -> None:
    await session.execute(items.update().where(items.c.case_id == case_id).values(**values))


def _image_state(r: Row[Any]) -> core.ImageState:
    return core.ImageState(image_id=r.image_id, status=r.status, flags=tuple(r.flags), reasons=tuple(r.reasons),
                           identifier_digests=tuple(r.identifier_digests), study_id=r.study_id, modality=r.modality,
                           series_uid=r.series_uid, rows=r.rows, columns=r.columns, frames=r.frames)


async def case_images(session: AsyncSession, case_id: str) -> dict[str, core.ImageState]:
    rows = (await session.execute(select(images).where(images.c.case_id == case_id))).all()
    return {r.image_id: _image_state(r) for r in rows}


async def record_image(session: AsyncSession, case_id: str, image: core.ImageState) -> None:
    """Store an image report merged with the stored one (`core.merge_report`: a quarantine is final)."""
    old = (await session.execute(select(images).where(images.c.case_id == case_id,
                                                      images.c.image_id == image.image_id))).first()
    image = core.merge_report(None if old is None else _image_state(old), image)
    values = {"status": image.status, "flags": list(image.flags), "reasons": list(image.reasons),
              "identifier_digests": list(image.identifier_digests), "study_id": image.study_id,
              "modality": image.modality, "series_uid": image.series_uid, "rows": image.rows,
              "columns": image.columns, "frames": image.frames}
    stmt = insert(images).values(case_id=case_id, image_id=image.image_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[images.c.case_id, images.c.image_id],
                                                     set_=values))


async def save_submission(session: AsyncSession, e: CaseSubmitted, submitted_at: datetime) -> bool:
    """Put (or replace) the case in the queue as `checking`; False when the submission is stale."""
    item = await get_item(session, e.case_id, for_update=True)
    if item is not None and core.is_stale(item.state, item.revision, item.withdrawn_revision, e.revision):
        return False
    values = {"owner_id": e.owner_id, "owner_name": e.owner_name, "title": e.case.title, "revision": e.revision,
              "state": "checking", "snapshot": e.case.model_dump(mode="json"), "image_ids": list(e.image_ids),
              "checks": [], "advice": [], "diff": e.diff.model_dump(mode="json") if e.diff else None,
              "submitted_at": submitted_at, "claimed_by": None, "claim_expires_at": None,
              "decided_at": None}
    stmt = insert(items).values(case_id=e.case_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[items.c.case_id], set_=values))
    return True


async def close_case(session: AsyncSession, case_id: str, owner_id: str, *, state: str, revision: int = 0) -> None:
    """Take a case out of the queue (deleted, or withdrawn at `revision`); remembered for later stale events."""
    item = await get_item(session, case_id, for_update=True)
    if item is None:
        await session.execute(insert(items).values(case_id=case_id, owner_id=owner_id, revision=0, state=state,
                                                   withdrawn_revision=revision))
    elif (values := core.closing(item.state, item.revision, item.withdrawn_revision, to=state, at=revision)):
        await update_item(session, case_id, **values)


async def decide(session: AsyncSession, item: Row[Any], *, approve: bool, editor_id: str | None,
                 reasons: Sequence[Reason], now: datetime, emit: Emit) -> None:
    """Record a decision, close the item and announce it, all in the caller's transaction."""
    outcome = "approved" if approve else "rejected"
    await update_item(session, item.case_id, state=outcome, decided_at=now, claimed_by=None, claim_expires_at=None)
    await session.execute(decisions.insert().values(
        case_id=item.case_id, revision=item.revision, outcome=outcome, automatic=editor_id is None,
        editor_id=editor_id, reasons=[r.model_dump() for r in reasons], decided_at=now))
    await emit(core.decision_event(case_id=item.case_id, owner_id=item.owner_id, revision=item.revision,
                                   title=item.title, approve=approve, editor_id=editor_id, reasons=reasons, now=now))


async def queue_page(session: AsyncSession, limit: int, after: tuple[datetime, str] | None) -> list[Row[Any]]:
    """Waiting items (claimed or not), oldest submission first, after the cursor position."""
    q = select(items).where(items.c.state == "waiting")
    if after is not None:
        q = q.where(tuple_(items.c.submitted_at, items.c.case_id) > tuple_(*after))
    q = q.order_by(items.c.submitted_at, items.c.case_id).limit(limit)
    return list((await session.execute(q)).all())
