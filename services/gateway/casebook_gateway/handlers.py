"""Event handlers of the gateway: its read model follows the anonymiser, moderation, featuring and exports."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
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
from casebook_gateway.adapters.objects import StoredImages
from casebook_gateway.adapters.readmodel import SqlReadModel
from casebook_gateway.metrics import DomainMetrics, domain_metrics
from casebook_gateway.ports import ImageObjects, ReadModelFor
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    """The handlers on PostgreSQL and the images bucket, in each delivery's transaction (what the app wires)."""
    return handlers(store=lambda d: SqlReadModel(d.session), objects=StoredImages(rt.storage),
                    metrics=domain_metrics(rt.metrics))


def handlers(*, store: ReadModelFor, objects: ImageObjects, metrics: DomainMetrics) -> dict[str, Handler]:
    """The handler of each consumed topic, over `store` within each delivery's transaction."""
    async def anonymised(d: Delivery) -> None:
        e: CaseAnonymised = d.event
        found = await store(d).update_image(
            e.image_id, status="ready", reasons=[], object_key=e.object_key, media_type=e.media_type,
            size=e.size, sha256=e.sha256, modality=e.modality, series_uid=e.series_uid,
            series_number=e.series_number, series_description=e.series_description,
            instance_number=e.instance_number, rows=e.rows, columns=e.columns, frames=e.frames)
        if not found:  # the case was deleted meanwhile: its de-identified copy must not linger
            d.after_commit.append(lambda: objects.delete(e.object_key))
            d.after_commit.append(lambda: objects.delete(e.object_key + ".deid-report.json"))
        else:
            d.after_commit.append(partial(_count_ready, metrics))

    async def quarantined(d: Delivery) -> None:
        e: CaseQuarantined = d.event
        await store(d).update_image(e.image_id, status="quarantined", reasons=e.reasons)
        d.after_commit.append(partial(_count_quarantined, metrics, e.reasons))

    async def approved(d: Delivery) -> None:
        e: CaseApproved = d.event
        rm = store(d)
        case = await rm.case_for_update(e.case_id)
        if case is None or case["visibility"] != Visibility.PUBLIC:
            return  # deleted or withdrawn meanwhile
        rev = await rm.revision_for_update(e.case_id, e.revision)
        if rev is None or not lifecycle.decision_applies(rev.status):
            return  # withdrawn (or already decided): nothing to publish
        # The approved revision is published as it was frozen, whatever the case holds by now; an edit made
        # since stays pending (and, when it was submitted, stays in moderation).
        current = e.revision == case["revision"]
        values: dict[str, Any] = {"listed_public": True, "approved_at": e.approved_at, "public_snapshot": rev.content,
                                  "updated_at": datetime.now(UTC)}
        if current:
            values.update(status=Status.APPROVED, moderation_reasons=[])
        await rm.update_case(e.case_id, **values)
        await rm.decide_revision(e.case_id, e.revision, status=RevisionStatus.APPROVED, by=e.editor_id,
                                 at=e.approved_at)
        await rm.record_history(e.case_id, actor=e.editor_id, action="approved", from_status=case["status"],
                                to_status=Status.APPROVED if current else case["status"], revision=e.revision)

    async def rejected(d: Delivery) -> None:
        e: CaseRejected = d.event
        rm = store(d)
        case = await rm.case_for_update(e.case_id)
        if case is None:
            return
        rev = await rm.revision_for_update(e.case_id, e.revision)
        if rev is None or not lifecycle.decision_applies(rev.status):
            return
        reasons = [r.model_dump() for r in e.reasons]
        actor = e.editor_id or "automatic-checks"
        await rm.decide_revision(e.case_id, e.revision, status=RevisionStatus.REJECTED, by=actor,
                                 at=datetime.now(UTC), reasons=reasons)
        if e.revision != case["revision"] or not lifecycle.is_under_review(case["status"]):
            return  # a newer revision is in play: the rejection is recorded on its own revision only
        # A case never approved returns to its owner as a draft (it counts against the draft limit again);
        # an approved case keeps its published revision public.
        status, visibility = lifecycle.after_rejection(bool(case["listed_public"]))
        await rm.update_case(e.case_id, status=status, visibility=visibility, moderation_reasons=reasons,
                             updated_at=datetime.now(UTC))
        await rm.record_history(e.case_id, actor=actor, action="rejected", from_status=case["status"],
                                to_status=status, reasons=reasons, revision=e.revision)

    async def featured(d: Delivery) -> None:
        e: CaseFeatured = d.event
        rm = store(d)
        if await rm.case_for_update(e.case_id):
            await rm.record_history(e.case_id, actor=e.editor_id, action="featured")

    async def of_the_month(d: Delivery) -> None:
        e: CaseOfTheMonthPicked = d.event
        rm = store(d)
        if await rm.case_for_update(e.case_id):
            await rm.record_history(e.case_id, actor=e.picked_by, action=f"case_of_the_month:{e.month}")

    async def export_ready(d: Delivery) -> None:
        e: ExportReady = d.event
        await store(d).update_export(e.export_id, status="ready", object_key=e.object_key, expires_at=e.expires_at)

    async def export_failed(d: Delivery) -> None:
        e: ExportFailed = d.event
        await store(d).update_export(e.export_id, status="failed", error=e.reason)

    return {Topic.CASE_ANONYMISED: anonymised, Topic.CASE_QUARANTINED: quarantined, Topic.CASE_APPROVED: approved,
            Topic.CASE_REJECTED: rejected, Topic.CASE_FEATURED: featured, Topic.CASE_OF_THE_MONTH: of_the_month,
            Topic.EXPORT_READY: export_ready, Topic.EXPORT_FAILED: export_failed}


# Counted after the commit, so a delivery whose transaction is rolled back and retried counts once.
async def _count_ready(metrics: DomainMetrics) -> None:
    metrics.images_ready.inc()


async def _count_quarantined(metrics: DomainMetrics, reasons: list[str]) -> None:
    for r in reasons:
        metrics.images_quarantined.labels(r).inc()
