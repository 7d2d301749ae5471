"""Studies, uploads and images of a case."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from casebook_events import CaseUploaded
from casebook_gateway import core, ingest, intake, repo
from casebook_gateway.adapters import imagestore
from casebook_gateway.adapters.incoming import StreamedPut
from casebook_gateway.deps import DomainDep, RuntimeDep, SettingsDep
from casebook_gateway.schemas import ImageOut, StudyCreate, StudyOut, UploadAccepted
from casebook_gateway.settings import Settings
from casebook_platform.auth import CurrentUser, MaybeUser, Principal
from casebook_platform.db import Database
from casebook_platform.errors import ApiError
from casebook_platform.service import Runtime
from casebook_platform.storage import Storage

router = APIRouter(prefix="/v1", tags=["studies and images"])

_UPLOAD_DOC: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "One DICOM file, a zip of DICOM files, or a JPEG/PNG."}}}}}}}


@router.post("/cases/{case_id}/studies", status_code=201, response_model=StudyOut, summary="Add a study (owner)")
async def create_study(case_id: str, body: StudyCreate, rt: RuntimeDep, user: CurrentUser) -> StudyOut:
    async with rt.db.transaction() as session:
        case = await repo.load_case(session, case_id, user, lock=True)
        repo.require_owner(case, user)
        n = await imagestore.count_studies(session, case_id)
        if n >= 50:
            raise ApiError(409, "study_limit_reached", "a case holds at most 50 studies")
        study_id = repo.new_id("s")
        position = body.position or n + 1
        await imagestore.insert_study(session, study_id, case_id=case_id, position=position,
                                      modality=body.modality.upper(), findings=body.findings)
    return StudyOut(id=study_id, modality=body.modality.upper(), findings=body.findings, position=position,
                    images=0)


async def _require_owned_study(user: Principal, *, db: Database, case_id: str, study_id: str) -> None:
    """Raises ApiError 404 `not_found` (no such case or study for the caller) or 403 `not_owner`."""
    async with db.sessions() as session:
        case = await repo.load_case(session, case_id, user)
        repo.require_owner(case, user)
        if not await imagestore.study_exists(session, case_id, study_id):
            raise ApiError(404, "not_found", "no such study in this case")


async def _spool_upload(request: Request, settings: Settings, tee: ingest.Tee) -> ingest.Spooled:
    """The body's file part, streamed to a spool file (and to `tee`).

    Raises:
        ApiError: 413 `upload_too_large` at once when the declared length is over the limit (64 KiB is
            allowed for the multipart framing), or what `ingest.spool_multipart` refuses while it streams.
    """
    length = request.headers.get("content-length")
    declared = int(length) if length and length.isdigit() else None
    if declared is not None and declared > settings.max_upload_bytes + 64 * 1024:
        raise ApiError(413, "upload_too_large", f"uploads are limited to {settings.max_upload_bytes} bytes")
    return await ingest.spool_multipart(request.stream(), request.headers.get("content-type", ""),
                                        max_bytes=settings.max_upload_bytes, tmp_dir=settings.tmp_dir or None,
                                        tee=tee, body_length=declared)


def _incoming_key(case_id: str, image_id: str) -> str:
    return f"{case_id}/{image_id}"


STORE_TIMEOUT_S = 60.0  # each read or write of a put while the file arrives (not the pauses in between)


def _receiving(storage: Storage, settings: Settings, key: str) -> intake.Receiving:
    """The tee of an upload whose single file, if it is one, is stored at `key` while it arrives."""
    def start(size: int, content_type: str) -> intake.StreamingPut:
        return StreamedPut.start(storage, key, size=size, content_type=content_type, timeout_s=STORE_TIMEOUT_S)

    return intake.Receiving(start, min_bytes=settings.upload_stream_min_bytes)


Rows = Sequence[tuple[str, ingest.Accepted]]
"""The accepted files of one upload, each with the id of its image."""


async def _record_receiving(rows: Rows, *, db: Database, user: Principal, case_id: str, study_id: str,
                            limit: int) -> None:
    """Record the images as `receiving`.

    Raises:
        ApiError: 404 `not_found` when the case was deleted meanwhile; 409 `image_limit_reached`.
    """
    async with db.transaction() as session:
        await repo.load_case(session, case_id, user, lock=True)  # not deleted meanwhile
        held = await imagestore.count_images(session, case_id)
        if held + len(rows) > limit:  # a submission lists every image: it must fit an event (issue 15)
            raise ApiError(409, "image_limit_reached", f"a case holds at most {limit} images; it has {held} "
                           f"and this upload adds {len(rows)}")
        for image_id, a in rows:
            await imagestore.insert_receiving(session, image_id, case_id=case_id, study_id=study_id,
                                              incoming_key=_incoming_key(case_id, image_id), filename=a.filename,
                                              size=a.size)


async def _store_incoming(rows: Rows, *, storage: Storage, case_id: str, receiving: intake.Receiving) -> None:
    """Store each file's raw object in the incoming bucket, a few at a time (the members of a zip); a single
    file written while it arrived is only completed."""
    if len(rows) == 1 and await receiving.store(rows[0][1]):
        return
    gate = asyncio.Semaphore(4)

    async def store(image_id: str, a: ingest.Accepted) -> None:
        async with gate:
            with open(a.path, "rb") as f:
                await storage.put_stream(storage.incoming, _incoming_key(case_id, image_id), f, a.size,
                                         a.content_type)

    await asyncio.gather(*(store(i, a) for i, a in rows))


async def _hand_over(rows: Rows, *, rt: Runtime, user: Principal, case_id: str, study_id: str) -> None:
    """Move the images to `processing` and emit a `CaseUploaded` for each, in one transaction.

    Raises:
        ApiError: 503 `upload_interrupted` when a row is no longer `receiving` (the sweeper or a deletion
            took it).
    """
    async with rt.db.transaction() as session:
        if await imagestore.mark_processing(session, [i for i, _ in rows]) != len(rows):
            raise ApiError(503, "upload_interrupted", "the upload was interrupted; send it again")
        for image_id, a in rows:
            await rt.emit(session, CaseUploaded(
                case_id=case_id, image_id=image_id, study_id=study_id, owner_id=user.id,
                object_key=_incoming_key(case_id, image_id), content_type=a.content_type, size=a.size,
                sha256=a.sha256), key=case_id)


async def _record_upload(accepted: Sequence[ingest.Accepted], *, rt: Runtime, user: Principal, case_id: str,
                         study_id: str, limit: int, first_id: str, receiving: intake.Receiving) -> list[str]:
    """Make the accepted files images of the study, handed to the anonymiser; returns their ids (the first
    is `first_id`, the key a single file was written to while it arrived).

    Two steps, so that a crash never leaves a raw object nobody knows about: the rows are recorded as
    `receiving` before the objects are stored (a file written while it arrived is completed only then); a
    sweeper removes what a crash left half done.
    """
    rows = [(first_id if n == 0 else repo.new_id("i"), a) for n, a in enumerate(accepted)]
    await _record_receiving(rows, db=rt.db, user=user, case_id=case_id, study_id=study_id, limit=limit)
    await _store_incoming(rows, storage=rt.storage, case_id=case_id, receiving=receiving)
    await _hand_over(rows, rt=rt, user=user, case_id=case_id, study_id=study_id)
    rt.relay.nudge()
    return [image_id for image_id, _ in rows]


def _remove(spooled: ingest.Spooled, accepted: Sequence[ingest.Accepted]) -> None:
    """Remove the upload's files on disk (stored or not, they are not needed once the request ends)."""
    for a in accepted:
        a.path.unlink(missing_ok=True)
    spooled.path.unlink(missing_ok=True)


