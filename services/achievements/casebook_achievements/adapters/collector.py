"""The Collector port on PostgreSQL: every SQL statement of the achievements service."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_achievements.adapters.db import awards, cases
from casebook_achievements.ports import CollectorCase


async def collector_count(session: AsyncSession, user_id: str) -> int:
    """How many public, not deleted cases `user_id` owns."""
    q = select(func.count()).select_from(cases).where(cases.c.owner_id == user_id, cases.c.public,
                                                      ~cases.c.deleted)
    return int((await session.execute(q)).scalar_one())


class SqlCollector:
    """The `Collector` port within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def case(self, case_id: str) -> CollectorCase | None:
        row = (await self.session.execute(select(cases).where(cases.c.case_id == case_id).with_for_update())).first()
        if row is None:
            return None
        return CollectorCase(case_id=row.case_id, owner_id=row.owner_id, public=row.public, deleted=row.deleted,
                             revision=row.revision)

    async def put_case(self, case: CollectorCase) -> None:
        values = {"owner_id": case.owner_id, "public": case.public, "deleted": case.deleted,
                  "revision": case.revision}
        await self.session.execute(insert(cases).values(case_id=case.case_id, **values).on_conflict_do_update(
            index_elements=[cases.c.case_id], set_=values))

    async def count(self, user_id: str) -> int:
        return await collector_count(self.session, user_id)

    async def awarded_level(self, user_id: str) -> int:
        row = (await self.session.execute(select(awards.c.awarded_level).where(awards.c.user_id == user_id)
                                          .with_for_update())).first()
        return int(row.awarded_level) if row else 0

    async def save_award(self, user_id: str, level: int) -> None:
        await self.session.execute(insert(awards).values(user_id=user_id, awarded_level=level).on_conflict_do_update(
            index_elements=[awards.c.user_id], set_={"awarded_level": level}))
