"""Event handlers of the gateway: its read model follows the anonymiser, moderation, featuring and exports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
    lifecycle,
)
from casebook_events.lifecycle import RevisionStatus, Status, Visibility
from casebook_gateway import repo
from casebook_gateway.adapters import casestore, imagestore, listings, revisions
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime

# A decision applies to a revision still submitted, or superseded by a newer submission it raced with (the
# editor decided on what they saw); a withdrawn revision, or one already decided, stays as it is.
DECIDABLE = frozenset({RevisionStatus.SUBMITTED, RevisionStatus.SUPERSEDED})


async def _case(d: Delivery, case_id: str) -> dict[str, Any] | None:
    return await casestore.get_case(d.session, case_id, lock=True)


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    domain = rt.domain  # type: ignore[attr-defined]

    async def anonymised(d: Delivery) -> None:
        e: CaseAnonymised = d.event
        found = await imagestore.update_image(
            d.session, e.image_id, status="ready", reasons=[], object_key=e.object_key, media_type=e.media_type,
            size=e.size, sha256=e.sha256, modality=e.modality, series_uid=e.series_uid,
            series_number=e.series_number, series_description=e.series_description,
            instance_number=e.instance_number, rows=e.rows, columns=e.columns, frames=e.frames)
        if not found:  # the case was deleted meanwhile: its de-identified copy must not linger
            d.after_commit.append(lambda: rt.storage.delete(rt.storage.images, e.object_key))
            d.after_commit.append(lambda: rt.storage.delete(rt.storage.images, e.object_key + ".deid-report.json"))
        else:
            domain.images_ready.inc()

    async def quarantined(d: Delivery) -> None:
        e: CaseQuarantined = d.event
        await imagestore.update_image(d.session, e.image_id, status="quarantined", reasons=e.reasons)
        for r in e.reasons:
            domain.images_quarantined.labels(r).inc()

    async def approved(d: Delivery) -> None:
        e: CaseApproved = d.event
        case = await _case(d, e.case_id)
        if case is None or case["visibility"] != Visibility.PUBLIC:
            return  # deleted or withdrawn meanwhile
        rev = await revisions.get(d.session, e.case_id, e.revision, for_update=True)
        if rev is None or rev.status not in DECIDABLE:
            return  # withdrawn (or already decided): nothing to publish
        # The approved revision is published as it was frozen, whatever the case holds by now; an edit made
        # since stays pending (and, when it was submitted, stays in moderation).
        current = e.revision == case["revision"]
        values: dict[str, Any] = {"listed_public": True, "approved_at": e.approved_at, "public_snapshot": rev.content,
                                  "updated_at": datetime.now(UTC)}
        if current:
            values.update(status=Status.APPROVED, moderation_reasons=[])
        await casestore.update_case(d.session, e.case_id, **values)
        await revisions.decide(d.session, e.case_id, e.revision, status=RevisionStatus.APPROVED, by=e.editor_id,
                               at=e.approved_at)
        await repo.record(d.session, e.case_id, actor=e.editor_id, action="approved", from_status=case["status"],
                          to_status=Status.APPROVED if current else case["status"], revision=e.revision)

    async def rejected(d: Delivery) -> None:
        e: CaseRejected = d.event
        case = await _case(d, e.case_id)
        if case is None:
            return
        rev = await revisions.get(d.session, e.case_id, e.revision, for_update=True)
        if rev is None or rev.status not in DECIDABLE:
            return
        reasons = [r.model_dump() for r in e.reasons]
        actor = e.editor_id or "automatic-checks"
        await revisions.decide(d.session, e.case_id, e.revision, status=RevisionStatus.REJECTED, by=actor,
                               at=datetime.now(UTC), reasons=reasons)
        if e.revision != case["revision"] or not lifecycle.is_under_review(case["status"]):
            return  # a newer revision is in play: the rejection is recorded on its own revision only
        # A case never approved returns to its owner as a draft (it counts against the draft limit again);
        # an approved case keeps its published revision public.
        status, visibility = lifecycle.after_rejection(bool(case["listed_public"]))
        await casestore.update_case(d.session, e.case_id, status=status, visibility=visibility,
                                    moderation_reasons=reasons, updated_at=datetime.now(UTC))
        await repo.record(d.session, e.case_id, actor=actor, action="rejected", from_status=case["status"],
                          to_status=status, reasons=reasons, revision=e.revision)

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
        await listings.update_export(d.session, e.export_id, status="ready", object_key=e.object_key,
                                     expires_at=e.expires_at)

    async def export_failed(d: Delivery) -> None:
        e: ExportFailed = d.event
        await listings.update_export(d.session, e.export_id, status="failed", error=e.reason)

    return {Topic.CASE_ANONYMISED: anonymised, Topic.CASE_QUARANTINED: quarantined, Topic.CASE_APPROVED: approved,
            Topic.CASE_REJECTED: rejected, Topic.CASE_FEATURED: featured, Topic.CASE_OF_THE_MONTH: of_the_month,
            Topic.EXPORT_READY: export_ready, Topic.EXPORT_FAILED: export_failed}
