"""Playlists: ordered lists of approved public cases, public or private."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from casebook_events import credit
from casebook_gateway import repo
from casebook_gateway.adapters import listings
from casebook_gateway.deps import DatabaseDep
from casebook_gateway.schemas import PlaylistCreate, PlaylistItemAdd, PlaylistOut
from casebook_platform.auth import CurrentUser, MaybeUser, Principal
from casebook_platform.errors import ApiError

router = APIRouter(prefix="/v1", tags=["playlists"])


async def load_playlist(session: Any, playlist_id: str, user: Principal | None) -> dict[str, Any]:
    """A playlist the caller may see. Raises ApiError 404 `not_found` otherwise."""
    row = await listings.get_playlist(session, playlist_id)
    if row is None or (row["visibility"] != "public" and (user is None or user.id != row["owner_id"])):
        raise ApiError(404, "not_found", "no such playlist")
    return row


async def playlist_cases(session: Any, playlist_id: str) -> list[dict[str, Any]]:
    """The playlist's cases in order; only those still approved and public."""
    return [{"id": r.id, "title": r.title, "position": r.position,
             "attribution": credit.attribution(r.owner_name, r.id)}
            for r in await listings.playlist_rows(session, playlist_id)]


async def _out(session: Any, pl: dict[str, Any]) -> PlaylistOut:
    return PlaylistOut(id=pl["id"], title=pl["title"], description=pl["description"], visibility=pl["visibility"],
                       owner=pl["owner_id"], cases=await playlist_cases(session, pl["id"]))


@router.post("/playlists", status_code=201, response_model=PlaylistOut, summary="Create a playlist")
async def create_playlist(body: PlaylistCreate, db: DatabaseDep, user: CurrentUser) -> PlaylistOut:
    pid = repo.new_id("p")
    async with db.transaction() as session:
        await listings.insert_playlist(session, pid, owner_id=user.id, **body.model_dump())
        return await _out(session, await load_playlist(session, pid, user))


@router.post("/playlists/{playlist_id}/items", response_model=PlaylistOut,
             summary="Append an approved public case to your playlist")
async def add_item(playlist_id: str, body: PlaylistItemAdd, db: DatabaseDep, user: CurrentUser) -> PlaylistOut:
    async with db.transaction() as session:
        pl = await load_playlist(session, playlist_id, user)
        if pl["owner_id"] != user.id:
            raise ApiError(403, "not_owner", "only the playlist's owner may change it")
        await listings.get_playlist(session, playlist_id, lock=True)  # appends queue one after the other
        if not await listings.is_listed(session, body.case_id):
            raise ApiError(422, "not_public", "only approved public cases can be added to a playlist")
        n = await listings.count_items(session, playlist_id)
        if n >= 500:
            raise ApiError(409, "playlist_full", "a playlist holds at most 500 cases")
        await listings.append_item(session, playlist_id, body.case_id, n + 1)
        return await _out(session, pl)


@router.get("/playlists/{playlist_id}", response_model=PlaylistOut, summary="A playlist with its cases in order")
async def get_playlist(playlist_id: str, db: DatabaseDep, user: MaybeUser) -> PlaylistOut:
    async with db.sessions() as session:
        return await _out(session, await load_playlist(session, playlist_id, user))