@router.post("/cases/{case_id}/studies/{study_id}/uploads", status_code=202, response_model=UploadAccepted,
             openapi_extra=_UPLOAD_DOC, responses={
                 409: {"description": "`image_limit_reached`"}, 413: {"description": "`upload_too_large`"},
                 415: {"description": "`unsupported_media`"},
                 422: {"description": "`invalid_dicom` / `invalid_image` (a single file), `unsafe_archive` (the "
                                      "zip itself; a refused member is named in `rejected` instead)"}},
             summary="Upload a DICOM file, a zip of DICOM files, or a JPEG/PNG")
async def upload(case_id: str, study_id: str, request: Request, rt: RuntimeDep, settings: SettingsDep,
                 domain: DomainDep, user: CurrentUser) -> UploadAccepted:
    await _require_owned_study(user, db=rt.db, case_id=case_id, study_id=study_id)
    first_id = repo.new_id("i")
    receiving = _receiving(rt.storage, settings, _incoming_key(case_id, first_id))
    try:  # whatever ends the request before the object is completed leaves nothing in the store
        spooled = await _spool_upload(request, settings, receiving)
        accepted, rejected = await intake.accept_within(spooled, settings, timeout=settings.dicom_parse_timeout_s * 6,
                                                        sha256=receiving.digest(spooled.size))
        try:
            image_ids = await _record_upload(accepted, rt=rt, user=user, case_id=case_id, study_id=study_id,
                                             limit=settings.max_images_per_case, first_id=first_id,
                                             receiving=receiving)
        finally:
            _remove(spooled, accepted)
    finally:
        await receiving.abort()
    domain.uploads.inc(len(image_ids))
    return UploadAccepted(images=[{"id": i, "status": "processing"} for i in image_ids], rejected=rejected)


