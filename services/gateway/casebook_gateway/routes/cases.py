"""Cases: create, read, edit, share, publish, delete, list, history."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import CaseDeleted, CaseSubmitted, CaseUpdated
from casebook_gateway import core, repo
from casebook_gateway.adapters.db import cases, history, images
from casebook_gateway.schemas import (
    CaseCreate,
    CaseList,
    CaseOut,
    CasePatch,
    HistoryEntry,
    ReasonOut,
    VisibilityChange,
)
from casebook_platform.auth import CurrentUser, MaybeUser, Principal, require_role
from casebook_platform.errors import ApiError
from casebook_platform.pagination import decode_cursor, encode_cursor

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["cases"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"description": "unauthenticated"}, 404: {"description": "not_found"}}


def _rt(request: Request) -> Any:
    return request.app.state.runtime


async def _enforce_limit(session: AsyncSession, request: Request, owner: str, visibility: str,
                         exclude: str | None = None) -> None:
    """At most N drafts / N unlisted per user, also under concurrency: one owner's changes queue on a lock."""
    s = request.app.state.settings
    limit = {"draft": s.draft_limit, "unlisted": s.unlisted_limit}.get(visibility)
    if limit is None:
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"limit:{owner}"})
    q = select(func.count()).select_from(cases).where(cases.c.owner_id == owner, cases.c.visibility == visibility)
    if exclude:
        q = q.where(cases.c.id != exclude)
    if (await session.execute(q)).scalar_one() >= limit:
        raise ApiError(409, core.limit_code(visibility), f"you already have {limit} {visibility} cases")


@router.post("/cases", status_code=201, response_model=CaseOut, responses=ERRORS,
             summary="Create a case (draft by default)")
async def create_case(body: CaseCreate, request: Request, user: CurrentUser) -> CaseOut:
    require_role(user, "contributor")
    rt = _rt(request)
    case_id = repo.new_id("c")
    async with rt.db.transaction() as session:
        await _enforce_limit(session, request, user.id, body.visibility)
        values = body.model_dump()
        await session.execute(cases.insert().values(
            id=case_id, owner_id=user.id, owner_name=user.name, status=body.visibility,
            share_token=secrets.token_urlsafe(24) if body.visibility == "unlisted" else None, **values))
        await repo.record(session, case_id, actor=user.id, action="created", from_status=None,
                          to_status=body.visibility, revision=1)
        request.app.state.domain.cases_created.inc()
        case = await repo.load_case(session, case_id, user)
        return await repo.case_out(session, case, user, request.app.state.settings.public_base_url)


@router.get("/cases/{case_id}", response_model=CaseOut, responses=ERRORS, summary="A case the caller may see")
async def get_case(case_id: str, request: Request, user: MaybeUser) -> CaseOut:
    rt = _rt(request)
    async with rt.db.sessions() as session:
        case = await repo.load_case(session, case_id, user)
        return await repo.case_out(session, case, user, request.app.state.settings.public_base_url)


@router.get("/shared/{token}", response_model=CaseOut, responses=ERRORS, summary="An unlisted case by its link")
async def get_shared(token: str, request: Request, user: MaybeUser) -> CaseOut:
    rt = _rt(request)
    async with rt.db.sessions() as session:
        row = (await session.execute(select(cases).where(cases.c.share_token == token,
                                                         cases.c.visibility == "unlisted"))).mappings().first()
        if row is None or len(token) < 16:
            raise ApiError(404, "not_found", "no such shared case")
        return await repo.case_out(session, dict(row), user, request.app.state.settings.public_base_url)


