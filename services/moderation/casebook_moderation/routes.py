"""HTTP API of the moderation service: the editors' queue, claims and decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import Reason, lifecycle
from casebook_moderation import core
from casebook_moderation.adapters import queue
from casebook_moderation.deps import SettingsDep
from casebook_moderation.metrics import domain_metrics
from casebook_platform.auth import CurrentUser, require_role
from casebook_platform.deps import RuntimeDep, SessionDep
from casebook_platform.errors import ApiError
from casebook_platform.openapi import NOT_BLANK_TEXT
from casebook_platform.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/moderation", tags=["moderation"])


class CheckOut(BaseModel):
    code: str
    passed: bool
    message: str


class AdviceOut(BaseModel):
    code: str = Field(description="`image_too_small`, `image_blank`, `mixed_modalities` or `single_slice`.")
    message: str
    image_ids: list[str]


class QueueItemOut(BaseModel):
    case_id: str
    owner_id: str
    title: str
    revision: int
    submitted_at: datetime
    claimed_by: str | None = Field(description="The editor holding an unexpired claim, if any.")
    claim_expires_at: datetime | None
    checks: list[CheckOut]
    advice: list[AdviceOut] = Field(description="Advisory image-quality findings; they never reject a case.")
    diff: dict[str, Any] | None = Field(description="What the submission changes against the last approved "
                                        "revision: fields (before/after), studies and images added/removed.")
    own_case: bool = Field(False, description="True when the caller owns the case (they may not decide on it).")


class ChecksOut(BaseModel):
    case_id: str
    revision: int
    state: str = Field(description="`checking`, `waiting`, `approved`, `rejected`, `withdrawn`.")
    checks: list[CheckOut]
    advice: list[AdviceOut]


class QueuePage(BaseModel):
    items: list[QueueItemOut]
    next_cursor: str | None


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=100, pattern=NOT_BLANK_TEXT,
                      description="Stable reason code, e.g. `poor_image_quality`.")
    message: str = Field(min_length=1, max_length=2000, pattern=NOT_BLANK_TEXT,
                         description="What the contributor should fix.")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reasons: list[ReasonIn] = Field(min_length=1, max_length=50)


class DecisionOut(BaseModel):
    case_id: str
    revision: int
    status: str = Field(description="`approved` or `rejected`.")
    editor_id: str
    decided_at: datetime
    reasons: list[Reason] = Field(default_factory=list)


def _item_out(row: Row[Any], now: datetime, caller: str) -> QueueItemOut:
    held = row.claim_expires_at is not None and row.claim_expires_at > now
    return QueueItemOut(case_id=row.case_id, owner_id=row.owner_id, title=row.title, revision=row.revision,
                        submitted_at=row.submitted_at, claimed_by=row.claimed_by if held else None,
                        claim_expires_at=row.claim_expires_at if held else None,
                        checks=[CheckOut(**c) for c in row.checks], advice=[AdviceOut(**a) for a in row.advice],
                        diff=row.diff, own_case=row.owner_id == caller)


async def _open_item(session: AsyncSession, case_id: str, editor_id: str, now: datetime) -> Row[Any]:
    """The waiting item, locked so that racing editors are served one after the other."""
    item = await queue.get_item(session, case_id, for_update=True)
    if item is None or item.state != "waiting":
        raise ApiError(404, "not_found", "no such case in the moderation queue")
    if not lifecycle.may_decide(editor_id, item.owner_id):
        raise ApiError(403, "own_case", "editors never claim, approve or reject their own cases")
    if core.claim_conflict(item.claimed_by, item.claim_expires_at, editor_id, now):
        raise ApiError(409, "already_claimed", f"claimed by another editor until {item.claim_expires_at:%H:%M} UTC")
    return item


@router.get("/queue", response_model=QueuePage, summary="Cases awaiting review, oldest submission first")
async def list_queue(session: SessionDep, user: CurrentUser, limit: int = Query(50, ge=1, le=200),
                     cursor: str | None = None) -> QueuePage:
    require_role(user, "editor")
    rows = await queue.queue_page(session, limit + 1, decode_cursor(cursor))
    now = datetime.now(UTC)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1].submitted_at, rows[-1].case_id) if more else None
    return QueuePage(items=[_item_out(r, now, user.id) for r in rows], next_cursor=nxt)


@router.post("/{case_id}/claim", response_model=QueueItemOut, summary="Claim a case for review")
async def claim(case_id: str, rt: RuntimeDep, settings: SettingsDep, user: CurrentUser) -> QueueItemOut:
    require_role(user, "editor")
    ttl = timedelta(seconds=settings.claim_ttl_seconds)
    now = datetime.now(UTC)
    async with rt.db.transaction() as session:
        await _open_item(session, case_id, user.id, now)
        await queue.update_item(session, case_id, claimed_by=user.id, claim_expires_at=now + ttl)
        row = await queue.get_item(session, case_id)
    assert row is not None
    return _item_out(row, now, user.id)


@router.post("/{case_id}/approve", response_model=DecisionOut, summary="Approve: the case becomes public")
async def approve(case_id: str, rt: RuntimeDep, user: CurrentUser) -> DecisionOut:
    require_role(user, "editor")
    now = datetime.now(UTC)
    async with rt.db.transaction() as session:
        item = await _open_item(session, case_id, user.id, now)
        await queue.decide(session, item, approve=True, editor_id=user.id, reasons=[], now=now,
                           emit=lambda ev: rt.emit(session, ev, key=case_id))
    rt.relay.nudge()
    domain_metrics(rt.metrics).approved.inc()
    return DecisionOut(case_id=case_id, revision=item.revision, status="approved", editor_id=user.id, decided_at=now)


@router.post("/{case_id}/reject", response_model=DecisionOut, summary="Return the case to its owner with reasons")
async def reject(case_id: str, body: RejectIn, rt: RuntimeDep, user: CurrentUser) -> DecisionOut:
    require_role(user, "editor")
    now = datetime.now(UTC)
    reasons = [Reason(code=r.code, message=r.message) for r in body.reasons]
    async with rt.db.transaction() as session:
        item = await _open_item(session, case_id, user.id, now)
        await queue.decide(session, item, approve=False, editor_id=user.id, reasons=reasons, now=now,
                           emit=lambda ev: rt.emit(session, ev, key=case_id))
    rt.relay.nudge()
    domain_metrics(rt.metrics).rejected.labels("editor").inc()
    return DecisionOut(case_id=case_id, revision=item.revision, status="rejected", editor_id=user.id,
                       decided_at=now, reasons=reasons)


@router.get("/{case_id}/checks", response_model=ChecksOut,
            summary="The automatic checks and image-quality advice of a case's latest submission (owner, editors)")
async def case_checks(case_id: str, session: SessionDep, user: CurrentUser) -> ChecksOut:
    item = await queue.get_item(session, case_id)
    if item is None or item.revision == 0 or item.state == "deleted" or (
            item.owner_id != user.id and not lifecycle.is_editor(user.roles)):
        raise ApiError(404, "not_found", "no submission of this case is known")
    return ChecksOut(case_id=case_id, revision=item.revision, state=item.state,
                     checks=[CheckOut(**c) for c in item.checks], advice=[AdviceOut(**a) for a in item.advice])
