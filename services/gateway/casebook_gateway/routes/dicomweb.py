"""DICOMweb (PS3.18) under `/dicomweb`: QIDO-RS searches and WADO-RS retrieval of the cases a caller may see.

Visibility is the v1 rule (`core.can_view`, `repo.approved_images_only`): readers see the images of the
published revision of approved public cases; with a token, owners also their own cases and editors the
submitted ones, as they are now. What a caller may not see answers 404 (an empty list for a search).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import IO, Annotated, Any, BinaryIO, Literal, cast

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydicom.pixels.utils import pixel_array

from casebook_gateway import core, dicomweb, repo
from casebook_gateway.adapters import dicomweb as store
from casebook_gateway.deps import DatabaseDep, ImageObjectsDep, SettingsDep
from casebook_gateway.ports import ImageObjects, ObjectBody
from casebook_platform.auth import MaybeUser, Principal
from casebook_platform.db import Database
from casebook_platform.errors import ApiError
from casebook_platform.rendering import RenderError, render_dicom_frame

router = APIRouter(prefix="/dicomweb", tags=["DICOMweb"])


class DicomJSONResponse(JSONResponse):
    media_type = dicomweb.DICOM_JSON

_CHUNK = 256 * 1024
_AHEAD = 4  # objects opened ahead of the one being sent
_SEND_CHUNK = 1024 * 1024  # fewer, larger writes: each read of the store is a hop to a worker thread
_JSON_LIST = {"application/dicom+json": {"schema": {"type": "array", "items": {"type": "object"}}}}
_QIDO_DOC: dict[int | str, dict[str, Any]] = {200: {"description": "Matching results as DICOM JSON (PS3.18 F.2); "
                                                   "an empty array when nothing matches", "content": _JSON_LIST}}
_WADO_DOC: dict[int | str, dict[str, Any]] = {200: {
    "description": 'The instances, one part each (`Content-Type: application/dicom; transfer-syntax=<UID>`, '
                   "as stored: de-identified, never transcoded), streamed",
    "content": {'multipart/related; type="application/dicom"': {"schema": {"type": "string", "format": "binary"}}}}}
_META_DOC: dict[int | str, dict[str, Any]] = {200: {
    "description": "Each instance's header as DICOM JSON, bulk data (pixel data, binary values over 1 KiB) "
                   "left out; `00083002` AvailableTransferSyntaxUID names the stored syntax", "content": _JSON_LIST}}
_FRAMES_DOC: dict[int | str, dict[str, Any]] = {200: {
    "description": "The frames asked for, in order, uncompressed (one part each, `application/octet-stream; "
                   "transfer-syntax=1.2.840.10008.1.2.1`: little endian, samples interleaved)",
    "content": {'multipart/related; type="application/octet-stream"': {
        "schema": {"type": "string", "format": "binary"}}}}}
_RENDERED_DOC: dict[int | str, dict[str, Any]] = {200: {
    "description": "The frame as an 8-bit image: JPEG unless PNG is preferred (Accept or `accept=`)",
    "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}}}}}

CaseFilter = Annotated[str | None, Query(max_length=40, description="Only this case's images.")]
Limit = Annotated[int | None, Query(ge=1, le=dicomweb.MAX_LIMIT, description="At most this many results.")]
Offset = Annotated[int | None, Query(ge=0, le=10**9, description="Skip this many results.")]
Include = Annotated[str | None, Query(
    max_length=2000, description="Attributes to add to each result (keywords or tags, comma-separated; the "
                                 "parameter may also be repeated), or `all`.")]
Fuzzy = Annotated[Literal["true", "false"] | None, Query(description="Accepted; matching is never fuzzy.")]
Uid = Annotated[str | None, Query(max_length=6500, description="UID list matching (comma-separated).")]
Text = Annotated[str | None, Query(max_length=200, description="Single value or wildcard (`*`, `?`) matching.")]
Range = Annotated[str | None, Query(max_length=40, description="A date, or a range `from-to`.")]
StudyUid = Annotated[str, Path(max_length=200, description="Study Instance UID (de-identified).")]
SeriesUid = Annotated[str, Path(max_length=200, description="Series Instance UID (de-identified).")]
SopUid = Annotated[str, Path(max_length=200, description="SOP Instance UID (de-identified).")]
Frames = Annotated[str, Path(description="Frame numbers from 1, comma-separated.", json_schema_extra={
    "pattern": dicomweb.FRAMES_PATTERN, "maxLength": dicomweb.FRAMES_MAX_LENGTH})]
OneFrame = Annotated[str, Path(description="One frame number, from 1.", json_schema_extra={
    "pattern": dicomweb.ONE_FRAME_PATTERN})]
Window = Annotated[str | None, Query(description="`center,width,function` (function `linear`, `linear-exact` "
                                                 "or `sigmoid`; width from 1), replacing the stored window",
                                     pattern=dicomweb.WINDOW_PATTERN)]
ViewportQ = Annotated[str | None, Query(description="`vw,vh` or `vw,vh,sx,sy,sw,sh`: fit into vw x vh (at most "
                                                    "4096), after cropping the source rectangle when given",
                                        pattern=dicomweb.VIEWPORT_PATTERN)]
Quality = Annotated[int | None, Query(ge=1, le=100, description="JPEG quality (default 90).")]
AcceptQ = Annotated[Literal["image/jpeg", "image/png"] | None, Query(
    alias="accept", description="The media type, instead of the Accept header.")]


# ---- what the caller may see ------------------------------------------------------------------------------

async def _visible(user: Principal | None, *, db: Database, case_id: str | None = None,
                   study: str | None = None, series: str | None = None, sop: str | None = None
                   ) -> list[dicomweb.Instance]:
    """The indexed instances the caller may see (one per SOP Instance UID), in study/series/instance order."""
    for uid in (study, series, sop):
        if uid is not None and not dicomweb.is_uid(uid):
            return []
    viewer = repo.viewer(user)
    async with db.sessions() as session:
        if study is None and series is None and sop is None:  # a search over the library (or one case)
            cases = [c for c in await store.candidate_cases(session, viewer, case_id) if core.can_view(c, viewer)]
            rows = await store.instances(session, [c["id"] for c in cases])
        else:  # the UIDs find the instances first; only their cases are then checked
            rows = await store.instances(session, [case_id] if case_id else None, study_uid=study,
                                         series_uid=series, sop_uid=sop)
            cases = [c for c in await store.cases_by_id(session, sorted({r["case_id"] for r in rows}))
                     if core.can_view(c, viewer)]
    allowed = {c["id"]: repo.approved_images_only(c, user) for c in cases}
    rows = [r for r in rows if r["case_id"] in allowed]
    return dicomweb.unique(
        dicomweb.Instance(image_id=r["id"], case_id=r["case_id"], study_uid=r["study_uid"], series_uid=r["series_uid"],
                          sop_uid=r["sop_uid"], sop_class_uid=r["sop_class_uid"],
                          transfer_syntax_uid=r["transfer_syntax_uid"], attrs=r["dicom_attrs"] or {}, seq=r["seq"],
                          size=r["size"] or 0, object_key=r["object_key"] or "", frames=r["frames"] or 1)
        for r in rows if allowed[r["case_id"]] is None or r["id"] in cast(set[str], allowed[r["case_id"]]))


async def _found(user: Principal | None, *, db: Database, **where: str) -> list[dicomweb.Instance]:
    found = await _visible(user, db=db, **where)
    if not found:
        raise ApiError(404, "not_found", "no such " + ("instance" if "sop" in where else
                                                        "series" if "series" in where else "study"))
    return found


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/dicomweb"


# ---- QIDO-RS ----------------------------------------------------------------------------------------------

async def _search(request: Request, user: Principal | None, level: str, *, db: Database, **where: str | None
                  ) -> DicomJSONResponse:
    params = [(k, v) for k, v in request.query_params.multi_items()]
    query = dicomweb.parse_query(params, level)
    found = await _visible(user, db=db, case_id=request.query_params.get("case_id"),
                           **{k: v for k, v in where.items() if v is not None})
    meta = None
    if dicomweb.needs_meta(query, level):
        async with db.sessions() as session:
            meta = await store.metadata_of(session, [i.image_id for i in found])
    headers = {"Warning": dicomweb.warning(query.ignored)} if query.ignored else {}
    results = dicomweb.search(found, level, query, _base(request), meta, path_uids=sum(v is not None
                                                                                     for v in where.values()))
    return DicomJSONResponse(results, headers=headers)


_QIDO_KEYS = "Query keys: DICOM keywords or tags of the level's attributes; `case_id=` limits to one case."


@router.get("/studies", response_class=DicomJSONResponse, responses=_QIDO_DOC, summary="QIDO-RS: search studies",
            description=_QIDO_KEYS)
async def search_studies(request: Request, user: MaybeUser, db: DatabaseDep, case_id: CaseFilter = None,
                         StudyInstanceUID: Uid = None, ModalitiesInStudy: Text = None, PatientID: Text = None,
                         StudyDate: Range = None, AccessionNumber: Text = None, StudyDescription: Text = None,
                         limit: Limit = None, offset: Offset = None, includefield: Include = None,
                         fuzzymatching: Fuzzy = None) -> DicomJSONResponse:
    return await _search(request, user, "study", db=db)


@router.get("/series", response_class=DicomJSONResponse, responses=_QIDO_DOC, summary="QIDO-RS: search all series",
            description=_QIDO_KEYS)
async def search_all_series(request: Request, user: MaybeUser, db: DatabaseDep, case_id: CaseFilter = None,
                            StudyInstanceUID: Uid = None, SeriesInstanceUID: Uid = None, Modality: Text = None,
                            limit: Limit = None, offset: Offset = None, includefield: Include = None,
                            fuzzymatching: Fuzzy = None) -> DicomJSONResponse:
    return await _search(request, user, "series", db=db)


@router.get("/instances", response_class=DicomJSONResponse, responses=_QIDO_DOC,
            summary="QIDO-RS: search all instances", description=_QIDO_KEYS)
async def search_all_instances(request: Request, user: MaybeUser, db: DatabaseDep, case_id: CaseFilter = None,
                               StudyInstanceUID: Uid = None, SeriesInstanceUID: Uid = None,
                               SOPInstanceUID: Uid = None, SOPClassUID: Uid = None, Modality: Text = None,
                               limit: Limit = None, offset: Offset = None, includefield: Include = None,
                               fuzzymatching: Fuzzy = None) -> DicomJSONResponse:
    return await _search(request, user, "instance", db=db)


@router.get("/studies/{study}/series", response_class=DicomJSONResponse, responses=_QIDO_DOC,
            summary="QIDO-RS: search the series of a study", description=_QIDO_KEYS)
async def search_series(study: StudyUid, request: Request, user: MaybeUser, db: DatabaseDep,
                        case_id: CaseFilter = None, SeriesInstanceUID: Uid = None, Modality: Text = None,
                        limit: Limit = None, offset: Offset = None, includefield: Include = None,
                        fuzzymatching: Fuzzy = None) -> DicomJSONResponse:
    return await _search(request, user, "series", db=db, study=study)


@router.get("/studies/{study}/instances", response_class=DicomJSONResponse, responses=_QIDO_DOC,
            summary="QIDO-RS: search the instances of a study", description=_QIDO_KEYS)
async def search_study_instances(study: StudyUid, request: Request, user: MaybeUser, db: DatabaseDep,
                                 case_id: CaseFilter = None, SeriesInstanceUID: Uid = None,
                                 SOPInstanceUID: Uid = None, Modality: Text = None, limit: Limit = None,
                                 offset: Offset = None, includefield: Include = None, fuzzymatching: Fuzzy = None
                                 ) -> DicomJSONResponse:
    return await _search(request, user, "instance", db=db, study=study)


@router.get("/studies/{study}/series/{series}/instances", response_class=DicomJSONResponse, responses=_QIDO_DOC,
            summary="QIDO-RS: search the instances of a series", description=_QIDO_KEYS)
async def search_instances(study: StudyUid, series: SeriesUid, request: Request, user: MaybeUser, db: DatabaseDep,
                           case_id: CaseFilter = None, SOPInstanceUID: Uid = None, limit: Limit = None,
                           offset: Offset = None, includefield: Include = None, fuzzymatching: Fuzzy = None
                           ) -> DicomJSONResponse:
    return await _search(request, user, "instance", db=db, study=study, series=series)


# ---- WADO-RS: instances, metadata ---------------------------------------------------------------------------

async def _stream_instances(objects: ImageObjects, instances: Sequence[dicomweb.Instance], boundary: str
                            ) -> AsyncIterator[bytes]:
    """The instances as multipart/related parts, each object streamed from the store a chunk at a time.

    The next few objects are opened while one is sent (their bodies wait unread in their connections), so
    each object's round trip to the store overlaps the transfer of the one before; memory stays one chunk.
    """
    def open_object(inst: dicomweb.Instance) -> ObjectBody:
        return objects.open(inst.object_key)

    todo = iter(instances)
    ahead: deque[tuple[dicomweb.Instance, asyncio.Future[ObjectBody]]] = deque()

    def fill() -> None:
        while len(ahead) < _AHEAD and (inst := next(todo, None)) is not None:
            ahead.append((inst, asyncio.ensure_future(asyncio.to_thread(open_object, inst))))

    try:
        fill()
        while ahead:
            inst, opening = ahead.popleft()
            resp = await opening
            fill()
            try:
                yield dicomweb.part_head(boundary, f"application/dicom; transfer-syntax={inst.transfer_syntax_uid}",
                                         inst.size or None)
                while chunk := await asyncio.to_thread(resp.read, _SEND_CHUNK):
                    yield chunk
                yield dicomweb.part_tail()
            finally:
                resp.close()
        yield dicomweb.closing(boundary)
    finally:  # the client went away (or the store failed): close what was opened ahead
        for _, opening in ahead:
            with contextlib.suppress(Exception):  # an object that failed to open has nothing to close
                r = await opening
                r.close()


def _retrieve(instances: Sequence[dicomweb.Instance], *, objects: ImageObjects) -> StreamingResponse:
    boundary = dicomweb.boundary()
    return StreamingResponse(_stream_instances(objects, instances, boundary),
                             media_type=dicomweb.multipart_type("application/dicom", boundary),
                             headers={"Cache-Control": "private, max-age=300"})


async def _metadata(instances: Sequence[dicomweb.Instance], *, db: Database) -> DicomJSONResponse:
    async with db.sessions() as session:
        meta = await store.metadata_of(session, [i.image_id for i in instances])
    return DicomJSONResponse([meta[i.image_id] for i in instances if i.image_id in meta])


@router.get("/studies/{study}", responses=_WADO_DOC, response_class=StreamingResponse,
            summary="WADO-RS: retrieve a study")
async def retrieve_study(study: StudyUid, user: MaybeUser, db: DatabaseDep, objects: ImageObjectsDep
                         ) -> StreamingResponse:
    return _retrieve(await _found(user, db=db, study=study), objects=objects)


@router.get("/studies/{study}/series/{series}", responses=_WADO_DOC, response_class=StreamingResponse,
            summary="WADO-RS: retrieve a series")
async def retrieve_series(study: StudyUid, series: SeriesUid, user: MaybeUser, db: DatabaseDep, objects: ImageObjectsDep
                          ) -> StreamingResponse:
    return _retrieve(await _found(user, db=db, study=study, series=series), objects=objects)


@router.get("/studies/{study}/series/{series}/instances/{sop}", responses=_WADO_DOC,
            response_class=StreamingResponse, summary="WADO-RS: retrieve an instance")
async def retrieve_instance(study: StudyUid, series: SeriesUid, sop: SopUid, user: MaybeUser, db: DatabaseDep,
                            objects: ImageObjectsDep) -> StreamingResponse:
    return _retrieve(await _found(user, db=db, study=study, series=series, sop=sop), objects=objects)


@router.get("/studies/{study}/metadata", responses=_META_DOC, response_class=DicomJSONResponse,
            summary="WADO-RS: the metadata of a study's instances")
async def study_metadata(study: StudyUid, user: MaybeUser, db: DatabaseDep) -> DicomJSONResponse:
    return await _metadata(await _found(user, db=db, study=study), db=db)


@router.get("/studies/{study}/series/{series}/metadata", responses=_META_DOC, response_class=DicomJSONResponse,
            summary="WADO-RS: the metadata of a series' instances")
async def series_metadata(study: StudyUid, series: SeriesUid, user: MaybeUser, db: DatabaseDep) -> DicomJSONResponse:
    return await _metadata(await _found(user, db=db, study=study, series=series), db=db)


@router.get("/studies/{study}/series/{series}/instances/{sop}/metadata", responses=_META_DOC,
            response_class=DicomJSONResponse, summary="WADO-RS: the metadata of an instance")
async def instance_metadata(study: StudyUid, series: SeriesUid, sop: SopUid, user: MaybeUser, db: DatabaseDep
                            ) -> DicomJSONResponse:
    return await _metadata(await _found(user, db=db, study=study, series=series, sop=sop), db=db)


# ---- WADO-RS: frames, rendered --------------------------------------------------------------------------------

def _spool(objects: ImageObjects, key: str, memory: int) -> IO[bytes]:
    """The object in a spooled temporary file (in memory up to `memory` bytes), rewound (blocking)."""
    spool = tempfile.SpooledTemporaryFile(max_size=memory)  # noqa: SIM115 - closed by the caller
    body = objects.open(key)
    try:
        while chunk := body.read(_CHUNK):
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    finally:
        body.close()
    spool.seek(0)
    return cast(IO[bytes], spool)


_DECODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, NotImplementedError, RuntimeError)


class _Frames:
    """The asked frames of one object, decoded one at a time as the response is sent (a thousand frames of a
    large multi-frame object never sit in memory together). The first frame is decoded before the answer
    starts, so that an object that cannot be decoded answers 422 rather than a cut-off body."""

    def __init__(self, objects: ImageObjects, key: str, indexes: Sequence[int], memory: int) -> None:
        self.file = _spool(objects, key, memory)
        self.indexes = list(indexes)
        try:
            self.first = self._decode(self.indexes[0])
        except BaseException:
            self.file.close()
            raise

    def _decode(self, index: int) -> bytes:
        self.file.seek(0)
        return bytes(pixel_array(cast(BinaryIO, self.file), index=index, raw=True).tobytes())

    def parts(self) -> Iterator[bytes]:
        try:
            yield self.first
            for index in self.indexes[1:]:
                yield self._decode(index)
        finally:
            self.file.close()


def _render(objects: ImageObjects, key: str, index: int, memory: int, ask: dicomweb.RenderRequest) -> Any:
    with _spool(objects, key, memory) as f:
        return render_dicom_frame(cast(BinaryIO, f), index, fmt=ask.fmt, voi=ask.window, viewport=ask.viewport,
                                  **({"quality": ask.quality} if ask.quality else {}))


async def _decoded(inst: dicomweb.Instance, indexes: Sequence[int], *, objects: ImageObjects, memory: int
                   ) -> _Frames:
    """The frames of the instance, the first one decoded (in a thread).

    Raises:
        ApiError: 422 `not_renderable` when the object cannot be decoded.
    """
    try:
        return await asyncio.to_thread(_Frames, objects, inst.object_key, indexes, memory)
    except _DECODE_ERRORS as exc:
        raise ApiError(422, "not_renderable", f"the frames could not be decoded: {exc}") from exc


def _frames_response(frames_of: _Frames) -> StreamingResponse:
    boundary = dicomweb.boundary()
    part = f"application/octet-stream; transfer-syntax={dicomweb.EXPLICIT_LITTLE}"
    return StreamingResponse(dicomweb.multipart(boundary, ((part, d) for d in frames_of.parts())),
                             media_type=dicomweb.multipart_type("application/octet-stream", boundary))


@router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{frames}", responses=_FRAMES_DOC,
            response_class=StreamingResponse, summary="WADO-RS: frames of an instance, uncompressed")
async def retrieve_frames(study: StudyUid, series: SeriesUid, sop: SopUid, frames: Frames, user: MaybeUser,
                          db: DatabaseDep, objects: ImageObjectsDep, settings: SettingsDep) -> StreamingResponse:
    indexes = dicomweb.parse_frames(frames)
    inst = (await _found(user, db=db, study=study, series=series, sop=sop))[0]
    dicomweb.check_frames(indexes, inst.frames)
    return _frames_response(await _decoded(inst, indexes, objects=objects, memory=settings.dicomweb_spool_bytes))


async def _rendered(user: Principal | None, where: dict[str, str], index: int, ask: dicomweb.RenderRequest, *,
                    db: Database, objects: ImageObjects, memory: int) -> Response:
    inst = (await _found(user, db=db, **where))[0]
    dicomweb.check_frames([index], inst.frames)
    try:
        frame = await asyncio.to_thread(_render, objects, inst.object_key, index, memory, ask)
    except IndexError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except RenderError as exc:
        raise ApiError(422, "not_renderable", str(exc)) from exc
    return Response(frame.data, media_type=frame.media_type,
                    headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"})


@router.get("/studies/{study}/series/{series}/instances/{sop}/rendered", responses=_RENDERED_DOC,
            response_class=Response, summary="WADO-RS: an instance rendered (its first frame)")
async def rendered_instance(study: StudyUid, series: SeriesUid, sop: SopUid, request: Request, user: MaybeUser,
                            db: DatabaseDep, objects: ImageObjectsDep, settings: SettingsDep, window: Window = None,
                            viewport: ViewportQ = None, quality: Quality = None, accept: AcceptQ = None) -> Response:
    ask = dicomweb.render_request(accept=request.headers.get("accept"), accept_param=accept, quality=quality,
                                  window=window, viewport=viewport)
    return await _rendered(user, {"study": study, "series": series, "sop": sop}, 0, ask, db=db, objects=objects,
                           memory=settings.dicomweb_spool_bytes)


@router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/rendered", responses=_RENDERED_DOC,
            response_class=Response, summary="WADO-RS: one frame rendered")
async def rendered_frame(study: StudyUid, series: SeriesUid, sop: SopUid, frames: OneFrame, request: Request,
                         user: MaybeUser, db: DatabaseDep, objects: ImageObjectsDep, settings: SettingsDep,
                         window: Window = None, viewport: ViewportQ = None, quality: Quality = None,
                         accept: AcceptQ = None) -> Response:
    indexes = dicomweb.parse_frames(frames)
    if len(indexes) != 1:
        raise ApiError(400, "invalid_request", "a rendered frame is one frame number")
    ask = dicomweb.render_request(accept=request.headers.get("accept"), accept_param=accept, quality=quality,
                                  window=window, viewport=viewport)
    return await _rendered(user, {"study": study, "series": series, "sop": sop}, indexes[0], ask, db=db,
                           objects=objects, memory=settings.dicomweb_spool_bytes)