def _image_out(im: Mapping[str, Any], series: dict[str, Any]) -> ImageOut:
    return ImageOut(id=im["id"], study_id=im["study_id"], series=series, status=im["status"],
                    reasons=list(im["reasons"]), url=f"/v1/images/{im['id']}" if im["status"] == "ready" else None)


@router.get("/cases/{case_id}/images", response_model=list[ImageOut], summary="The images of a case, in order")
async def list_images(case_id: str, rt: RuntimeDep, user: MaybeUser) -> list[ImageOut]:
    async with rt.db.sessions() as session:
        case = await repo.load_case(session, case_id, user)
        rows = await imagestore.images_of(session, case_id)
        study_pos = {s["id"]: s["position"] for s in await repo.study_rows(session, case_id)}
    owner_view = core.sees_current_version(case, repo.viewer(user))
    if not owner_view:
        allowed = repo.approved_images_only(case, user)
        rows = [r for r in rows if r["status"] == "ready" and (allowed is None or r["id"] in allowed)]
    out: list[ImageOut] = []
    for sid in sorted(study_pos, key=lambda s: study_pos[s]):
        for n, series in enumerate(core.order_series([r for r in rows if r["study_id"] == sid]), start=1):
            first = series[0]
            meta = {"position": n, "uid": first["series_uid"], "number": first["series_number"],
                    "description": first["series_description"], "modality": first["modality"]}
            out.extend(_image_out(im, meta) for im in series)
    return out


@router.get("/images/{image_id}", summary="The de-identified image (DICOM, PNG or JPEG)",
            responses={200: {"content": {"application/dicom": {}, "image/png": {}, "image/jpeg": {}}}})
async def get_image(image_id: str, rt: RuntimeDep, user: MaybeUser) -> StreamingResponse:
    async with rt.db.sessions() as session:
        im = await imagestore.get_image(session, image_id)
        if im is None:
            raise ApiError(404, "not_found", "no such image")
        case = await repo.load_case(session, im["case_id"], user)
    allowed = repo.approved_images_only(case, user)
    if im["status"] == "receiving" or (allowed is not None and image_id not in allowed):
        raise ApiError(404, "not_found", "no such image")
    if im["status"] != "ready":
        raise ApiError(409 if im["status"] == "processing" else 404,
                       "not_ready" if im["status"] == "processing" else "not_found",
                       "the image is still being de-identified" if im["status"] == "processing"
                       else "the image was quarantined")
    resp = await asyncio.to_thread(rt.storage.client.get_object, rt.storage.images, im["object_key"])

    def body() -> Iterator[bytes]:
        try:
            yield from resp.stream(256 * 1024)
        finally:
            resp.close()
            resp.release_conn()

    ext = {"application/dicom": "dcm", "image/png": "png", "image/jpeg": "jpg"}.get(im["media_type"], "bin")
    return StreamingResponse(body(), media_type=im["media_type"], headers={
        "Content-Disposition": f'inline; filename="{image_id}.{ext}"', "Content-Length": str(im["size"]),
        "Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"})
