"""Playlists: ordered lists of approved public cases, public or private."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from casebook_events import credit
from casebook_gateway import repo
from casebook_gateway.adapters.db import cases, playlist_items, playlists
from casebook_gateway.schemas import PlaylistCreate, PlaylistItemAdd, PlaylistOut
from casebook_platform.auth import CurrentUser, MaybeUser, Principal
from casebook_platform.errors import ApiError

router = APIRouter(prefix="/v1", tags=["playlists"])


async def load_playlist(session: Any, playlist_id: str, user: Principal | None) -> dict[str, Any]:
    """A playlist the caller may see. Raises ApiError 404 `not_found` otherwise."""
    row = (await session.execute(select(playlists).where(playlists.c.id == playlist_id))).mappings().first()
    if row is None or (row["visibility"] != "public" and (user is None or user.id != row["owner_id"])):
        raise ApiError(404, "not_found", "no such playlist")
    return dict(row)


async def playlist_cases(session: Any, playlist_id: str) -> list[dict[str, Any]]:
    """The playlist's cases in order; only those still approved and public."""
    # Readers see the published revision's title, never an edit awaiting approval.
    title = func.coalesce(cases.c.public_snapshot["title"].astext, cases.c.title).label("title")
    q = (select(cases.c.id, title, cases.c.owner_name, playlist_items.c.position)
         .join(cases, cases.c.id == playlist_items.c.case_id)
         .where(playlist_items.c.playlist_id == playlist_id, cases.c.listed_public)
         .order_by(playlist_items.c.position))
    return [{"id": r.id, "title": r.title, "position": r.position,
             "attribution": credit.attribution(r.owner_name, r.id)} for r in (await session.execute(q)).all()]


async def _out(session: Any, pl: dict[str, Any]) -> PlaylistOut:
    return PlaylistOut(id=pl["id"], title=pl["title"], description=pl["description"], visibility=pl["visibility"],
                       owner=pl["owner_id"], cases=await playlist_cases(session, pl["id"]))


@router.post("/playlists", status_code=201, response_model=PlaylistOut, summary="Create a playlist")
async def create_playlist(body: PlaylistCreate, request: Request, user: CurrentUser) -> PlaylistOut:
    rt = request.app.state.runtime
    pid = repo.new_id("p")
    async with rt.db.transaction() as session:
        await session.execute(playlists.insert().values(id=pid, owner_id=user.id, **body.model_dump()))
        return await _out(session, await load_playlist(session, pid, user))


@router.post("/playlists/{playlist_id}/items", response_model=PlaylistOut,
             summary="Append an approved public case to your playlist")
async def add_item(playlist_id: str, body: PlaylistItemAdd, request: Request, user: CurrentUser) -> PlaylistOut:
    rt = request.app.state.runtime
    async with rt.db.transaction() as session:
        pl = await load_playlist(session, playlist_id, user)
        if pl["owner_id"] != user.id:
            raise ApiError(403, "not_owner", "only the playlist's owner may change it")
        await session.execute(select(playlists.c.id).where(playlists.c.id == playlist_id).with_for_update())
        case = (await session.execute(select(cases.c.listed_public).where(cases.c.id == body.case_id))).first()
        if case is None or not case.listed_public:
            raise ApiError(422, "not_public", "only approved public cases can be added to a playlist")
        n = (await session.execute(select(func.count()).select_from(playlist_items)
                                   .where(playlist_items.c.playlist_id == playlist_id))).scalar_one()
        if n >= 500:
            raise ApiError(409, "playlist_full", "a playlist holds at most 500 cases")
        await session.execute(insert(playlist_items).values(playlist_id=playlist_id, case_id=body.case_id,
                                                            position=n + 1).on_conflict_do_nothing())
        return await _out(session, pl)


@router.get("/playlists/{playlist_id}", response_model=PlaylistOut, summary="A playlist with its cases in order")
async def get_playlist(playlist_id: str, request: Request, user: MaybeUser) -> PlaylistOut:
    rt = request.app.state.runtime
    async with rt.db.sessions() as session:
        return await _out(session, await load_playlist(session, playlist_id, user))
