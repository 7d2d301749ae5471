"""Database operations of DICOMweb: the cases a caller may be shown, their indexed instances, the index itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events.lifecycle import Visibility
from casebook_gateway.adapters.db import cases, images
from casebook_gateway.core import Viewer

INDEXED = "indexed"
FAILED = "failed"

_LIGHT = (images.c.id, images.c.case_id, images.c.study_uid, images.c.series_uid, images.c.sop_uid,
          images.c.sop_class_uid, images.c.transfer_syntax_uid, images.c.dicom_attrs, images.c.seq, images.c.size,
          images.c.object_key, images.c.frames)


_VISIBILITY = (cases.c.id, cases.c.owner_id, cases.c.listed_public, cases.c.visibility, cases.c.status,
               cases.c.public_snapshot["image_ids"].label("image_ids"))


def _case_rows(rows: Any) -> list[dict[str, Any]]:
    return [{**{k: r[k] for k in ("id", "owner_id", "listed_public", "visibility", "status")},
             "public_snapshot": {"image_ids": r["image_ids"] or []} if r["image_ids"] is not None else None}
            for r in rows]


async def candidate_cases(session: AsyncSession, viewer: Viewer, case_id: str | None = None
                          ) -> list[dict[str, Any]]:
    """Cases the caller might see (a superset: `core.can_view` decides), with the image ids of the published
    revision as `public_snapshot.image_ids`. Only the columns the visibility rule reads are loaded."""
    who: list[ColumnElement[bool]] = [cases.c.listed_public.is_(True)]
    if viewer.id is not None:
        who.append(cases.c.owner_id == viewer.id)
    if viewer.is_admin:
        who.append(true())
    elif viewer.is_editor:
        who.append(cases.c.visibility == Visibility.PUBLIC)
    q = select(*_VISIBILITY).where(or_(*who))
    if case_id is not None:
        q = q.where(cases.c.id == case_id)
    return _case_rows((await session.execute(q)).mappings())


async def cases_by_id(session: AsyncSession, case_ids: Sequence[str]) -> list[dict[str, Any]]:
    """These cases, with the columns the visibility rule reads (as `candidate_cases`)."""
    if not case_ids:
        return []
    q = select(*_VISIBILITY).where(cases.c.id.in_(list(case_ids)))
    return _case_rows((await session.execute(q)).mappings())


async def instances(session: AsyncSession, case_ids: Sequence[str] | None, *, study_uid: str | None = None,
                    series_uid: str | None = None, sop_uid: str | None = None) -> list[dict[str, Any]]:
    """The indexed, ready DICOM instances of these cases (None: of any case), optionally of one study, series
    or instance (found through the UID indexes)."""
    if case_ids is not None and not case_ids:
        return []
    q = select(*_LIGHT).where(images.c.status == "ready", images.c.dicom_state == INDEXED)
    if case_ids is not None:
        q = q.where(images.c.case_id.in_(list(case_ids)))
    if study_uid is not None:
        q = q.where(images.c.study_uid == study_uid)
    if series_uid is not None:
        q = q.where(images.c.series_uid == series_uid)
    if sop_uid is not None:
        q = q.where(images.c.sop_uid == sop_uid)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def metadata_of(session: AsyncSession, image_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The whole header (DICOM JSON without bulk data) of each image."""
    if not image_ids:
        return {}
    q = select(images.c.id, images.c.dicom_meta).where(images.c.id.in_(list(image_ids)))
    return {r.id: dict(r.dicom_meta or {}) for r in await session.execute(q)}


async def pending(session: AsyncSession, limit: int = 50) -> list[tuple[str, str]]:
    """Ready DICOM images whose header was not read yet: (id, object key), oldest first."""
    q = (select(images.c.id, images.c.object_key)
         .where(images.c.status == "ready", images.c.media_type == "application/dicom",
                images.c.dicom_state.is_(None), images.c.object_key.is_not(None))
         .order_by(images.c.seq).limit(limit))
    return [(r.id, r.object_key) for r in await session.execute(q)]


async def record_index(session: AsyncSession, image_id: str, **values: Any) -> None:
    """Store what the header said (or `dicom_state=failed`); a row since gone or changed is left alone."""
    await session.execute(images.update().where(images.c.id == image_id, images.c.status == "ready")
                          .values(**values))
