"""The export workers: claim a job, read its manifest, build the archive into the object store, repeat.

Also the sweeps: archives past their expiry, and manifests nothing will read again (the handlers and the
workers remove a manifest as its job finishes; this catches a removal that failed and a manifest whose
request was never recorded).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prometheus_client import Counter
from pydantic import BaseModel

from casebook_events import ExportFailed, ExportManifest, ExportReady, ExportRequested, claims
from casebook_export import archive, core
from casebook_export.adapters import jobs as sql_jobs
from casebook_export.adapters.objects import ExportObjects, ManifestMissing
from casebook_export.metrics import DomainMetrics
from casebook_export.ports import Transaction, WorkerJobs, WorkerObjects
from casebook_export.settings import Settings
from casebook_platform.service import Runtime

log = logging.getLogger(__name__)

Build = Callable[[ExportManifest, str, dict[str, float]], archive.UploadResult]
Emit = Callable[[Any, BaseModel, str], Awaitable[Any]]


@dataclass(frozen=True)
class WorkerDeps:
    """What a worker uses, passed explicitly (`deps_of` wires the real ones; the service tier, fakes)."""

    transaction: Callable[[], Transaction]  # a session in one transaction (the outbox writes in it too)
    jobs: WorkerJobs
    objects: WorkerObjects
    build: Build  # blocking: stream one archive into the exports bucket at a key, moving `progress["value"]`
    emit: Emit  # write an event into the outbox, in the given session
    nudge: Callable[[], None]  # the outbox relay: something is waiting
    settings: Settings
    built: Counter


def deps_of(rt: Runtime, domain: DomainMetrics) -> WorkerDeps:
    """The real dependencies: PostgreSQL, the exports bucket, the archive builder, the outbox."""
    settings = cast(Settings, rt.settings)

    async def emit(session: Any, event: BaseModel, key: str) -> Any:
        return await rt.emit(session, event, key=key)

    return WorkerDeps(transaction=rt.db.transaction, jobs=sql_jobs,
                      objects=ExportObjects(rt.storage.client, rt.storage.exports),
                      build=lambda manifest, key, progress: build_archive(rt, manifest, key, progress),
                      emit=emit, nudge=rt.relay.nudge, settings=settings, built=domain.built)


class FinalFailure(Exception):
    """A failure another attempt cannot fix; `reason` is the `export.failed` code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def manifest_of(deps: WorkerDeps, request: core.Requested) -> ExportManifest:
    """The content of a job: read from its stored manifest (version 2) or from the request itself (version 1).

    Raises:
        FinalFailure: the manifest is missing or is not the one the request names.
    """
    if isinstance(request, ExportRequested):
        return core.inline_manifest(request)
    req = core.request_of(request)
    assert req.claim is not None
    try:
        return await deps.objects.read_manifest(req.claim, export_id=req.export_id)
    except ManifestMissing as exc:
        raise FinalFailure("manifest_missing", "the export's manifest is no longer stored") from exc
    except claims.ClaimMismatch as exc:
        raise FinalFailure("manifest_invalid", "the export's manifest is not the one requested") from exc


def build_archive(rt: Runtime, manifest: ExportManifest, key: str, progress: dict[str, float]
                  ) -> archive.UploadResult:
    """Blocking: stream the archive into a multipart upload (never whole in memory or on disk)."""
    storage = rt.storage
    source = archive.MinioSource(storage.client, storage.images)
    cases = [core.to_model(c) for c in manifest.cases]

    def on_progress(done: int, total: int) -> None:
        progress["value"] = core.progress_fraction(done, total)

    if manifest.kind == "originals":
        chunks = archive.build_originals(cases[0], source=source, progress=on_progress)
        ctype = archive.ORIGINALS_CONTENT_TYPE
    else:
        chunks = archive.build_presentation(cases, source=source, progress=on_progress, title=manifest.title)
        ctype = archive.PRESENTATION_CONTENT_TYPE
    return archive.upload_stream(storage.client, storage.exports, key, chunks, content_type=ctype)


async def _build_with_heartbeat(deps: WorkerDeps, job_id: str, manifest: ExportManifest, key: str
                                ) -> archive.UploadResult:
    progress = {"value": 0.0}
    task = asyncio.create_task(asyncio.to_thread(deps.build, manifest, key, progress))
    while not task.done():
        await asyncio.wait([task], timeout=0.5)
        async with deps.transaction() as s:  # progress moves, and the lease says we are alive
            await deps.jobs.heartbeat(s, job_id, progress=progress["value"], lease_until=datetime.now(UTC)
                                      + timedelta(seconds=deps.settings.export_lease_seconds))
    return task.result()


