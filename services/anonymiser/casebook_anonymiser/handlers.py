"""The anonymiser's one handler: raw upload in, de-identified object or quarantine out (fail closed).

Whatever happens, nothing is left behind: the outcome (ready or quarantined with a reason) is recorded
with its event, and the raw upload is deleted once that is durable (the sweeper finishes what a crash
interrupted). A dependency that is down is waited for by the consumer, never turned into an outcome.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path

from casebook_anonymiser import core
from casebook_anonymiser.deid import CaseKey
from casebook_anonymiser.deid.result import PROCESSING_ERROR
from casebook_anonymiser.metrics import DomainMetrics
from casebook_anonymiser.ports import Deidentifier, Objects, Run, Runs, SourceMissing
from casebook_anonymiser.settings import Settings
from casebook_anonymiser.worker import PROCESSING_TIMEOUT, ByteBudget, Outcome, TaskTimeout
from casebook_events import CaseAnonymised, CaseQuarantined, CaseUploaded, Topic
from casebook_platform.consumer import Delivery, Handler

log = logging.getLogger(__name__)

SOURCE_MISSING = "source_missing"  # stable reason code: the raw upload was gone (its case deleted first)


def handlers(*, objects: Objects, runs: Runs, deidentifier: Deidentifier, settings: Settings,
             domain: DomainMetrics) -> dict[str, Handler]:
    """The handler of `case.uploaded`, over these ports (wired in `main`, in memory in the service tests)."""
    budget = ByteBudget(settings.deid_memory_budget_bytes, stream_bytes=settings.deid_stream_bytes)

    async def uploaded(d: Delivery) -> None:
        e: CaseUploaded = d.event
        with tempfile.TemporaryDirectory(prefix="deid-", dir=settings.tmp_dir or None) as tmp:
            src, dst = Path(tmp) / "in", Path(tmp) / "out"
            try:
                await objects.get_raw(e.object_key, src)
            except SourceMissing:
                await finish(d, e, None, [SOURCE_MISSING])
            else:
                result, digests = await deidentified(e, src, dst)
                await store_and_record(d, e, result, digests, dst)
        d.after_commit.append(partial(_remove_raw, objects, runs, e))

    async def deidentified(e: CaseUploaded, src: Path, dst: Path) -> tuple[Outcome, list[str]]:
        """The outcome for the spooled upload `src` (within the byte budget) and its identifiers' digests."""
        key = core.case_key(settings.deid_secret, settings.deid_key_id, e.case_id)
        started = time.perf_counter()
        async with budget.hold(e.size):
            result = await _deidentify(deidentifier, src, dst, key, ocr=settings.deid_ocr,
                                       crash_limit=settings.deid_crash_limit)
        domain.seconds.observe(time.perf_counter() - started)
        digests = core.digests_of(e.case_id, result.identifiers)
        return core.announced(result, digests), digests

    async def store_and_record(d: Delivery, e: CaseUploaded, result: Outcome, digests: list[str], dst: Path
                               ) -> None:
        """Store the report, and a ready result's object, while the outcome and its event are written.

        The three are independent, so they run side by side; the delivery's transaction commits only once
        every one of them has succeeded, so an object that could not be stored rolls its event back and
        nothing announces an object that is not there (the delivery is retried).
        """
        ready = result.status == "ready" and result.size is not None and result.sha256 is not None
        out_key = f"{e.case_id}/{e.image_id}" if ready else None
        report = core.report_document(result.info, [] if result.status == "ready" else result.reasons)
        # The objects first: their transfers start on their threads before the rows are built and written.
        steps = [objects.put_report(core.report_key(e.case_id, e.image_id), json.dumps(report).encode())]
        if out_key is not None:
            steps.append(objects.put_output(out_key, dst, result.media_type))
        steps.append(record(d, e, result, digests, out_key))
        # Every step ends before the first failure is raised: none still reads `dst` once it is removed.
        for outcome in await asyncio.gather(*steps, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def record(d: Delivery, e: CaseUploaded, result: Outcome, digests: list[str], out_key: str | None
                     ) -> None:
        """Announce a ready result stored at `out_key`, or quarantine any other."""
        if out_key is None or result.size is None or result.sha256 is None:
            await finish(d, e, result, result.reasons or [PROCESSING_ERROR])
            return
        await d.emit(CaseAnonymised(
            case_id=e.case_id, image_id=e.image_id, study_id=e.study_id, object_key=out_key,
            media_type=result.media_type, size=result.size, sha256=result.sha256, identifier_digests=digests,
            **core.anonymised_fields(result.info)), key=e.case_id)
        await finish(d, e, result, [], out_key=out_key, size_out=result.size)

    async def finish(d: Delivery, e: CaseUploaded, result: Outcome | None, reasons: list[str], *,
                     out_key: str | None = None, size_out: int | None = None) -> None:
        """Record the outcome (quarantined when there are `reasons`, announced then) in the delivery; it is
        counted once the delivery is committed."""
        if reasons:
            await d.emit(CaseQuarantined(case_id=e.case_id, image_id=e.image_id, study_id=e.study_id,
                                         reasons=reasons), key=e.case_id)
        d.after_commit.append(partial(_count, domain, reasons))
        actions = list(result.info.get("actions", [])) if result else []
        await runs.record(d.session, Run(
            image_id=e.image_id, case_id=e.case_id, status="quarantined" if reasons else "ready", reasons=reasons,
            actions=actions, incoming_key=e.object_key, object_key=out_key, size_in=e.size, size_out=size_out,
            key_id=settings.deid_key_id))

    return {Topic.CASE_UPLOADED: uploaded}


async def _deidentify(deidentifier: Deidentifier, src: Path, dst: Path, key: CaseKey, *, ocr: bool,
                      crash_limit: int) -> Outcome:
    """Run the task; a task past its time limit, or one whose worker keeps dying, ends quarantined.

    A dead worker may have been another task's (they share the pool), so a crash is retried a few times
    before it is held against this upload.
    """
    for attempt in range(1, crash_limit + 1):
        try:
            return await deidentifier.run(src, dst, key, ocr)
        except TaskTimeout:
            return Outcome(status="quarantined", reasons=[PROCESSING_TIMEOUT], media_type="application/octet-stream")
        except BrokenProcessPool:
            log.warning("a de-identification worker died (attempt %d/%d)", attempt, crash_limit)
    return Outcome(status="quarantined", reasons=[PROCESSING_ERROR], media_type="application/octet-stream")


async def _count(domain: DomainMetrics, reasons: list[str]) -> None:
    """Count a committed outcome (after the commit: a delivery retried after a rollback counts once)."""
    if not reasons:
        domain.deidentified.inc()
    for r in reasons:
        domain.quarantined.labels(r).inc()


async def _remove_raw(objects: Objects, runs: Runs, e: CaseUploaded) -> None:
    """Raw uploads live only until their outcome is durable; the sweeper retries what fails here.

    A missing upload (`source_missing`) is deleted too: that is harmless and marks its row done.
    """
    await objects.delete_raw(e.object_key)
    await runs.mark_raw_deleted(e.image_id)
