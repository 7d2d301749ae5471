"""Database operations on approved cases, the featured list and the monthly picks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import CaseApproved, lifecycle
from casebook_featuring import core
from casebook_featuring.adapters.db import cases, featured, months


async def get_case(session: AsyncSession, case_id: str, *, for_update: bool = False) -> Row[Any] | None:
    q = select(cases).where(cases.c.case_id == case_id)
    return (await session.execute(q.with_for_update() if for_update else q)).first()


async def get_listed(session: AsyncSession, case_id: str) -> Row[Any] | None:
    """The case if it is an approved, public, existing case here; locked for the caller's decision."""
    row = await get_case(session, case_id, for_update=True)
    return row if row is not None and row.listed and not row.deleted and row.approved_at is not None else None


async def record_approval(session: AsyncSession, e: CaseApproved) -> None:
    """List an approved case; an approval older than what we know, or of a deleted case, changes nothing."""
    row = await get_case(session, e.case_id, for_update=True)
    if row is not None and not lifecycle.newer_wins(row.revision, e.revision, deleted=row.deleted):
        return
    values = {"owner_id": e.owner_id, "title": e.title, "revision": e.revision, "approved_at": e.approved_at,
              "listed": True}
    stmt = insert(cases).values(case_id=e.case_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[cases.c.case_id], set_=values))
    await session.execute(featured.update().where(featured.c.case_id == e.case_id).values(title=e.title))


async def delist(session: AsyncSession, case_id: str, owner_id: str, *, revision: int = 0,
                 deleted: bool = False) -> None:
    """The case leaves the listings (and the featured list); Case of the Month picks stay as history."""
    row = await get_case(session, case_id, for_update=True)
    if row is None:
        await session.execute(insert(cases).values(case_id=case_id, owner_id=owner_id, revision=revision,
                                                   listed=False, deleted=deleted))
        return
    if not core.delisting_applies(row.revision, row.deleted, revision, deletion=deleted):
        return
    await session.execute(cases.update().where(cases.c.case_id == case_id).values(
        listed=False, deleted=deleted, revision=max(revision, row.revision)))
    await session.execute(delete(featured).where(featured.c.case_id == case_id))


async def get_featured(session: AsyncSession, case_id: str) -> Row[Any] | None:
    return (await session.execute(select(featured).where(featured.c.case_id == case_id))).first()


async def add_featured(session: AsyncSession, case_id: str, title: str, editor_id: str, at: datetime) -> None:
    await session.execute(insert(featured).values(case_id=case_id, title=title, featured_by=editor_id,
                                                  featured_at=at))


async def featured_page(session: AsyncSession, limit: int, before: tuple[datetime, str] | None) -> list[Row[Any]]:
    """Featured cases, newest first, after the cursor position."""
    q = select(featured)
    if before is not None:
        q = q.where(tuple_(featured.c.featured_at, featured.c.case_id) < tuple_(*before))
    q = q.order_by(featured.c.featured_at.desc(), featured.c.case_id.desc()).limit(limit)
    return list((await session.execute(q)).all())


async def candidates_page(session: AsyncSession, start: datetime, end: datetime, limit: int,
                          after: tuple[datetime, str] | None) -> list[Row[Any]]:
    """Listed cases approved in [start, end), in approval order, after the cursor position."""
    q = select(cases).where(cases.c.listed, ~cases.c.deleted, cases.c.approved_at >= start,
                            cases.c.approved_at < end)
    if after is not None:
        q = q.where(tuple_(cases.c.approved_at, cases.c.case_id) > tuple_(*after))
    q = q.order_by(cases.c.approved_at, cases.c.case_id).limit(limit)
    return list((await session.execute(q)).all())


async def get_pick(session: AsyncSession, month: str) -> Row[Any] | None:
    return (await session.execute(select(months).where(months.c.month == month))).first()


async def save_pick(session: AsyncSession, month: str, case: Row[Any], editor_id: str, at: datetime) -> None:
    """One pick per month: a new pick replaces the previous one."""
    values = {"case_id": case.case_id, "title": case.title, "approved_at": case.approved_at,
              "picked_by": editor_id, "picked_at": at}
    stmt = insert(months).values(month=month, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[months.c.month], set_=values))


async def feed_items(session: AsyncSession, limit: int) -> list[core.FeedItem]:
    """The newest featured cases and Case of the Month picks, newest first, of cases that are still listed."""
    listed = cases.c.listed & ~cases.c.deleted
    newest = func.greatest(featured.c.featured_at, func.coalesce(cases.c.approved_at, featured.c.featured_at))
    featured_q = (select(featured.c.case_id, cases.c.title, featured.c.featured_at, cases.c.approved_at)
                  .join(cases, cases.c.case_id == featured.c.case_id).where(listed)
                  .order_by(newest.desc(), featured.c.case_id.desc()).limit(limit))
    picks_q = (select(months.c.month, months.c.case_id, cases.c.title, months.c.picked_at)
               .join(cases, cases.c.case_id == months.c.case_id).where(listed)
               .order_by(months.c.picked_at.desc(), months.c.month.desc()).limit(limit))
    items = [core.featured_item(r.case_id, r.title, r.featured_at, r.approved_at)
             for r in (await session.execute(featured_q)).all()]
    items += [core.pick_item(r.month, r.case_id, r.title, r.picked_at) for r in (await session.execute(picks_q)).all()]
    return core.feed_order(items, limit)


class SqlCatalog:
    """The `Catalog` port of the event handlers (and the feed's `FeedSource`) on PostgreSQL, in the caller's
    transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_approval(self, e: CaseApproved) -> None:
        await record_approval(self.session, e)

    async def delist(self, case_id: str, owner_id: str, *, revision: int = 0, deleted: bool = False) -> None:
        await delist(self.session, case_id, owner_id, revision=revision, deleted=deleted)

    async def feed_items(self, limit: int) -> list[core.FeedItem]:
        return await feed_items(self.session, limit)