async def run_job(deps: WorkerDeps, job: dict[str, Any]) -> str:
    """Build one claimed job; returns its new status (`ready`, `queued` for another attempt, `failed`,
    or `deleted` when its case went while it was built)."""
    request = core.parse_stored(job["request"])
    export_id: str = job["id"]
    key = core.object_key(export_id, request.kind, request.title)
    try:
        manifest = await manifest_of(deps, request)
        result = await _build_with_heartbeat(deps, export_id, manifest, key)
    except Exception as exc:  # noqa: BLE001 - every build failure is recorded on its job and logged
        return await _failed(deps, job, exc)
    expires_at = core.expires(datetime.now(UTC), deps.settings.export_ttl_seconds)
    async with deps.transaction() as s:
        if not await deps.jobs.mark_ready(s, export_id, object_key=key, size=result.size, sha256=result.sha256,
                                          expires_at=expires_at):
            # Its case was deleted while the archive was built: the archive goes too.
            await deps.objects.remove(key)
            return core.DELETED
        await deps.emit(s, ExportReady(export_id=export_id, object_key=key, size=result.size,
                                       sha256=result.sha256, expires_at=expires_at), export_id)
    deps.nudge()
    deps.built.labels(job["kind"]).inc()
    await _forget_manifest(deps, export_id)
    return core.READY


async def _failed(deps: WorkerDeps, job: dict[str, Any], exc: Exception) -> str:
    export_id: str = job["id"]
    attempt = job["attempts"] + 1
    final = isinstance(exc, FinalFailure) or attempt >= deps.settings.export_max_attempts
    log.warning("export %s failed (attempt %d%s)", export_id, attempt, ", for good" if final else "",
                exc_info=not isinstance(exc, FinalFailure))
    reason, message = ((exc.reason, exc.message) if isinstance(exc, FinalFailure)
                       else ("build_failed", "the archive could not be built"))
    async with deps.transaction() as s:
        if not await deps.jobs.mark_failed(s, export_id, final=final, error=f"{type(exc).__name__}: {exc}"):
            return core.DELETED
        if final:
            await deps.emit(s, ExportFailed(export_id=export_id, reason=reason, message=message), export_id)
    if not final:
        return core.QUEUED
    deps.nudge()
    await _forget_manifest(deps, export_id)
    return core.FAILED


async def _forget_manifest(deps: WorkerDeps, export_id: str) -> None:
    try:
        await deps.objects.remove_manifest(export_id)
    except Exception:
        log.warning("could not remove the manifest of export %s (the sweep retries)", export_id, exc_info=True)


async def work_forever(deps: WorkerDeps) -> None:
    """One export worker: claim, build, repeat; idle workers poll gently."""
    while True:
        try:
            async with deps.transaction() as s:
                job = await deps.jobs.claim_next(s, now=datetime.now(UTC),
                                                 lease_s=deps.settings.export_lease_seconds)
            if job is None:
                await asyncio.sleep(deps.settings.export_poll_seconds)
                continue
            await run_job(deps, job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("export worker error", exc_info=True)
            await asyncio.sleep(2)


async def expire_once(deps: WorkerDeps) -> None:
    """Delete archives past their expiry (an archive shared by reuse goes when its last job expires)."""
    async with deps.transaction() as s:
        expired = await deps.jobs.expire_due(s, now=datetime.now(UTC))
    for _, key in expired:
        async with deps.transaction() as s:
            in_use = await deps.jobs.archive_in_use(s, key)
        if not in_use:
            await deps.objects.remove(key)  # every version: an expired archive is served by no URL again


async def sweep_manifests_once(deps: WorkerDeps) -> int:
    """Remove manifests whose job is finished, or that have had no job for `manifest_orphan_seconds`."""
    stored = await deps.objects.manifests()
    async with deps.transaction() as s:
        status = await deps.jobs.statuses(s, [m.export_id for m in stored])
    now = datetime.now(UTC)
    removed = 0
    for m in stored:
        if core.manifest_disposable(status.get(m.export_id), (now - m.modified).total_seconds(),
                                    deps.settings.manifest_orphan_seconds):
            removed += await deps.objects.remove_manifest(m.export_id)
    return removed


async def expire_forever(deps: WorkerDeps) -> None:
    """Every minute: expire archives and sweep manifests."""
    while True:
        await asyncio.sleep(60)
        for sweep in (expire_once, sweep_manifests_once):
            try:
                await sweep(deps)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("%s failed", sweep.__name__, exc_info=True)
