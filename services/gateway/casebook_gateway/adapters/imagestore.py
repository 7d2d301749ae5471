"""Database operations on studies and image records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_gateway.adapters.db import images, studies


async def count_studies(session: AsyncSession, case_id: str) -> int:
    q = select(func.count()).select_from(studies).where(studies.c.case_id == case_id)
    return int((await session.execute(q)).scalar_one())


async def count_images(session: AsyncSession, case_id: str) -> int:
    """Every image row of the case, whatever its status (a submission lists them all)."""
    q = select(func.count()).select_from(images).where(images.c.case_id == case_id)
    return int((await session.execute(q)).scalar_one())


async def insert_study(session: AsyncSession, study_id: str, **values: Any) -> None:
    await session.execute(studies.insert().values(id=study_id, **values))


async def study_exists(session: AsyncSession, case_id: str, study_id: str) -> bool:
    q = select(studies.c.id).where(studies.c.id == study_id, studies.c.case_id == case_id)
    return (await session.execute(q)).first() is not None


async def insert_receiving(session: AsyncSession, image_id: str, **values: Any) -> None:
    """An image row recorded before its raw object is stored (a crash leaves it for the sweeper)."""
    await session.execute(images.insert().values(id=image_id, status="receiving", **values))


async def mark_processing(session: AsyncSession, image_ids: list[str]) -> int:
    """`receiving` → `processing` once every raw object is stored; returns how many rows moved."""
    done = await session.execute(images.update().where(images.c.id.in_(image_ids), images.c.status == "receiving")
                                 .values(status="processing"))
    return int(done.rowcount)  # type: ignore[attr-defined]


async def update_image(session: AsyncSession, image_id: str, **values: Any) -> bool:
    """Record what the anonymiser reported; False when the image is gone (its case was deleted)."""
    done = await session.execute(images.update().where(images.c.id == image_id).values(**values))
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def images_of(session: AsyncSession, case_id: str) -> list[dict[str, Any]]:
    """Every received image of the case, in arrival order."""
    q = select(images).where(images.c.case_id == case_id, images.c.status != "receiving").order_by(images.c.seq)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def ready_images_of(session: AsyncSession, case_id: str) -> list[dict[str, Any]]:
    q = select(images).where(images.c.case_id == case_id, images.c.status == "ready").order_by(images.c.seq)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def get_image(session: AsyncSession, image_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(images).where(images.c.id == image_id))).mappings().first()
    return dict(row) if row else None


async def stale_receiving(session: AsyncSession, before: datetime, limit: int = 500) -> list[Any]:
    q = select(images.c.id, images.c.incoming_key).where(images.c.status == "receiving",
                                                         images.c.created_at < before).limit(limit)
    return list((await session.execute(q)).all())


async def delete_receiving(session: AsyncSession, image_id: str) -> None:
    await session.execute(images.delete().where(images.c.id == image_id, images.c.status == "receiving"))
