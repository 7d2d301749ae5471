"""Cases: create, read, edit, share, publish, delete, list, history."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import CaseDeleted, CaseSubmitted, CaseUpdated, lifecycle
from casebook_events.events import RevisionDiff
from casebook_events.lifecycle import RevisionStatus, Visibility
from casebook_gateway import core, repo
from casebook_gateway.adapters import casestore, revisions
from casebook_gateway.deps import DomainDep, ImageObjectsDep, RuntimeDep, SettingsDep
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
from casebook_gateway.settings import Settings
from casebook_platform.auth import CurrentUser, MaybeUser, Principal, require_role
from casebook_platform.errors import ApiError
from casebook_platform.pagination import decode_cursor, encode_cursor
from casebook_platform.service import Runtime

router = APIRouter(prefix="/v1", tags=["cases"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"description": "unauthenticated"}, 404: {"description": "not_found"}}
Responses = dict[int | str, dict[str, Any]]
LIMITS: Responses = {409: {"description": "`draft_limit_reached` / `unlisted_limit_reached`"}}
INVALID: Responses = {422: {"description": "`invalid_request`: an unknown field, `null` for a field that always "
                                           "holds a value, or a wrong type (the message names the field)"}}
OWNER_ONLY: Responses = {403: {"description": "`not_owner`"}}


async def _enforce_limit(session: AsyncSession, settings: Settings, owner: str, visibility: str,
                         exclude: str | None = None, *, creating: bool = False) -> None:
    """At most N drafts / N unlisted per user, also under concurrency: one owner's changes queue on a lock.

    A rejection may put an owner over the draft limit (nothing is lost); until they are back under it, no
    case may be created, of any kind, and none returned to draft.

    Raises:
        ApiError: 409 `draft_limit_reached` / `unlisted_limit_reached`.
    """
    if visibility not in lifecycle.LIMITED:
        return
    limits = {Visibility.DRAFT: settings.draft_limit, Visibility.UNLISTED: settings.unlisted_limit}
    await revisions.lock_owner(session, owner)
    if creating and visibility != Visibility.DRAFT:
        drafts = await revisions.count_cases(session, owner, Visibility.DRAFT)
        if drafts > settings.draft_limit:
            raise ApiError(409, core.limit_code(Visibility.DRAFT),
                           f"you hold {drafts} drafts, more than {settings.draft_limit}; finish or delete some first")
    limit = limits[Visibility(visibility)]
    if lifecycle.over_limit(await revisions.count_cases(session, owner, visibility, exclude), limit):
        raise ApiError(409, core.limit_code(visibility), f"you already have {limit} {visibility} cases")


@router.post("/cases", status_code=201, response_model=CaseOut, responses={**ERRORS, **LIMITS, **INVALID},
             summary="Create a case (draft by default)")
async def create_case(body: CaseCreate, rt: RuntimeDep, settings: SettingsDep, domain: DomainDep,
                      user: CurrentUser) -> CaseOut:
    require_role(user, "contributor")
    case_id = repo.new_id("c")
    async with rt.db.transaction() as session:
        await _enforce_limit(session, settings, user.id, body.visibility, creating=True)
        values = body.model_dump()
        await casestore.insert_case(
            session, case_id, owner_id=user.id, owner_name=user.name, status=body.visibility,
            share_token=secrets.token_urlsafe(24) if body.visibility == "unlisted" else None, **values)
        await repo.record(session, case_id, actor=user.id, action="created", from_status=None,
                          to_status=body.visibility, revision=1)
        domain.cases_created.inc()
        case = await repo.load_case(session, case_id, user)
        return await repo.case_out(session, case, user, settings.public_base_url)


@router.get("/cases/{case_id}", response_model=CaseOut, responses=ERRORS, summary="A case the caller may see")
async def get_case(case_id: str, rt: RuntimeDep, settings: SettingsDep, user: MaybeUser) -> CaseOut:
    async with rt.db.sessions() as session:
        case = await repo.load_case(session, case_id, user)
        return await repo.case_out(session, case, user, settings.public_base_url)


@router.get("/shared/{token}", response_model=CaseOut, responses=ERRORS, summary="An unlisted case by its link")
async def get_shared(token: str, rt: RuntimeDep, settings: SettingsDep, user: MaybeUser) -> CaseOut:
    async with rt.db.sessions() as session:
        row = await casestore.shared_case(session, token) if len(token) >= 16 else None
        if row is None:
            raise ApiError(404, "not_found", "no such shared case")
        return await repo.case_out(session, row, user, settings.public_base_url)


@router.patch("/cases/{case_id}", response_model=CaseOut, responses={**ERRORS, **OWNER_ONLY, **INVALID},
              summary="Edit a case (owner)")
async def patch_case(case_id: str, body: CasePatch, rt: RuntimeDep, settings: SettingsDep,
                     user: CurrentUser) -> CaseOut:
    changes = body.model_dump(exclude_unset=True)
    async with rt.db.transaction() as session:
        case = await repo.load_case(session, case_id, user, lock=True)
        repo.require_owner(case, user)
        changed = [k for k, v in changes.items() if case[k] != v]
        if not changed:
            return await repo.case_out(session, case, user, settings.public_base_url)
        revision, before = case["revision"] + 1, case["status"]
        # An edit to a case in (or through) moderation sends it back; the published revision stays public.
        resubmit = lifecycle.resubmits_on_edit(case["status"])
        status = lifecycle.Status.SUBMITTED if resubmit else case["status"]
        await casestore.update_case(session, case_id, **changes, revision=revision, status=status,
                                    updated_at=datetime.now(UTC))
        case = await repo.load_case(session, case_id, user)
        await rt.emit(session, CaseUpdated(case_id=case_id, owner_id=user.id, revision=revision, status=status,
                                           visibility=case["visibility"], listed_public=case["listed_public"],
                                           changed=changed), key=case_id)
        if resubmit:
            await _submit(session, rt, settings, case, user)
        await repo.record(session, case_id, actor=user.id, action="edited", from_status=before,
                          to_status=status, revision=revision)
        return await repo.case_out(session, case, user, settings.public_base_url)


async def _submit(session: AsyncSession, rt: Runtime, settings: Settings, case: dict[str, Any],
                  user: Principal) -> None:
    """Freeze the case as it stands into revision `case.revision` and send that revision to moderation."""
    ids = await revisions.image_ids(session, case["id"])
    snapshot = await repo.snapshot(session, case)
    limit = settings.max_case_text_bytes
    if core.text_bytes(snapshot) > limit:  # the submission carries the text: it must fit an event (issue 15)
        raise ApiError(413, "case_too_large", f"a case's text (every field and study's findings) is limited to "
                       f"{limit} bytes of UTF-8 to be submitted; shorten it")
    content = core.freeze(case, await repo.study_rows(session, case["id"]), ids)
    base = await revisions.last_approved(session, case["id"])
    diff = core.revision_diff(base.content if base else None, content, base.n if base else None)
    await revisions.close_open(session, case["id"], RevisionStatus.SUPERSEDED)
    await revisions.insert(session, case["id"], case["revision"], content=content, diff=diff, submitted_by=user.id)
    await rt.emit(session, CaseSubmitted(case_id=case["id"], owner_id=case["owner_id"], owner_name=case["owner_name"],
                                         revision=case["revision"], case=snapshot,
                                         image_ids=ids, diff=RevisionDiff.model_validate(diff)), key=case["id"])


@router.post("/cases/{case_id}/visibility", response_model=CaseOut,
             responses={**ERRORS, **OWNER_ONLY, **LIMITS, **INVALID},
             summary="Make a case a draft or unlisted (withdraws it from the public listing)")
async def change_visibility(case_id: str, body: VisibilityChange, rt: RuntimeDep, settings: SettingsDep,
                            user: CurrentUser) -> CaseOut:
    async with rt.db.transaction() as session:
        case = await repo.load_case(session, case_id, user, lock=True)
        repo.require_owner(case, user)
        if case["visibility"] == body.visibility:
            return await repo.case_out(session, case, user, settings.public_base_url)
        await _enforce_limit(session, settings, user.id, body.visibility, exclude=case_id)
        revision = case["revision"] + 1
        # Leaving `unlisted` revokes the share link; coming back to it issues a new one.
        await casestore.update_case(
            session, case_id, visibility=body.visibility, status=body.visibility, listed_public=False,
            public_snapshot=None, revision=revision, updated_at=datetime.now(UTC),
            share_token=secrets.token_urlsafe(24) if body.visibility == "unlisted" else None)
        await revisions.close_open(session, case_id, RevisionStatus.WITHDRAWN)
        await rt.emit(session, CaseUpdated(case_id=case_id, owner_id=user.id, revision=revision,
                                           status=body.visibility, visibility=body.visibility, listed_public=False,
                                           changed=["visibility"]), key=case_id)
        await repo.record(session, case_id, actor=user.id, action="visibility_changed", from_status=case["status"],
                          to_status=body.visibility, revision=revision)
        case = await repo.load_case(session, case_id, user)
        return await repo.case_out(session, case, user, settings.public_base_url)


@router.post("/cases/{case_id}/publish", status_code=202, response_model=CaseOut, responses=ERRORS,
             summary="Submit a case to moderation; it becomes public once approved")
async def publish_case(case_id: str, rt: RuntimeDep, settings: SettingsDep, user: CurrentUser) -> CaseOut:
    async with rt.db.transaction() as session:
        case = await repo.load_case(session, case_id, user, lock=True)
        repo.require_owner(case, user)
        if not core.can_publish(case["status"]):
            raise ApiError(409, "already_submitted", "the case is already awaiting moderation")
        revision, before = case["revision"] + 1, case["status"]
        await casestore.update_case(session, case_id, visibility=Visibility.PUBLIC, status=lifecycle.Status.SUBMITTED,
                                    moderation_reasons=[], revision=revision, share_token=None,
                                    updated_at=datetime.now(UTC))
        case = await repo.load_case(session, case_id, user)
        await _submit(session, rt, settings, case, user)
        await repo.record(session, case_id, actor=user.id, action="submitted", from_status=before,
                          to_status=lifecycle.Status.SUBMITTED, revision=revision)
        return await repo.case_out(session, case, user, settings.public_base_url)


@router.delete("/cases/{case_id}", status_code=204, responses=ERRORS, summary="Delete a case (owner or admin)")
async def delete_case(case_id: str, rt: RuntimeDep, objects: ImageObjectsDep, user: CurrentUser) -> Response:
    async with rt.db.transaction() as session:
        case = await repo.load_case(session, case_id, user, lock=True)
        repo.require_owner(case, user, allow_admin=True)
        await revisions.delete_exports_of(session, case_id)  # the export service removes the archives
        await casestore.delete_case(session, case_id)
        await rt.emit(session, CaseDeleted(case_id=case_id, owner_id=case["owner_id"], deleted_by=user.id),
                      key=case_id)
    # Objects go after the commit; an object the anonymiser writes later is removed when its event arrives.
    await objects.delete_case(case_id)
    return Response(status_code=204)


@router.get("/cases", response_model=CaseList, summary="Approved public cases; `mine=true`: all of yours")
async def list_cases(rt: RuntimeDep, settings: SettingsDep, user: MaybeUser,
                     q: Annotated[str | None, Query(max_length=200)] = None,
                     system: Annotated[str | None, Query(max_length=60)] = None, mine: bool = False,
                     limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: str | None = None) -> CaseList:
    if mine and user is None:
        raise ApiError(401, "unauthenticated", "`mine=true` needs a bearer token")
    async with rt.db.sessions() as session:
        rows = await casestore.search(session, owner_id=user.id if mine and user else None, q=q, system=system,
                                      limit=limit + 1, after=decode_cursor(cursor))
        items = [await repo.case_out(session, r, user, settings.public_base_url)
                 for r in rows[:limit]]
    nxt = encode_cursor(rows[limit - 1]["created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
    return CaseList(items=items, next_cursor=nxt)


@router.get("/cases/{case_id}/history", response_model=list[HistoryEntry], responses=ERRORS,
            summary="Every state change of a case (owner, editors)")
async def case_history(case_id: str, rt: RuntimeDep, user: CurrentUser) -> list[HistoryEntry]:
    async with rt.db.sessions() as session:
        case = await repo.load_case(session, case_id, user)
        if case["owner_id"] != user.id and not user.has("editor"):
            raise ApiError(403, "not_owner", "only the owner and editors see a case's history")
        rows = await casestore.history_of(session, case_id)
    return [HistoryEntry(at=r["at"], actor=r["actor"], action=r["action"], from_status=r["from_status"],
                         to_status=r["to_status"], reasons=[ReasonOut(**x) for x in r["reasons"]],
                         revision=r["revision"]) for r in rows]


@router.post("/cases/{case_id}/share-link", response_model=CaseOut,
             responses={**ERRORS, **OWNER_ONLY, 409: {"description": "`not_unlisted`"}},
             summary="Issue a new share link for an unlisted case (the old one stops working)")
async def new_share_link(case_id: str, rt: RuntimeDep, settings: SettingsDep, user: CurrentUser) -> CaseOut:
    async with rt.db.transaction() as session:
        case = await repo.load_case(session, case_id, user, lock=True)
        repo.require_owner(case, user)
        if case["visibility"] != Visibility.UNLISTED:
            raise ApiError(409, "not_unlisted", "only unlisted cases have a share link")
        await revisions.set_share_token(session, case_id, secrets.token_urlsafe(24))
        await repo.record(session, case_id, actor=user.id, action="share_link_renewed", from_status=case["status"],
                          to_status=case["status"], revision=case["revision"])
        case = await repo.load_case(session, case_id, user)
        return await repo.case_out(session, case, user, settings.public_base_url)


async def _revision_view(session: AsyncSession, case_id: str, user: Principal) -> tuple[dict[str, Any], list[Any],
                                                                                        dict[str, Any] | None]:
    """(case, frozen revisions, the pending working copy or None) for the owner and editors.

    Raises:
        ApiError: 404 `not_found` (cannot see the case), 403 `not_owner` (a reader).
    """
    case = await repo.load_case(session, case_id, user)
    if case["owner_id"] != user.id and not lifecycle.is_editor(user.roles):
        raise ApiError(403, "not_owner", "only the owner and editors see a case's revisions")
    frozen = await revisions.all_of(session, case_id)
    current = core.freeze(case, await repo.study_rows(session, case_id), await revisions.image_ids(session, case_id))
    pending = None
    if not frozen or frozen[-1].content != current:
        n = case["revision"] if all(r.n != case["revision"] for r in frozen) else case["revision"] + 1
        base = await revisions.last_approved(session, case_id)
        pending = {"n": n, "content": current,
                   "diff": core.revision_diff(base.content if base else None, current, base.n if base else None)}
    return case, frozen, pending


def _summary(r: Any) -> dict[str, Any]:
    return {"n": r.n, "status": r.status, "submitted_at": r.submitted_at, "decided_at": r.decided_at,
            "decided_by": r.decided_by, "reasons": r.reasons, "diff": r.diff}


def _pending(p: dict[str, Any]) -> dict[str, Any]:
    return {"n": p["n"], "status": RevisionStatus.PENDING, "submitted_at": None, "decided_at": None,
            "decided_by": None, "reasons": [], "diff": p["diff"]}


@router.get("/cases/{case_id}/revisions", response_model=list[RevisionSummary],
            responses={**ERRORS, 403: {"description": "`not_owner` (readers)"}},
            summary="The case's revisions with their diffs from the last approved one (owner, editors)")
async def list_revisions(case_id: str, rt: RuntimeDep, user: CurrentUser) -> list[RevisionSummary]:
    async with rt.db.sessions() as session:
        _, frozen, pending = await _revision_view(session, case_id, user)
    out = [RevisionSummary.model_validate(_summary(r)) for r in frozen]
    return out + ([RevisionSummary.model_validate(_pending(pending))] if pending else [])


@router.get("/cases/{case_id}/revisions/{n}", response_model=RevisionOut,
            responses={**ERRORS, 403: {"description": "`not_owner` (readers)"}},
            summary="One revision as it was frozen: text, studies with findings, image ids (owner, editors)")
async def get_revision(case_id: str, n: int, rt: RuntimeDep, user: CurrentUser) -> RevisionOut:
    async with rt.db.sessions() as session:
        _, frozen, pending = await _revision_view(session, case_id, user)
    for r in frozen:
        if r.n == n:
            return RevisionOut.model_validate({**r.content, **_summary(r)})
    if pending and pending["n"] == n:
        return RevisionOut.model_validate({**pending["content"], **_pending(pending)})
    raise ApiError(404, "not_found", "no such revision")
