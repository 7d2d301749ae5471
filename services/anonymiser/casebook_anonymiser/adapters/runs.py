"""The record of de-identification runs on PostgreSQL (the `Runs` port; the only SQL of the anonymiser)."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_anonymiser.adapters.db import runs
from casebook_anonymiser.ports import Run
from casebook_platform.db import Database


class SqlRuns:
    """One row per image in `runs`, and whether its raw upload is gone yet."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, session: AsyncSession, run: Run) -> None:
        """Record an image's outcome in the delivery's transaction (a redelivery changes nothing)."""
        await session.execute(insert(runs).values(**asdict(run)).on_conflict_do_nothing())

    async def mark_raw_deleted(self, image_id: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(runs.update().where(runs.c.image_id == image_id).values(incoming_deleted=True))

    async def raw_left(self, limit: int = 500) -> list[tuple[str, str]]:
        """(image id, raw object key) of outcomes whose raw upload was not deleted yet."""
        async with self.db.sessions() as s:
            rows = (await s.execute(select(runs.c.image_id, runs.c.incoming_key)
                                    .where(~runs.c.incoming_deleted).limit(limit))).all()
        return [(r.image_id, r.incoming_key) for r in rows]
