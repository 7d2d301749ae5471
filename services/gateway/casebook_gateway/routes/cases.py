"""Cases: create, read, edit, share, publish, delete, list, history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from casebook_events.lifecycle import RevisionStatus
from casebook_gateway import casework, repo
from casebook_gateway.adapters import casestore
from casebook_gateway.deps import DatabaseDep, DomainDep, ImageObjectsDep, OutboxDep, SettingsDep
from casebook_gateway.schemas import (
    CaseCreate,
    CaseList,
    CaseOut,
    CasePatch,
    HistoryEntry,
    ReasonOut,
    RevisionOut,
    RevisionSummary,
    VisibilityChange,
)
from casebook_platform.auth import CurrentUser, MaybeUser, require_role
from casebook_platform.errors import ApiError
from casebook_platform.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1", tags=["cases"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"description": "unauthenticated"}, 404: {"description": "not_found"}}
Responses = dict[int | str, dict[str, Any]]
LIMITS: Responses = {409: {"description": "`draft_limit_reached` / `unlisted_limit_reached`"}}
INVALID: Responses = {422: {"description": "`invalid_request`: an unknown field, `null` for a field that always "
                                           "holds a value, or a wrong type (the message names the field)"}}
OWNER_ONLY: Responses = {403: {"description": "`not_owner`"}}


@router.post("/cases", status_code=201, response_model=CaseOut, responses={**ERRORS, **LIMITS, **INVALID},
             summary="Create a case (draft by default)")
async def create_case(body: CaseCreate, db: DatabaseDep, settings: SettingsDep, domain: DomainDep,
                      user: CurrentUser) -> CaseOut:
    require_role(user, "contributor")
    async with db.transaction() as session:
        case = await casework.create(session, body.model_dump(), user, settings=settings)
        domain.cases_created.inc()
        return await repo.case_out(session, case, user, settings.public_base_url)


@router.get("/cases/{case_id}", response_model=CaseOut, responses=ERRORS, summary="A case the caller may see")
async def get_case(case_id: str, db: DatabaseDep, settings: SettingsDep, user: MaybeUser) -> CaseOut:
    async with db.sessions() as session:
        case = await repo.load_case(session, case_id, user)
        return await repo.case_out(session, case, user, settings.public_base_url)


@router.get("/shared/{token}", response_model=CaseOut, responses=ERRORS, summary="An unlisted case by its link")
async def get_shared(token: str, db: DatabaseDep, settings: SettingsDep, user: MaybeUser) -> CaseOut:
    async with db.sessions() as session:
        row = await casestore.shared_case(session, token) if len(token) >= 16 else None
        if row is None:
            raise ApiError(404, "not_found", "no such shared case")
        return await repo.case_out(session, row, user, settings.public_base_url)


@router.patch("/cases/{case_id}", response_model=CaseOut, responses={**ERRORS, **OWNER_ONLY, **INVALID},
              summary="Edit a case (owner)")
async def patch_case(case_id: str, body: CasePatch, db: DatabaseDep, outbox: OutboxDep, settings: SettingsDep,
                     user: CurrentUser) -> CaseOut:
    changes = body.model_dump(exclude_unset=True)
    async with db.transaction() as session:
        case = await casework.edit(session, case_id, changes, user, outbox=outbox, settings=settings)
        return await repo.case_out(session, case, user, settings.public_base_url)


@router.post("/cases/{case_id}/visibility", response_model=CaseOut,
             responses={**ERRORS, **OWNER_ONLY, **LIMITS, **INVALID},
             summary="Make a case a draft or unlisted (withdraws it from the public listing)")
async def change_visibility(case_id: str, body: VisibilityChange, db: DatabaseDep, outbox: OutboxDep,
                            settings: SettingsDep, user: CurrentUser) -> CaseOut:
    async with db.transaction() as session:
        case = await casework.change_visibility(session, case_id, body.visibility, user, outbox=outbox,
                                                settings=settings)
        return await repo.case_out(session, case, user, settings.public_base_url)


@router.post("/cases/{case_id}/publish", status_code=202, response_model=CaseOut, responses=ERRORS,
             summary="Submit a case to moderation; it becomes public once approved")
async def publish_case(case_id: str, db: DatabaseDep, outbox: OutboxDep, settings: SettingsDep,
                       user: CurrentUser) -> CaseOut:
    async with db.transaction() as session:
        case = await casework.publish(session, case_id, user, outbox=outbox, settings=settings)
        return await repo.case_out(session, case, user, settings.public_base_url)


@router.delete("/cases/{case_id}", status_code=204, responses=ERRORS, summary="Delete a case (owner or admin)")
async def delete_case(case_id: str, db: DatabaseDep, outbox: OutboxDep, objects: ImageObjectsDep,
                      user: CurrentUser) -> Response:
    async with db.transaction() as session:
        await casework.delete(session, case_id, user, outbox=outbox)
    # Objects go after the commit; an object the anonymiser writes later is removed when its event arrives.
    await objects.delete_case(case_id)
    return Response(status_code=204)


@router.get("/cases", response_model=CaseList, summary="Approved public cases; `mine=true`: all of yours")
async def list_cases(db: DatabaseDep, settings: SettingsDep, user: MaybeUser,
                     q: Annotated[str | None, Query(max_length=200)] = None,
                     system: Annotated[str | None, Query(max_length=60)] = None, mine: bool = False,
                     limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: str | None = None) -> CaseList:
    if mine and user is None:
        raise ApiError(401, "unauthenticated", "`mine=true` needs a bearer token")
    async with db.sessions() as session:
        rows = await casestore.search(session, owner_id=user.id if mine and user else None, q=q, system=system,
                                      limit=limit + 1, after=decode_cursor(cursor))
        items = [await repo.case_out(session, r, user, settings.public_base_url) for r in rows[:limit]]
    nxt = encode_cursor(rows[limit - 1]["created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
    return CaseList(items=items, next_cursor=nxt)


@router.get("/cases/{case_id}/history", response_model=list[HistoryEntry], responses=ERRORS,
            summary="Every state change of a case (owner, editors)")
async def case_history(case_id: str, db: DatabaseDep, user: CurrentUser) -> list[HistoryEntry]:
    async with db.sessions() as session:
        case = await repo.load_case(session, case_id, user)
        if case["owner_id"] != user.id and not user.has("editor"):
            raise ApiError(403, "not_owner", "only the owner and editors see a case's history")
        rows = await casestore.history_of(session, case_id)
    return [_history_entry(r) for r in rows]


@router.post("/cases/{case_id}/share-link", response_model=CaseOut,
             responses={**ERRORS, **OWNER_ONLY, 409: {"description": "`not_unlisted`"}},
             summary="Issue a new share link for an unlisted case (the old one stops working)")
async def new_share_link(case_id: str, db: DatabaseDep, settings: SettingsDep, user: CurrentUser) -> CaseOut:
    async with db.transaction() as session:
        case = await casework.renew_share_link(session, case_id, user)
        return await repo.case_out(session, case, user, settings.public_base_url)


def _history_entry(r: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry(at=r["at"], actor=r["actor"], action=r["action"], from_status=r["from_status"],
                        to_status=r["to_status"], reasons=[ReasonOut(**x) for x in r["reasons"]],
                        revision=r["revision"])


def _summary(r: Any) -> dict[str, Any]:
    return {"n": r.n, "status": r.status, "submitted_at": r.submitted_at, "decided_at": r.decided_at,
            "decided_by": r.decided_by, "reasons": r.reasons, "diff": r.diff}


def _pending(p: dict[str, Any]) -> dict[str, Any]:
    return {"n": p["n"], "status": RevisionStatus.PENDING, "submitted_at": None, "decided_at": None,
            "decided_by": None, "reasons": [], "diff": p["diff"]}


@router.get("/cases/{case_id}/revisions", response_model=list[RevisionSummary],
            responses={**ERRORS, 403: {"description": "`not_owner` (readers)"}},
            summary="The case's revisions with their diffs from the last approved one (owner, editors)")
async def list_revisions(case_id: str, db: DatabaseDep, user: CurrentUser) -> list[RevisionSummary]:
    async with db.sessions() as session:
        frozen, pending = await casework.revision_view(session, case_id, user)
    out = [RevisionSummary.model_validate(_summary(r)) for r in frozen]
    return out + ([RevisionSummary.model_validate(_pending(pending))] if pending else [])


@router.get("/cases/{case_id}/revisions/{n}", response_model=RevisionOut,
            responses={**ERRORS, 403: {"description": "`not_owner` (readers)"}},
            summary="One revision as it was frozen: text, studies with findings, image ids (owner, editors)")
async def get_revision(case_id: str, n: int, db: DatabaseDep, user: CurrentUser) -> RevisionOut:
    async with db.sessions() as session:
        frozen, pending = await casework.revision_view(session, case_id, user)
    for r in frozen:
        if r.n == n:
            return RevisionOut.model_validate({**r.content, **_summary(r)})
    if pending and pending["n"] == n:
        return RevisionOut.model_validate({**pending["content"], **_pending(pending)})
    raise ApiError(404, "not_found", "no such revision")