@router.patch("/cases/{case_id}", response_model=CaseOut, responses=ERRORS, summary="Edit a case (owner)")
async def patch_case(case_id: str, body: CasePatch, request: Request, user: CurrentUser) -> CaseOut:
    rt = _rt(request)
    changes = body.model_dump(exclude_unset=True)
    async with rt.db.transaction() as session:
        case = await repo.load_case(session, case_id, user, lock=True)
        repo.require_owner(case, user)
        changed = [k for k, v in changes.items() if case[k] != v]
        if not changed:
            return await repo.case_out(session, case, user, request.app.state.settings.public_base_url)
        revision, before = case["revision"] + 1, case["status"]
        # An edit to a case in (or through) moderation sends it back; the approved version stays public.
        resubmit = case["status"] in {"submitted", "in_review", "approved"}
        status = "submitted" if resubmit else case["status"]
        await session.execute(cases.update().where(cases.c.id == case_id).values(
            **changes, revision=revision, status=status, updated_at=datetime.now(UTC)))
        case = await repo.load_case(session, case_id, user)
        await rt.emit(session, CaseUpdated(case_id=case_id, owner_id=user.id, revision=revision, status=status,
                                           visibility=case["visibility"], listed_public=case["listed_public"],
                                           changed=changed), key=case_id)
        if resubmit:
            await _submit(session, rt, case, user)
        await repo.record(session, case_id, actor=user.id, action="edited", from_status=before,
                          to_status=status, revision=revision)
        return await repo.case_out(session, case, user, request.app.state.settings.public_base_url)


async def _submit(session: AsyncSession, rt: Any, case: dict[str, Any], user: Principal) -> None:
    ids = (await session.execute(select(images.c.id).where(images.c.case_id == case["id"])
                                 .order_by(images.c.seq))).scalars().all()
    await rt.emit(session, CaseSubmitted(case_id=case["id"], owner_id=case["owner_id"], owner_name=case["owner_name"],
                                         revision=case["revision"], case=await repo.snapshot(session, case),
                                         image_ids=list(ids)), key=case["id"])


@router.post("/cases/{case_id}/visibility", response_model=CaseOut, responses=ERRORS,
             summary="Make a case a draft or unlisted (withdraws it from the public listing)")
async def change_visibility(case_id: str, body: VisibilityChange, request: Request, user: CurrentUser) -> CaseOut:
    rt = _rt(request)
    async with rt.db.transaction() as session:
        case = await repo.load_case(session, case_id, user, lock=True)
        repo.require_owner(case, user)
        if case["visibility"] == body.visibility:
            return await repo.case_out(session, case, user, request.app.state.settings.public_base_url)
        await _enforce_limit(session, request, user.id, body.visibility, exclude=case_id)
        revision = case["revision"] + 1
        await session.execute(cases.update().where(cases.c.id == case_id).values(
            visibility=body.visibility, status=body.visibility, listed_public=False, public_snapshot=None,
            revision=revision, updated_at=datetime.now(UTC),
            share_token=case["share_token"] or (secrets.token_urlsafe(24) if body.visibility == "unlisted" else None)))
        await rt.emit(session, CaseUpdated(case_id=case_id, owner_id=user.id, revision=revision,
                                           status=body.visibility, visibility=body.visibility, listed_public=False,
                                           changed=["visibility"]), key=case_id)
        await repo.record(session, case_id, actor=user.id, action="visibility_changed", from_status=case["status"],
                          to_status=body.visibility, revision=revision)
        case = await repo.load_case(session, case_id, user)
        return await repo.case_out(session, case, user, request.app.state.settings.public_base_url)


@router.post("/cases/{case_id}/publish", status_code=202, response_model=CaseOut, responses=ERRORS,
             summary="Submit a case to moderation; it becomes public once approved")
async def publish_case(case_id: str, request: Request, user: CurrentUser) -> CaseOut:
    rt = _rt(request)
    async with rt.db.transaction() as session:
        case = await repo.load_case(session, case_id, user, lock=True)
        repo.require_owner(case, user)
        if not core.can_publish(case["status"]):
            raise ApiError(409, "already_submitted", "the case is already awaiting moderation")
        revision, before = case["revision"] + 1, case["status"]
        await session.execute(cases.update().where(cases.c.id == case_id).values(
            visibility="public", status="submitted", moderation_reasons=[], revision=revision,
            updated_at=datetime.now(UTC)))
        case = await repo.load_case(session, case_id, user)
        await _submit(session, rt, case, user)
        await repo.record(session, case_id, actor=user.id, action="submitted", from_status=before,
                          to_status="submitted", revision=revision)
        return await repo.case_out(session, case, user, request.app.state.settings.public_base_url)


