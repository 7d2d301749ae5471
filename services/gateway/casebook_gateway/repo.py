"""What the gateway's routes share: load a case the caller may see, render it, record history (the SQL is in
`adapters/`)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import CaseSnapshot, credit
from casebook_events.lifecycle import Visibility
from casebook_gateway import core
from casebook_gateway.adapters import casestore, revisions
from casebook_gateway.schemas import CaseOut, Completeness, ModerationOut, OwnerOut, ReasonOut, StudyOut
from casebook_platform.auth import Principal
from casebook_platform.errors import ApiError

TEXT_FIELDS = core.TEXT_FIELDS


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def viewer(principal: Principal | None) -> core.Viewer:
    return core.Viewer(id=principal.id if principal else None,
                       roles=principal.roles if principal else frozenset())


async def load_case(session: AsyncSession, case_id: str, principal: Principal | None, *,
                    lock: bool = False) -> dict[str, Any]:
    """The case if the caller may see it.

    Raises:
        ApiError: 404 `not_found` when it does not exist or the caller may not see it (never revealing which).
    """
    row = await casestore.get_case(session, case_id, lock=lock)
    if row is None or not core.can_view(row, viewer(principal)):
        raise ApiError(404, "not_found", "no such case")
    return row


def require_owner(case: dict[str, Any], principal: Principal, *, allow_admin: bool = False) -> None:
    """Raises ApiError 403 `not_owner` unless the caller owns the case (or is an admin, when allowed)."""
    if case["owner_id"] != principal.id and not (allow_admin and principal.has("admin")):
        raise ApiError(403, "not_owner", "only the case's owner may do this")


async def study_rows(session: AsyncSession, case_id: str) -> list[dict[str, Any]]:
    """The case's studies in position order, each with its image count (`n_images`)."""
    return await casestore.study_rows(session, case_id)


async def case_out(session: AsyncSession, case: dict[str, Any], principal: Principal | None,
                   base_url: str) -> CaseOut:
    """Render a case for the caller: the owner and editors see the working copy; everyone else sees the
    published revision only (its text, its studies, its images) with an adult's age rounded."""
    v = viewer(principal)
    is_owner = v.id is not None and v.id == case["owner_id"]
    published = None if core.sees_current_version(case, v) else case.get("public_snapshot")
    text = {k: case[k] for k in TEXT_FIELDS}
    rows = await study_rows(session, case["id"])
    if published:
        text.update({k: v for k, v in published.items() if k in TEXT_FIELDS})
        counts = await revisions.ready_images_by_study(session, case["id"], list(published.get("image_ids", [])))
        frozen = published.get("studies")
        study_out = [StudyOut(id=s["id"], modality=s["modality"], findings=s["findings"], position=s["position"],
                              images=counts.get(s["id"], 0)) for s in (frozen if frozen is not None else rows)]
    else:
        study_out = [StudyOut(id=s["id"], modality=s["modality"], findings=s["findings"], position=s["position"],
                              images=s["n_images"]) for s in rows]
    age: int | str | None = text["patient_age"]
    if not core.sees_current_version(case, v):
        age = core.public_age(text["patient_age"])
    completeness = None
    if is_owner:
        ready = sum((await revisions.ready_images_by_study(session, case["id"])).values())
        completeness = Completeness(**core.completeness(case, rows, ready))
    share = (f"{base_url.rstrip('/')}/v1/shared/{case['share_token']}"
             if is_owner and case["visibility"] == Visibility.UNLISTED and case["share_token"] else None)
    return CaseOut(
        id=case["id"], **{**text, "patient_age": age}, status=case["status"], visibility=case["visibility"],
        revision=case["revision"], owner=OwnerOut(id=case["owner_id"], name=case["owner_name"]),
        studies=study_out,
        moderation=ModerationOut(status=core.moderation_status(case["status"]),
                                 reasons=[ReasonOut(**r) for r in case["moderation_reasons"]]),
        licence=credit.LICENCE, licence_url=credit.LICENCE_URL,
        attribution=credit.attribution(case["owner_name"], case["id"]), share_url=share,
        completeness=completeness, created_at=case["created_at"], updated_at=case["updated_at"],
    )


def approved_images_only(case: dict[str, Any], principal: Principal | None) -> set[str] | None:
    """For viewers who see the published revision: the ids of its images (None: no limit)."""
    if core.sees_current_version(case, viewer(principal)):
        return None
    published = case.get("public_snapshot")
    return set(published.get("image_ids", [])) if published else set()


async def snapshot(session: AsyncSession, case: dict[str, Any]) -> CaseSnapshot:
    findings = [s["findings"] for s in await study_rows(session, case["id"])]
    return CaseSnapshot(**{k: case[k] for k in TEXT_FIELDS}, findings=findings)


async def record(session: AsyncSession, case_id: str, *, actor: str, action: str, from_status: str | None,
                 to_status: str | None, reasons: list[dict[str, str]] | None = None,
                 revision: int | None = None) -> None:
    await casestore.insert_history(session, case_id, actor=actor, action=action, from_status=from_status,
                                   to_status=to_status, reasons=reasons or [], revision=revision)
