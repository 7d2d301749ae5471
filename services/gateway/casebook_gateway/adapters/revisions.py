"""Database operations on case revisions (frozen submissions) and the other case queries of the editorial rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events.lifecycle import RevisionStatus
from casebook_gateway.adapters.db import cases, exports, images, revisions


async def lock_owner(session: AsyncSession, owner_id: str) -> None:
    """Serialise one owner's limit checks (two concurrent creations must not both see room for one more)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"limit:{owner_id}"})


async def count_cases(session: AsyncSession, owner_id: str, visibility: str, exclude: str | None = None) -> int:
    """How many cases of `visibility` the owner holds (a rejected case is a draft and counts)."""
    q = select(func.count()).select_from(cases).where(cases.c.owner_id == owner_id, cases.c.visibility == visibility)
    if exclude:
        q = q.where(cases.c.id != exclude)
    return int((await session.execute(q)).scalar_one())


async def set_share_token(session: AsyncSession, case_id: str, token: str | None) -> None:
    await session.execute(cases.update().where(cases.c.id == case_id).values(share_token=token))


async def image_ids(session: AsyncSession, case_id: str) -> list[str]:
    """Every image of the case that was received (in arrival order): the set a submission freezes."""
    q = select(images.c.id).where(images.c.case_id == case_id, images.c.status != "receiving").order_by(images.c.seq)
    return list((await session.execute(q)).scalars())


async def ready_images_by_study(session: AsyncSession, case_id: str, among: list[str] | None = None
                                ) -> dict[str, int]:
    """study id → number of ready images (only those in `among`, when given)."""
    q = (select(images.c.study_id, func.count().label("n"))
         .where(images.c.case_id == case_id, images.c.status == "ready").group_by(images.c.study_id))
    if among is not None:
        q = q.where(images.c.id.in_(among))
    return {r.study_id: int(r.n) for r in (await session.execute(q)).all()}


async def close_open(session: AsyncSession, case_id: str, status: RevisionStatus) -> None:
    """A submitted revision waiting for a decision is superseded (a newer submission) or withdrawn."""
    await session.execute(revisions.update().where(revisions.c.case_id == case_id,
                                                   revisions.c.status == RevisionStatus.SUBMITTED)
                          .values(status=status))


async def insert(session: AsyncSession, case_id: str, n: int, *, content: dict[str, Any], diff: dict[str, Any],
                 submitted_by: str) -> None:
    await session.execute(revisions.insert().values(case_id=case_id, n=n, status=RevisionStatus.SUBMITTED,
                                                    content=content, diff=diff, submitted_by=submitted_by))


async def get(session: AsyncSession, case_id: str, n: int, *, for_update: bool = False) -> Row[Any] | None:
    q = select(revisions).where(revisions.c.case_id == case_id, revisions.c.n == n)
    return (await session.execute(q.with_for_update() if for_update else q)).first()


async def all_of(session: AsyncSession, case_id: str) -> list[Row[Any]]:
    """Every frozen revision of the case, oldest first."""
    q = select(revisions).where(revisions.c.case_id == case_id).order_by(revisions.c.n)
    return list((await session.execute(q)).all())


async def last_approved(session: AsyncSession, case_id: str) -> Row[Any] | None:
    q = (select(revisions).where(revisions.c.case_id == case_id, revisions.c.status == RevisionStatus.APPROVED)
         .order_by(revisions.c.n.desc()).limit(1))
    return (await session.execute(q)).first()


async def decide(session: AsyncSession, case_id: str, n: int, *, status: RevisionStatus, by: str, at: datetime,
                 reasons: list[dict[str, str]] | None = None) -> None:
    await session.execute(revisions.update().where(revisions.c.case_id == case_id, revisions.c.n == n).values(
        status=status, decided_by=by, decided_at=at, reasons=reasons or []))


async def delete_exports_of(session: AsyncSession, case_id: str) -> None:
    """Forget every export that holds the case (its archive is removed by the export service)."""
    await session.execute(delete(exports).where(or_(exports.c.case_id == case_id,
                                                    exports.c.case_ids.contains([case_id]))))
