"""HTTP API of the featuring service: featured cases and the Case of the Month (editors write, anyone reads)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row

from casebook_events import CaseFeatured, CaseOfTheMonthPicked
from casebook_featuring import core
from casebook_featuring.adapters import catalog
from casebook_featuring.settings import Settings
from casebook_platform.auth import CurrentUser, require_role
from casebook_platform.deps import RuntimeDep, SessionDep
from casebook_platform.errors import ApiError
from casebook_platform.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1", tags=["featuring"])


class CaseRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class FeaturedOut(BaseModel):
    case_id: str
    title: str
    featured_at: datetime
    featured_by: str


class FeaturedPage(BaseModel):
    items: list[FeaturedOut]
    next_cursor: str | None


class CandidateOut(BaseModel):
    case_id: str
    owner_id: str
    title: str
    approved_at: datetime


class CandidatesPage(BaseModel):
    month: str = Field(description="The month of the pick.")
    approved_from: datetime = Field(description="Start of the preceding month (inclusive).")
    approved_until: datetime = Field(description="Start of the pick's month (exclusive).")
    items: list[CandidateOut]
    next_cursor: str | None


class PickOut(BaseModel):
    month: str
    case_id: str
    title: str
    approved_at: datetime
    picked_by: str
    picked_at: datetime


class AtomResponse(Response):
    media_type = core.ATOM_MEDIA_TYPE


def _settings(rt: RuntimeDep) -> Settings:
    """The featuring service's own settings (the runtime carries them typed as the shared slices)."""
    assert isinstance(rt.settings, Settings)
    return rt.settings


SettingsDep = Annotated[Settings, Depends(_settings)]


# `YYYY-MM`, year 1000 to 9999 (`core.parse_month` reads the same).
Month = Annotated[str, Path(pattern=r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])$", description="`YYYY-MM` (UTC)")]


def _month(text: str) -> core.Month:
    try:
        return core.parse_month(text)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", "month: expected YYYY-MM") from exc


def _featured_out(row: Row[Any]) -> FeaturedOut:
    return FeaturedOut(case_id=row.case_id, title=row.title, featured_at=row.featured_at, featured_by=row.featured_by)


def _pick_out(row: Row[Any]) -> PickOut:
    return PickOut(month=row.month, case_id=row.case_id, title=row.title, approved_at=row.approved_at,
                   picked_by=row.picked_by, picked_at=row.picked_at)


@router.post("/featured", response_model=FeaturedOut, status_code=201,
             responses={200: {"model": FeaturedOut, "description": "The case was already featured"}},
             summary="Feature an approved public case (201; 200 when it already is)")
async def feature(body: CaseRef, rt: RuntimeDep, response: Response, user: CurrentUser) -> FeaturedOut:
    require_role(user, "editor")
    now = datetime.now(UTC)
    async with rt.db.transaction() as session:
        case = await catalog.get_listed(session, body.case_id)
        if case is None:
            raise ApiError(422, "not_approved", "only approved public cases can be featured")
        existing = await catalog.get_featured(session, body.case_id)
        if existing is None:
            await catalog.add_featured(session, case.case_id, case.title, user.id, now)
            await rt.emit(session, CaseFeatured(case_id=case.case_id, editor_id=user.id, title=case.title,
                                                featured_at=now), key=case.case_id)
    if existing is not None:
        response.status_code = 200
        return _featured_out(existing)
    rt.relay.nudge()
    return FeaturedOut(case_id=case.case_id, title=case.title, featured_at=now, featured_by=user.id)


@router.get("/featured", response_model=FeaturedPage, summary="Featured cases, newest first")
async def list_featured(session: SessionDep, limit: int = Query(20, ge=1, le=100),
                        cursor: str | None = None) -> FeaturedPage:
    rows = await catalog.featured_page(session, limit + 1, decode_cursor(cursor))
    more = len(rows) > limit
    rows = rows[:limit]
    return FeaturedPage(items=[_featured_out(r) for r in rows],
                        next_cursor=encode_cursor(rows[-1].featured_at, rows[-1].case_id) if more else None)


@router.get("/case-of-the-month/{month}/candidates", response_model=CandidatesPage,
            summary="Cases approved in the calendar month before `month` (UTC)")
async def candidates(month: Month, session: SessionDep, limit: int = Query(50, ge=1, le=200),
                     cursor: str | None = None) -> CandidatesPage:
    pick_month = _month(month)
    start, end = core.candidate_window(pick_month)
    rows = await catalog.candidates_page(session, start, end, limit + 1, decode_cursor(cursor))
    more = len(rows) > limit
    rows = rows[:limit]
    return CandidatesPage(
        month=str(pick_month), approved_from=start, approved_until=end,
        items=[CandidateOut(case_id=r.case_id, owner_id=r.owner_id, title=r.title, approved_at=r.approved_at)
               for r in rows],
        next_cursor=encode_cursor(rows[-1].approved_at, rows[-1].case_id) if more else None)


@router.put("/case-of-the-month/{month}", response_model=PickOut, summary="Record the Case of the Month")
async def pick(month: Month, body: CaseRef, rt: RuntimeDep, user: CurrentUser) -> PickOut:
    require_role(user, "editor")
    pick_month = _month(month)
    async with rt.db.transaction() as session:
        case = await catalog.get_listed(session, body.case_id)
        if case is None:
            raise ApiError(422, "not_approved", "only approved public cases can be Case of the Month")
        if not core.is_candidate(case.approved_at, pick_month):
            raise ApiError(422, "not_from_preceding_month",
                           f"the Case of the Month {pick_month} must be approved in {pick_month.preceding()}")
        await catalog.save_pick(session, str(pick_month), case, user.id, datetime.now(UTC))
        await rt.emit(session, CaseOfTheMonthPicked(case_id=case.case_id, month=str(pick_month), picked_by=user.id),
                      key=case.case_id)
        row = await catalog.get_pick(session, str(pick_month))
    rt.relay.nudge()
    assert row is not None
    return _pick_out(row)


@router.get("/case-of-the-month/{month}", response_model=PickOut, summary="The Case of the Month, or 404")
async def get_pick(month: Month, session: SessionDep) -> PickOut:
    pick_month = _month(month)
    row = await catalog.get_pick(session, str(pick_month))
    if row is None:
        raise ApiError(404, "not_found", f"no Case of the Month recorded for {pick_month}")
    return _pick_out(row)


@router.get("/featured.atom", response_class=AtomResponse,
            responses={200: {"description": "An Atom 1.0 feed (RFC 4287), newest entry first",
                             "content": {core.ATOM_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
            summary="Atom feed of featured cases and Cases of the Month, newest first")
async def featured_feed(session: SessionDep, settings: SettingsDep,
                        limit: int = Query(50, ge=1, le=100, description="Most entries in the feed.")) -> Response:
    items = await catalog.SqlCatalog(session).feed_items(limit)
    body = core.atom_feed(items, base_url=settings.public_base_url, now=datetime.now(UTC))
    return AtomResponse(body, headers={"Cache-Control": "public, max-age=300"})
