"""Database operations on case rows: create, change, delete, find by share token, search, history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events.lifecycle import Visibility
from casebook_gateway.adapters.db import cases, history, images, studies


async def get_case(session: AsyncSession, case_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    q = select(cases).where(cases.c.id == case_id)
    row = (await session.execute(q.with_for_update() if lock else q)).mappings().first()
    return dict(row) if row else None


async def study_rows(session: AsyncSession, case_id: str) -> list[dict[str, Any]]:
    """The case's studies in position order, each with its image count (`n_images`)."""
    counts = (select(images.c.study_id, func.count().label("n")).where(images.c.case_id == case_id)
              .group_by(images.c.study_id).subquery())
    q = (select(studies, func.coalesce(counts.c.n, 0).label("n_images"))
         .outerjoin(counts, counts.c.study_id == studies.c.id)
         .where(studies.c.case_id == case_id).order_by(studies.c.position, studies.c.created_at))
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def insert_history(session: AsyncSession, case_id: str, **values: Any) -> None:
    await session.execute(history.insert().values(case_id=case_id, **values))


async def insert_case(session: AsyncSession, case_id: str, **values: Any) -> None:
    await session.execute(cases.insert().values(id=case_id, **values))


async def update_case(session: AsyncSession, case_id: str, **values: Any) -> None:
    await session.execute(cases.update().where(cases.c.id == case_id).values(**values))


async def delete_case(session: AsyncSession, case_id: str) -> None:
    """The case and (by cascade) its studies, images, revisions and history."""
    await session.execute(cases.delete().where(cases.c.id == case_id))


async def shared_case(session: AsyncSession, token: str) -> dict[str, Any] | None:
    """The unlisted case whose share token this is (a revoked or renewed token finds nothing)."""
    row = (await session.execute(select(cases).where(cases.c.share_token == token,
                                                     cases.c.visibility == Visibility.UNLISTED))).mappings().first()
    return dict(row) if row else None


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search(session: AsyncSession, *, owner_id: str | None, q: str | None, system: str | None, limit: int,
                 after: tuple[datetime, str] | None) -> list[dict[str, Any]]:
    """Newest first. `owner_id`: all of that owner's cases, searched in their working copy; None: the approved
    public cases, searched in their published revision only (an edit awaiting approval is never matched)."""
    mine = owner_id is not None
    stmt = select(cases).where(cases.c.owner_id == owner_id if mine else cases.c.listed_public)
    if q:
        cols = ([cases.c.title, cases.c.diagnosis, cases.c.presentation] if mine else
                [cases.c.public_snapshot[k].astext for k in ("title", "diagnosis", "presentation")])
        stmt = stmt.where(or_(*(c.ilike(_like(q), escape="\\") for c in cols)))
    if system:
        stmt = stmt.where((cases.c.systems if mine else cases.c.public_snapshot["systems"]).contains([system]))
    if after:
        stmt = stmt.where(or_(cases.c.created_at < after[0],
                              and_(cases.c.created_at == after[0], cases.c.id < after[1])))
    stmt = stmt.order_by(cases.c.created_at.desc(), cases.c.id.desc()).limit(limit)
    return [dict(r) for r in (await session.execute(stmt)).mappings()]


async def history_of(session: AsyncSession, case_id: str) -> list[dict[str, Any]]:
    q = select(history).where(history.c.case_id == case_id).order_by(history.c.id)
    return [dict(r) for r in (await session.execute(q)).mappings()]
