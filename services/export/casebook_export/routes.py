"""HTTP API of the export service: a job's status and its download link (the requester only)."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from fastapi import APIRouter
from pydantic import BaseModel

from casebook_export import core
from casebook_export.adapters import jobs
from casebook_export.settings import Settings
from casebook_platform.auth import CurrentUser
from casebook_platform.deps import RuntimeDep, SessionDep
from casebook_platform.errors import ApiError

router = APIRouter(prefix="/v1", tags=["exports"])

MAX_URL_TTL_S = 7 * 24 * 3600  # the longest a presigned S3 URL may live


class ExportOut(BaseModel):
    id: str
    status: str
    progress: float
    download_url: str | None = None
    expires_at: str | None = None
    size: int | None = None


@router.get("/exports/{export_id}", response_model=ExportOut, summary="An export's status and download link")
async def get_export(export_id: str, rt: RuntimeDep, session: SessionDep, user: CurrentUser) -> ExportOut:
    row = await jobs.get_job(session, export_id)
    if row is None or not core.visible(row, user.id, admin=user.has("admin")):
        raise ApiError(404, "not_found", "no such export")
    url = None
    if row["status"] == core.READY and row["object_key"]:
        ttl = min(cast(Settings, rt.settings).download_url_ttl_seconds, MAX_URL_TTL_S)
        url = rt.storage.presigned_get(rt.storage.exports, row["object_key"], timedelta(seconds=ttl),
                                       filename=row["object_key"].rsplit("/", 1)[-1])
    return ExportOut(id=row["id"], status=row["status"], progress=round(float(row["progress"]), 3),
                     download_url=url, expires_at=row["expires_at"].isoformat() if row["expires_at"] else None,
                     size=row["size"])
