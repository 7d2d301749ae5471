"""Export requests: the owner's originals, supporters' offline presentations of cases and playlists."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request

from casebook_events import (
    ExportCase,
    ExportCaseRef,
    ExportImage,
    ExportManifest,
    ExportRequestedV2,
    ExportSeries,
    ExportStudy,
    credit,
)
from casebook_gateway import core, repo
from casebook_gateway.adapters import imagestore, listings, manifests
from casebook_gateway.deps import DatabaseDep, DomainDep, HttpDep, OutboxDep, SettingsDep, StorageDep
from casebook_gateway.metrics import DomainMetrics
from casebook_gateway.ports import Outbox
from casebook_gateway.routes.playlists import load_playlist, playlist_cases
from casebook_gateway.schemas import ExportCreate, ExportOut, PlaylistExportCreate
from casebook_platform.auth import CurrentUser, Principal, require_role
from casebook_platform.errors import ApiError
from casebook_platform.storage import Storage

router = APIRouter(prefix="/v1", tags=["exports"])


async def export_case(session: Any, case: dict[str, Any], *, public_version: bool) -> ExportCase:
    """What the export service needs of one case: its text and its ready images in stack order.

    `public_version`: the published revision (its text, studies and images) as readers see it, the age
    rounded; otherwise the owner's working copy.
    """
    snap = await repo.snapshot(session, case)
    study_list = await repo.study_rows(session, case["id"])
    rows = await imagestore.ready_images_of(session, case["id"])
    if public_version:
        frozen = case.get("public_snapshot") or {}
        approved = set(frozen.get("image_ids", []))
        rows = [r for r in rows if r["id"] in approved]
        study_list = frozen.get("studies", study_list)
        text = {k: v for k, v in frozen.items() if k in repo.TEXT_FIELDS}
        age = core.public_age(text.get("patient_age", case["patient_age"]))
        text["patient_age"] = age if isinstance(age, int) or age is None else 90  # the 90+ band's floor
        snap = snap.model_copy(update={**text, "findings": [s["findings"] for s in study_list]})
    studies_out = []
    for s in study_list:
        series = core.order_series([r for r in rows if r["study_id"] == s["id"]])
        studies_out.append(ExportStudy(position=s["position"], modality=s["modality"], findings=s["findings"], series=[
            ExportSeries(position=n, description=g[0]["series_description"] or "", images=[
                ExportImage(image_id=i["id"], object_key=i["object_key"], media_type=i["media_type"],
                            size=i["size"] or 0) for i in g])
            for n, g in enumerate(series, start=1)]))
    return ExportCase(case_id=case["id"], revision=case["revision"], case=snap, author_name=case["owner_name"],
                      attribution=credit.attribution(case["owner_name"], case["id"]), licence=credit.LICENCE,
                      studies=studies_out)


async def _queue(session: Any, user: Principal, *, outbox: Outbox, storage: Storage, domain: DomainMetrics,
                 kind: str, title: str, export_cases: list[ExportCase], case_id: str | None = None,
                 playlist_id: str | None = None) -> ExportOut:
    export_id = repo.new_id("x")
    fp = core.fingerprint({"kind": kind, "cases": [c.model_dump(mode="json") for c in export_cases]})
    # Claim check: the content goes to the object store, the event only names it (issue 15).
    claim = await manifests.store(storage, ExportManifest(export_id=export_id, kind=kind, title=title,
                                                          playlist_id=playlist_id, cases=export_cases))
    try:
        await listings.insert_export(session, export_id, requested_by=user.id, kind=kind, case_id=case_id,
                                     playlist_id=playlist_id, status="queued",
                                     case_ids=[c.case_id for c in export_cases])
        event = ExportRequestedV2(
            export_id=export_id, kind=kind, requested_by=user.id, title=title, case_id=case_id,
            revision=export_cases[0].revision if case_id else None, playlist_id=playlist_id,
            cases=[ExportCaseRef(case_id=c.case_id, revision=c.revision) for c in export_cases], fingerprint=fp,
            manifest_key=claim.key, manifest_sha256=claim.sha256, manifest_size=claim.size)
        await outbox.emit(session, event, key=export_id)
    except BaseException:
        await manifests.discard(storage, claim)
        raise
    domain.exports_requested.labels(kind).inc()
    return ExportOut(id=export_id, status="queued", progress=0.0)


@router.post("/cases/{case_id}/exports", status_code=202, response_model=ExportOut,
             summary="Originals (owner) or an offline presentation (supporters, public cases)")
async def request_case_export(case_id: str, body: ExportCreate, db: DatabaseDep, outbox: OutboxDep,
                              storage: StorageDep, domain: DomainDep, user: CurrentUser) -> ExportOut:
    async with db.transaction() as session:
        case = await repo.load_case(session, case_id, user)
        if body.kind == "originals":
            repo.require_owner(case, user)
        else:
            require_role(user, "supporter")
            if not case["listed_public"]:
                raise ApiError(422, "not_public", "presentations are offered for approved public cases")
        ec = await export_case(session, case, public_version=body.kind == "presentation")
        return await _queue(session, user, outbox=outbox, storage=storage, domain=domain, kind=body.kind,
                            title=ec.case.title, export_cases=[ec], case_id=case_id)


@router.post("/playlists/{playlist_id}/exports", status_code=202, response_model=ExportOut,
             summary="An offline presentation of a whole playlist (supporters)")
async def request_playlist_export(playlist_id: str, db: DatabaseDep, outbox: OutboxDep, storage: StorageDep,
                                  domain: DomainDep, user: CurrentUser, body: PlaylistExportCreate | None = None
                                  ) -> ExportOut:
    async with db.transaction() as session:
        pl = await load_playlist(session, playlist_id, user)
        require_role(user, "supporter")
        items = await playlist_cases(session, playlist_id)
        if not items:
            raise ApiError(422, "empty_playlist", "the playlist has no public cases to export")
        rows = await listings.cases_by_id(session, [i["id"] for i in items])
        ecs = [await export_case(session, rows[i["id"]], public_version=True) for i in items if i["id"] in rows]
        return await _queue(session, user, outbox=outbox, storage=storage, domain=domain, kind="presentation",
                            title=pl["title"], export_cases=ecs, playlist_id=playlist_id)


@router.get("/exports/{export_id}", response_model=ExportOut, summary="An export's status and download link")
async def get_export(export_id: str, request: Request, db: DatabaseDep, settings: SettingsDep, client: HttpDep,
                     user: CurrentUser) -> ExportOut:
    async with db.sessions() as session:
        row = await listings.get_export(session, export_id)
    if row is None or (row["requested_by"] != user.id and not user.has("admin")):
        raise ApiError(404, "not_found", "no such export")
    try:
        r = await client.get(f"{settings.gateway_export_url}/v1/exports/{export_id}",
                             headers={"authorization": request.headers.get("authorization", "")})
        if r.status_code == 200:
            return ExportOut.model_validate(r.json())
    except httpx.HTTPError:
        pass  # the export service is the authority; until it answers, our own record says where the job is
    return ExportOut(id=export_id, status=row["status"], progress=1.0 if row["status"] == "ready" else 0.0)
