"""HTTP API of the export service: a job's status and its download link (the requester only)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from casebook_export.adapters.db import jobs
from casebook_export.adapters.deletions import DELETED
from casebook_platform.auth import CurrentUser
from casebook_platform.errors import ApiError

router = APIRouter(prefix="/v1", tags=["exports"])


class ExportOut(BaseModel):
    id: str
    status: str
    progress: float
    download_url: str | None = None
    expires_at: str | None = None
    size: int | None = None


@router.get("/exports/{export_id}", response_model=ExportOut, summary="An export's status and download link")
async def get_export(export_id: str, request: Request, user: CurrentUser) -> ExportOut:
    rt = request.app.state.runtime
    async with rt.db.sessions() as s:
        row = (await s.execute(select(jobs).where(jobs.c.id == export_id))).mappings().first()
    if row is None or row["status"] == DELETED or (row["requested_by"] != user.id and not user.has("admin")):
        raise ApiError(404, "not_found", "no such export")
    url = None
    if row["status"] == "ready" and row["object_key"]:
        ttl = min(rt.settings.download_url_ttl_seconds, 7 * 24 * 3600)
        url = rt.storage.presigned_get(rt.storage.exports, row["object_key"], timedelta(seconds=ttl),
                                       filename=row["object_key"].rsplit("/", 1)[-1])
    return ExportOut(id=row["id"], status=row["status"], progress=round(float(row["progress"]), 3),
                     download_url=url, expires_at=row["expires_at"].isoformat() if row["expires_at"] else None,
                     size=row["size"])
