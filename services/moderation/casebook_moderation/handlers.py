"""Event handlers of the moderation service: the queue is derived from case and image events only.

Events of different topics are not ordered relative to each other, so every handler takes the case's lock,
and image reports are stored on their own: whichever of the submission and its last image arrives second
runs the checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime

from casebook_events import (
    CaseAnonymised,
    CaseDeleted,
    CaseQuarantined,
    CaseSnapshot,
    CaseSubmitted,
    CaseUpdated,
    Reason,
    Topic,
    lifecycle,
)
from casebook_moderation import core
from casebook_moderation.adapters import queue as sql_queue
from casebook_moderation.metrics import ModerationMetrics, domain_metrics
from casebook_moderation.ports import Queue
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime


async def evaluate(d: Delivery, case_id: str, m: ModerationMetrics, queue: Queue) -> None:
    """Run the checks once every image is in; a failing case goes straight back to its owner."""
    item = await queue.get_item(d.session, case_id, for_update=True)
    if item is None or item.state not in core.OPEN_STATES:
        return
    images = await queue.case_images(d.session, case_id)
    checks = core.run_checks(case_id, CaseSnapshot.model_validate(item.snapshot), item.image_ids, images)
    if checks is None:
        return
    failed = core.failures(checks)
    advice = [{**asdict(a), "image_ids": list(a.image_ids)} for a in core.quality_advice(item.image_ids, images)]
    await queue.update_item(d.session, case_id, checks=[asdict(c) for c in checks], advice=advice, state="waiting")
    if failed:
        await queue.decide(d.session, item, approve=False, editor_id=None, now=datetime.now(UTC),
                           reasons=[Reason(code=c.code, message=c.message) for c in failed],
                           emit=lambda ev: d.emit(ev, key=case_id))
        d.after_commit.append(_count_rejection(m))


def _count_rejection(m: ModerationMetrics) -> Callable[[], Awaitable[None]]:
    async def inc() -> None:  # after the commit, so a retried transaction does not count twice
        m.rejected.labels("automatic").inc()

    return inc


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    """The handlers on PostgreSQL, in each delivery's transaction (what the app factory wires)."""
    return handlers(queue=sql_queue, metrics=domain_metrics(rt.metrics))


def handlers(*, queue: Queue, metrics: ModerationMetrics) -> dict[str, Handler]:
    """The handler of each consumed topic, over `queue` within each delivery's transaction."""
    m = metrics

    async def submitted(d: Delivery) -> None:
        e: CaseSubmitted = d.event
        await queue.lock_case(d.session, e.case_id)
        if await queue.save_submission(d.session, e, submitted_at=d.envelope.occurred_at):
            await evaluate(d, e.case_id, m, queue)

    async def anonymised(d: Delivery) -> None:
        e: CaseAnonymised = d.event
        await queue.lock_case(d.session, e.case_id)
        await queue.record_image(d.session, e.case_id, core.ImageState(
            image_id=e.image_id, status="ready", flags=tuple(e.flags),
            identifier_digests=tuple(e.identifier_digests), study_id=e.study_id, modality=e.modality,
            series_uid=e.series_uid, rows=e.rows, columns=e.columns, frames=e.frames))
        await evaluate(d, e.case_id, m, queue)

    async def quarantined(d: Delivery) -> None:
        e: CaseQuarantined = d.event
        await queue.lock_case(d.session, e.case_id)
        await queue.record_image(d.session, e.case_id, core.ImageState(
            image_id=e.image_id, status="quarantined", reasons=tuple(e.reasons), study_id=e.study_id))
        await evaluate(d, e.case_id, m, queue)

    async def updated(d: Delivery) -> None:
        e: CaseUpdated = d.event
        if not lifecycle.is_under_review(e.status):  # any other status withdraws it
            await queue.lock_case(d.session, e.case_id)
            await queue.close_case(d.session, e.case_id, e.owner_id, state="withdrawn", revision=e.revision)

    async def deleted(d: Delivery) -> None:
        e: CaseDeleted = d.event
        await queue.lock_case(d.session, e.case_id)
        await queue.close_case(d.session, e.case_id, e.owner_id, state="deleted")

    return {Topic.CASE_SUBMITTED: submitted, Topic.CASE_ANONYMISED: anonymised, Topic.CASE_QUARANTINED: quarantined,
            Topic.CASE_UPDATED: updated, Topic.CASE_DELETED: deleted}
