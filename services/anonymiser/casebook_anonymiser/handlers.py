"""The anonymiser's one handler: raw upload in, de-identified object or quarantine out (fail closed).

Whatever happens, nothing is left behind: the outcome (ready or quarantined with a reason) is recorded
with its event, and the raw upload is deleted once that is durable (the sweeper finishes what a crash
interrupted). A dependency that is down is waited for by the consumer, never turned into an outcome.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path

from minio.error import S3Error

from casebook_anonymiser import core
from casebook_anonymiser.adapters import runs
from casebook_anonymiser.deid import CaseKey
from casebook_anonymiser.deid.result import PROCESSING_ERROR, TOO_MANY_IDENTIFIERS
from casebook_anonymiser.metrics import DomainMetrics
from casebook_anonymiser.settings import Settings
from casebook_anonymiser.worker import PROCESSING_TIMEOUT, ByteBudget, DeidPool, Outcome, TaskTimeout
from casebook_events import CaseAnonymised, CaseQuarantined, CaseUploaded, Topic
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime

log = logging.getLogger(__name__)


def build_handlers(rt: Runtime, *, pool: DeidPool, domain: DomainMetrics) -> dict[str, Handler]:
    settings: Settings = rt.settings  # type: ignore[assignment]
    budget = ByteBudget(settings.deid_memory_budget_bytes)

    async def uploaded(d: Delivery) -> None:
        e: CaseUploaded = d.event
        with tempfile.TemporaryDirectory(prefix="deid-", dir=settings.tmp_dir or None) as tmp:
            src, dst = Path(tmp) / "in", Path(tmp) / "out"
            try:
                await rt.storage.get_file(rt.storage.incoming, e.object_key, src)
            except S3Error as exc:
                if exc.code not in ("NoSuchKey", "NoSuchObject"):
                    raise
                await _finish(d, e, None, ["source_missing"])  # the case was deleted before we got to it
                return
            key = core.case_key(settings.deid_secret, settings.deid_key_id, e.case_id)
            started = time.perf_counter()
            async with budget.hold(e.size):
                result = await _deidentify(pool, src, dst, key, ocr=settings.deid_ocr,
                                           crash_limit=settings.deid_crash_limit)
            domain.seconds.observe(time.perf_counter() - started)
            digests = core.digests_of(e.case_id, result.identifiers)
            if result.status == "ready" and not core.digests_fit(digests):
                result = Outcome("quarantined", [TOO_MANY_IDENTIFIERS], result.media_type, info=result.info)
            report = core.report_document(result.info, [] if result.status == "ready" else result.reasons)
            await rt.storage.put_bytes(rt.storage.images, core.report_key(e.case_id, e.image_id),
                                       json.dumps(report).encode(), "application/json")
            if result.status == "ready" and result.size is not None and result.sha256 is not None:
                out_key = f"{e.case_id}/{e.image_id}"
                await rt.storage.put_file(rt.storage.images, out_key, dst, result.media_type)
                await d.emit(CaseAnonymised(
                    case_id=e.case_id, image_id=e.image_id, study_id=e.study_id, object_key=out_key,
                    media_type=result.media_type, size=result.size, sha256=result.sha256,
                    identifier_digests=digests,
                    **core.anonymised_fields(result.info)), key=e.case_id)
                await _finish(d, e, result, [], out_key=out_key, size_out=result.size)
                domain.deidentified.inc()
            else:
                await _finish(d, e, result, result.reasons or ["processing_error"])
        d.after_commit.append(partial(_remove_raw, rt, e))

    async def _finish(d: Delivery, e: CaseUploaded, result: Outcome | None, reasons: list[str], *,
                      out_key: str | None = None, size_out: int | None = None) -> None:
        if reasons:
            await d.emit(CaseQuarantined(case_id=e.case_id, image_id=e.image_id, study_id=e.study_id,
                                         reasons=reasons), key=e.case_id)
            for r in reasons:
                domain.quarantined.labels(r).inc()
        actions = list(result.info.get("actions", [])) if result else []
        await runs.record(d.session, image_id=e.image_id, case_id=e.case_id,
                          status="quarantined" if reasons else "ready", reasons=reasons, actions=actions,
                          incoming_key=e.object_key, object_key=out_key, size_in=e.size, size_out=size_out,
                          key_id=settings.deid_key_id)

    return {Topic.CASE_UPLOADED: uploaded}


async def _deidentify(pool: DeidPool, src: Path, dst: Path, key: CaseKey, *, ocr: bool, crash_limit: int) -> Outcome:
    """Run the task; a task past its time limit, or one whose worker keeps dying, ends quarantined.

    A dead worker may have been another task's (they share the pool), so a crash is retried a few times
    before it is held against this upload.
    """
    for attempt in range(1, crash_limit + 1):
        try:
            return await pool.run(src, dst, key, ocr)
        except TaskTimeout:
            return Outcome("quarantined", [PROCESSING_TIMEOUT], "application/octet-stream")
        except BrokenProcessPool:
            log.warning("a de-identification worker died (attempt %d/%d)", attempt, crash_limit)
    return Outcome("quarantined", [PROCESSING_ERROR], "application/octet-stream")


async def _remove_raw(rt: Runtime, e: CaseUploaded) -> None:
    """Raw uploads live only until their outcome is durable; the sweeper retries what fails here."""
    await rt.storage.delete(rt.storage.incoming, e.object_key)
    await runs.mark_raw_deleted(rt.db, e.image_id)
