"""Event handlers of the gateway: its read model follows the anonymiser, moderation, featuring and exports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from casebook_events import (
    CaseAnonymised,
    CaseApproved,
    CaseFeatured,
    CaseOfTheMonthPicked,
    CaseQuarantined,
    CaseRejected,
    ExportFailed,
    ExportReady,
    Topic,
)
from casebook_gateway import repo
from casebook_gateway.adapters.db import cases, exports, images
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime


async def _case(d: Delivery, case_id: str) -> dict[str, Any] | None:
    row = (await d.session.execute(select(cases).where(cases.c.id == case_id).with_for_update())).mappings().first()
    return dict(row) if row else None


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    domain = rt.domain  # type: ignore[attr-defined]

    async def anonymised(d: Delivery) -> None:
        e: CaseAnonymised = d.event
        res = await d.session.execute(images.update().where(images.c.id == e.image_id).values(
            status="ready", reasons=[], object_key=e.object_key, media_type=e.media_type, size=e.size,
            sha256=e.sha256, modality=e.modality, series_uid=e.series_uid, series_number=e.series_number,
            series_description=e.series_description, instance_number=e.instance_number, rows=e.rows,
            columns=e.columns, frames=e.frames))
        if res.rowcount == 0:  # type: ignore[attr-defined]  # the case was deleted meanwhile: its de-identified copy must not linger
            d.after_commit.append(lambda: rt.storage.delete(rt.storage.images, e.object_key))
            d.after_commit.append(lambda: rt.storage.delete(rt.storage.images, e.object_key + ".deid-report.json"))
        else:
            domain.images_ready.inc()

    async def quarantined(d: Delivery) -> None:
        e: CaseQuarantined = d.event
        await d.session.execute(images.update().where(images.c.id == e.image_id).values(
            status="quarantined", reasons=e.reasons))
        for r in e.reasons:
            domain.images_quarantined.labels(r).inc()

    async def approved(d: Delivery) -> None:
        e: CaseApproved = d.event
        case = await _case(d, e.case_id)
        if case is None or case["visibility"] != "public" or e.revision != case["revision"]:
            return  # deleted, withdrawn, or edited since: the newer revision is under review
        snap = (await repo.snapshot(d.session, case)).model_dump(mode="json")
        # Images added after this approval stay private until the next one.
        snap["image_ids"] = list((await d.session.execute(select(images.c.id).where(
            images.c.case_id == e.case_id, images.c.status == "ready"))).scalars())
        await d.session.execute(cases.update().where(cases.c.id == e.case_id).values(
            status="approved", listed_public=True, approved_at=e.approved_at, public_snapshot=snap,
            moderation_reasons=[], updated_at=datetime.now(UTC)))
        await repo.record(d.session, e.case_id, actor=e.editor_id, action="approved", from_status=case["status"],
                          to_status="approved", revision=e.revision)

    async def rejected(d: Delivery) -> None:
        e: CaseRejected = d.event
        case = await _case(d, e.case_id)
        if case is None or e.revision != case["revision"] or case["status"] not in ("submitted", "in_review"):
            return
        reasons = [r.model_dump() for r in e.reasons]
        await d.session.execute(cases.update().where(cases.c.id == e.case_id).values(
            status="rejected", moderation_reasons=reasons, updated_at=datetime.now(UTC)))
        await repo.record(d.session, e.case_id, actor=e.editor_id or "automatic-checks", action="rejected",
                          from_status=case["status"], to_status="rejected", reasons=reasons, revision=e.revision)

    async def featured(d: Delivery) -> None:
        e: CaseFeatured = d.event
        if await _case(d, e.case_id):
            await repo.record(d.session, e.case_id, actor=e.editor_id, action="featured", from_status=None,
                              to_status=None)

    async def of_the_month(d: Delivery) -> None:
        e: CaseOfTheMonthPicked = d.event
        if await _case(d, e.case_id):
            await repo.record(d.session, e.case_id, actor=e.picked_by, action=f"case_of_the_month:{e.month}",
                              from_status=None, to_status=None)

    async def export_ready(d: Delivery) -> None:
        e: ExportReady = d.event
        await d.session.execute(exports.update().where(exports.c.id == e.export_id).values(
            status="ready", object_key=e.object_key, expires_at=e.expires_at))

    async def export_failed(d: Delivery) -> None:
        e: ExportFailed = d.event
        await d.session.execute(exports.update().where(exports.c.id == e.export_id).values(
            status="failed", error=e.reason))

    return {Topic.CASE_ANONYMISED: anonymised, Topic.CASE_QUARANTINED: quarantined, Topic.CASE_APPROVED: approved,
            Topic.CASE_REJECTED: rejected, Topic.CASE_FEATURED: featured, Topic.CASE_OF_THE_MONTH: of_the_month,
            Topic.EXPORT_READY: export_ready, Topic.EXPORT_FAILED: export_failed}
