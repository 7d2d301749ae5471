"""Event handlers of the achievements service: state is derived from events only, so a replay rebuilds it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_achievements import core
from casebook_achievements.adapters.db import awards, cases
from casebook_events import AchievementAwarded, CaseApproved, CaseDeleted, CaseUpdated, Topic
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime


async def _set_case(session: AsyncSession, case_id: str, owner: str, *, public: bool | None = None,
                    deleted: bool = False, revision: int = 0) -> None:
    """Upsert a case's state; an older revision never overrides a newer one, and a deletion is final."""
    row = (await session.execute(select(cases).where(cases.c.case_id == case_id).with_for_update())).first()
    if row is None:
        await session.execute(insert(cases).values(case_id=case_id, owner_id=owner, public=bool(public),
                                                   deleted=deleted, revision=revision))
        return
    if row.deleted or (revision and revision < row.revision):
        return
    values: dict[str, object] = {"deleted": deleted, "revision": max(revision, row.revision)}
    if public is not None:
        values["public"] = public
    await session.execute(cases.update().where(cases.c.case_id == case_id).values(**values))


async def collector_count(session: AsyncSession, user_id: str) -> int:
    q = select(func.count()).select_from(cases).where(cases.c.owner_id == user_id, cases.c.public,
                                                      ~cases.c.deleted)
    return int((await session.execute(q)).scalar_one())


async def _award(d: Delivery, user_id: str, awarded: object) -> None:
    count = await collector_count(d.session, user_id)
    row = (await d.session.execute(select(awards.c.awarded_level).where(awards.c.user_id == user_id)
                                   .with_for_update())).first()
    previous = row.awarded_level if row else 0
    level = core.newly_reached(previous, count)
    if level is None:
        return
    await d.session.execute(insert(awards).values(user_id=user_id, awarded_level=level).on_conflict_do_update(
        index_elements=[awards.c.user_id], set_={"awarded_level": level}))
    await d.emit(AchievementAwarded(user_id=user_id, achievement="collector", level=level,
                                    tier=core.tier(level) or "bronze", count=count), key=user_id)
    awarded.inc()  # type: ignore[attr-defined]


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    awarded = rt.metrics.counter("casebook_achievements_awarded_total", "Achievement levels awarded")

    async def approved(d: Delivery) -> None:
        e: CaseApproved = d.event
        await _set_case(d.session, e.case_id, e.owner_id, public=True, revision=e.revision)
        await _award(d, e.owner_id, awarded)

    async def updated(d: Delivery) -> None:
        e: CaseUpdated = d.event
        if not e.listed_public:
            await _set_case(d.session, e.case_id, e.owner_id, public=False, revision=e.revision)

    async def deleted(d: Delivery) -> None:
        e: CaseDeleted = d.event
        await _set_case(d.session, e.case_id, e.owner_id, public=False, deleted=True)

    return {Topic.CASE_APPROVED: approved, Topic.CASE_UPDATED: updated, Topic.CASE_DELETED: deleted}
