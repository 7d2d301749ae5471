"""Queries the gateway's routes share: load a case the caller may see, render it, record history."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import CaseSnapshot, credit
from casebook_gateway import core
from casebook_gateway.adapters.db import cases, history, images, studies
from casebook_gateway.schemas import CaseOut, ModerationOut, OwnerOut, ReasonOut, StudyOut
from casebook_platform.auth import Principal
from casebook_platform.errors import ApiError

TEXT_FIELDS = ("title", "presentation", "patient_age", "patient_sex", "systems", "tags", "diagnosis",
               "diagnostic_certainty", "discussion")


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
    q = select(cases).where(cases.c.id == case_id)
    if lock:
        q = q.with_for_update()
    row = (await session.execute(q)).mappings().first()
    if row is None or not core.can_view(dict(row), viewer(principal)):
        raise ApiError(404, "not_found", "no such case")
    return dict(row)


def require_owner(case: dict[str, Any], principal: Principal, *, allow_admin: bool = False) -> None:
    """Raises ApiError 403 `not_owner` unless the caller owns the case (or is an admin, when allowed)."""
    if case["owner_id"] != principal.id and not (allow_admin and principal.has("admin")):
        raise ApiError(403, "not_owner", "only the case's owner may do this")


async def study_rows(session: AsyncSession, case_id: str) -> list[dict[str, Any]]:
    counts = (select(images.c.study_id, func.count().label("n")).where(images.c.case_id == case_id)
              .group_by(images.c.study_id).subquery())
    q = (select(studies, func.coalesce(counts.c.n, 0).label("n_images"))
         .outerjoin(counts, counts.c.study_id == studies.c.id)
         .where(studies.c.case_id == case_id).order_by(studies.c.position, studies.c.created_at))
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def case_out(session: AsyncSession, case: dict[str, Any], principal: Principal | None,
                   base_url: str) -> CaseOut:
    """Render a case for the caller: non-owners see the approved version while an edit is under review."""
    text = {k: case[k] for k in TEXT_FIELDS}
    if not core.sees_current_version(case, viewer(principal)) and case.get("public_snapshot"):
        text.update({k: v for k, v in case["public_snapshot"].items() if k in TEXT_FIELDS})
    is_owner = principal is not None and principal.id == case["owner_id"]
    share = (f"{base_url.rstrip('/')}/v1/shared/{case['share_token']}"
             if is_owner and case["visibility"] == "unlisted" and case["share_token"] else None)
    return CaseOut(
        id=case["id"], **text, status=case["status"], visibility=case["visibility"], revision=case["revision"],
        owner=OwnerOut(id=case["owner_id"], name=case["owner_name"]),
        studies=[StudyOut(id=s["id"], modality=s["modality"], findings=s["findings"], position=s["position"],
                          images=s["n_images"]) for s in await study_rows(session, case["id"])],
        moderation=ModerationOut(status=_moderation_status(case["status"]),
                                 reasons=[ReasonOut(**r) for r in case["moderation_reasons"]]),
        licence=credit.LICENCE, licence_url=credit.LICENCE_URL,
        attribution=credit.attribution(case["owner_name"], case["id"]), share_url=share,
        created_at=case["created_at"], updated_at=case["updated_at"],
    )


def approved_images_only(case: dict[str, Any], principal: Principal | None) -> set[str] | None:
    """For viewers who see the approved version: the ids of the images that were approved (None: no limit)."""
    if core.sees_current_version(case, viewer(principal)) or not case.get("public_snapshot"):
        return None
    return set(case["public_snapshot"].get("image_ids", []))


def _moderation_status(status: str) -> str:
    return {"submitted": "pending", "in_review": "in_review", "approved": "approved",
            "rejected": "rejected"}.get(status, "not_submitted")


async def snapshot(session: AsyncSession, case: dict[str, Any]) -> CaseSnapshot:
    findings = [s["findings"] for s in await study_rows(session, case["id"])]
    return CaseSnapshot(**{k: case[k] for k in TEXT_FIELDS}, findings=findings)


async def record(session: AsyncSession, case_id: str, *, actor: str, action: str, from_status: str | None,
                 to_status: str | None, reasons: list[dict[str, str]] | None = None,
                 revision: int | None = None) -> None:
    await session.execute(history.insert().values(case_id=case_id, actor=actor, action=action,
                                                  from_status=from_status, to_status=to_status,
                                                  reasons=reasons or [], revision=revision))
