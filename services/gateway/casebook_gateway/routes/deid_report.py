"""The owner's view of what de-identification did to an image."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_gateway import core, repo
from casebook_gateway.adapters import imagestore
from casebook_gateway.deps import DatabaseDep, ImageObjectsDep
from casebook_gateway.schemas import DeidReport
from casebook_platform.auth import MaybeUser, Principal
from casebook_platform.errors import ApiError

router = APIRouter(prefix="/v1", tags=["studies and images"])
REPORT_SUFFIX = ".deid-report.json"  # written by the anonymiser beside the image


@router.get("/images/{image_id}/deid-report", response_model=DeidReport,
            summary="What de-identification did to an image (owner, editors)")
async def deid_report(image_id: str, db: DatabaseDep, objects: ImageObjectsDep, user: MaybeUser) -> DeidReport:
    """Attributes kept, removed and rewritten (keywords only), text regions redacted, quarantine reasons.

    Raises: 404 `not_found` (no such image, or the caller may not see its case), 403 `not_owner`
    (a reader who is neither the owner nor an editor), 409 `not_ready` (still being de-identified).
    """
    async with db.sessions() as session:
        im = await _reported_image(session, image_id, user)
    stored = await objects.read(f"{im['case_id']}/{image_id}{REPORT_SUFFIX}")
    doc = core.deid_report_document(stored, status=im["status"], reasons=im["reasons"])
    return DeidReport(image_id=image_id, **{k: v for k, v in doc.items() if k in DeidReport.model_fields})


async def _reported_image(session: AsyncSession, image_id: str, user: Principal | None) -> dict[str, Any]:
    """The image whose report the caller may read.

    Raises:
        ApiError: 404 `not_found`, 403 `not_owner`, 409 `not_ready` (as the route says).
    """
    im = await imagestore.get_image(session, image_id)
    if im is None or im["status"] == "receiving":
        raise ApiError(404, "not_found", "no such image")
    case = await repo.load_case(session, im["case_id"], user)
    if user is None or (case["owner_id"] != user.id and not user.has("editor")):
        raise ApiError(403, "not_owner", "only the owner and editors see de-identification reports")
    if im["status"] == "processing":
        raise ApiError(409, "not_ready", "the image is still being de-identified")
    return im
