"""The record of de-identification runs: one row per image, and whether its raw upload is gone yet."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_anonymiser.adapters.db import runs
from casebook_platform.db import Database


async def record(session: AsyncSession, **values: Any) -> None:
    """Record an image's outcome in the delivery's transaction (a redelivery changes nothing)."""
    await session.execute(insert(runs).values(**values).on_conflict_do_nothing())


async def mark_raw_deleted(db: Database, image_id: str) -> None:
    async with db.transaction() as s:
        await s.execute(runs.update().where(runs.c.image_id == image_id).values(incoming_deleted=True))


async def raw_left(db: Database, limit: int = 500) -> list[tuple[str, str]]:
    """(image id, raw object key) of outcomes whose raw upload was not deleted yet."""
    async with db.sessions() as s:
        rows = (await s.execute(select(runs.c.image_id, runs.c.incoming_key)
                                .where(~runs.c.incoming_deleted).limit(limit))).all()
    return [(r.image_id, r.incoming_key) for r in rows]