@router.delete("/cases/{case_id}", status_code=204, responses=ERRORS, summary="Delete a case (owner or admin)")
async def delete_case(case_id: str, request: Request, user: CurrentUser) -> Response:
    rt = _rt(request)
    async with rt.db.transaction() as session:
        case = await repo.load_case(session, case_id, user, lock=True)
        repo.require_owner(case, user, allow_admin=True)
        await session.execute(cases.delete().where(cases.c.id == case_id))
        await rt.emit(session, CaseDeleted(case_id=case_id, owner_id=case["owner_id"], deleted_by=user.id),
                      key=case_id)
    # Objects go after the commit; an object the anonymiser writes later is removed when its event arrives.
    for bucket in (rt.storage.images, rt.storage.incoming):
        try:
            await rt.storage.delete_prefix(bucket, f"{case_id}/")
        except Exception:  # noqa: BLE001 - the row is gone; a failed cleanup is logged, not surfaced
            log.warning("could not remove objects of %s from %s", case_id, bucket)
    return Response(status_code=204)


@router.get("/cases", response_model=CaseList, summary="Approved public cases; `mine=true`: all of yours")
async def list_cases(request: Request, user: MaybeUser, q: Annotated[str | None, Query(max_length=200)] = None,
                     system: Annotated[str | None, Query(max_length=60)] = None, mine: bool = False,
                     limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: str | None = None) -> CaseList:
    rt = _rt(request)
    after = decode_cursor(cursor)
    stmt = select(cases)
    if mine:
        if user is None:
            raise ApiError(401, "unauthenticated", "`mine=true` needs a bearer token")
        stmt = stmt.where(cases.c.owner_id == user.id)
    else:
        stmt = stmt.where(cases.c.listed_public)
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        stmt = stmt.where(or_(cases.c.title.ilike(like, escape="\\"), cases.c.diagnosis.ilike(like, escape="\\"),
                              cases.c.presentation.ilike(like, escape="\\")))
    if system:
        stmt = stmt.where(cases.c.systems.contains([system]))
    if after:
        stmt = stmt.where(or_(cases.c.created_at < after[0],
                              and_(cases.c.created_at == after[0], cases.c.id < after[1])))
    stmt = stmt.order_by(cases.c.created_at.desc(), cases.c.id.desc()).limit(limit + 1)
    async with rt.db.sessions() as session:
        rows = [dict(r) for r in (await session.execute(stmt)).mappings()]
        items = [await repo.case_out(session, r, user, request.app.state.settings.public_base_url)
                 for r in rows[:limit]]
    nxt = encode_cursor(rows[limit - 1]["created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
    return CaseList(items=items, next_cursor=nxt)


@router.get("/cases/{case_id}/history", response_model=list[HistoryEntry], responses=ERRORS,
            summary="Every state change of a case (owner, editors)")
async def case_history(case_id: str, request: Request, user: CurrentUser) -> list[HistoryEntry]:
    rt = _rt(request)
    async with rt.db.sessions() as session:
        case = await repo.load_case(session, case_id, user)
        if case["owner_id"] != user.id and not user.has("editor"):
            raise ApiError(403, "not_owner", "only the owner and editors see a case's history")
        rows = (await session.execute(select(history).where(history.c.case_id == case_id)
                                      .order_by(history.c.id))).mappings().all()
    return [HistoryEntry(at=r["at"], actor=r["actor"], action=r["action"], from_status=r["from_status"],
                         to_status=r["to_status"], reasons=[ReasonOut(**x) for x in r["reasons"]],
                         revision=r["revision"]) for r in rows]
