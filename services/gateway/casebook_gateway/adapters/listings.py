"""Database operations on playlists and export requests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_gateway.adapters.db import cases, exports, playlist_items, playlists


async def get_playlist(session: AsyncSession, playlist_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    q = select(playlists).where(playlists.c.id == playlist_id)
    row = (await session.execute(q.with_for_update() if lock else q)).mappings().first()
    return dict(row) if row else None


async def insert_playlist(session: AsyncSession, playlist_id: str, **values: Any) -> None:
    await session.execute(playlists.insert().values(id=playlist_id, **values))


async def playlist_rows(session: AsyncSession, playlist_id: str) -> list[Any]:
    """The playlist's approved public cases in order, each with its published title (never an edit awaiting
    approval)."""
    title = func.coalesce(cases.c.public_snapshot["title"].astext, cases.c.title).label("title")
    q = (select(cases.c.id, title, cases.c.owner_name, playlist_items.c.position)
         .join(cases, cases.c.id == playlist_items.c.case_id)
         .where(playlist_items.c.playlist_id == playlist_id, cases.c.listed_public)
         .order_by(playlist_items.c.position))
    return list((await session.execute(q)).all())


async def is_listed(session: AsyncSession, case_id: str) -> bool:
    row = (await session.execute(select(cases.c.listed_public).where(cases.c.id == case_id))).first()
    return bool(row and row.listed_public)


async def count_items(session: AsyncSession, playlist_id: str) -> int:
    q = select(func.count()).select_from(playlist_items).where(playlist_items.c.playlist_id == playlist_id)
    return int((await session.execute(q)).scalar_one())


async def append_item(session: AsyncSession, playlist_id: str, case_id: str, position: int) -> None:
    await session.execute(insert(playlist_items).values(playlist_id=playlist_id, case_id=case_id,
                                                        position=position).on_conflict_do_nothing())


async def cases_by_id(session: AsyncSession, case_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = (await session.execute(select(cases).where(cases.c.id.in_(case_ids)))).mappings()
    return {r["id"]: dict(r) for r in rows}


async def insert_export(session: AsyncSession, export_id: str, **values: Any) -> None:
    await session.execute(exports.insert().values(id=export_id, **values))


async def get_export(session: AsyncSession, export_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(exports).where(exports.c.id == export_id))).mappings().first()
    return dict(row) if row else None


async def update_export(session: AsyncSession, export_id: str, **values: Any) -> None:
    await session.execute(exports.update().where(exports.c.id == export_id).values(**values))
