"""Event handlers of the export service: a request becomes a job, a deleted case takes its exports.

Requests arrive as `export.requested` version 2 (a claim check naming the manifest the gateway stored) or,
from a gateway of the previous release during a rolling upgrade, version 1 (the content inline). The
workers that build the archives are in `casebook_export.worker`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from casebook_events import CaseDeleted, ExportReady, Topic
from casebook_export import core
from casebook_export.adapters import jobs as sql_jobs
from casebook_export.adapters.objects import ExportObjects
from casebook_export.ports import Jobs, Objects
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    """The handlers on PostgreSQL and the exports bucket (what the app factory wires)."""
    return handlers(jobs=sql_jobs, objects=ExportObjects(rt.storage.client, rt.storage.exports))


def handlers(*, jobs: Jobs, objects: Objects) -> dict[str, Handler]:
    """The handler of each consumed topic, over `jobs` within each delivery's transaction."""

    async def requested(d: Delivery) -> None:
        e: core.Requested = d.event
        req = core.request_of(e)
        deleted = await jobs.any_deleted(d.session, req.case_ids)
        reuse = None if deleted else await jobs.find_reusable(
            d.session, fingerprint=req.fingerprint, kind=req.kind, fresh_until=datetime.now(UTC) + core.REUSE_MARGIN)
        values = core.new_job(req, core.stored(e), deleted=deleted, reuse=reuse)
        if not await jobs.insert_job(d.session, values):
            return  # the same request again (under another event id): its job exists
        if reuse and values["status"] == core.READY:
            await d.emit(ExportReady(export_id=req.export_id, object_key=reuse["object_key"], size=reuse["size"],
                                     sha256=reuse["sha256"], expires_at=reuse["expires_at"]), key=req.export_id)
        if values["status"] != core.QUEUED and req.claim is not None:
            # Nothing will read the manifest: it goes once the job is recorded (the sweep retries a failure).
            d.after_commit.append(_remove_manifest(objects, req.export_id))

    async def deleted(d: Delivery) -> None:
        e: CaseDeleted = d.event
        await jobs.remember_deleted(d.session, e.case_id)
        # Archives and manifests go before the commit: a store that fails rolls the deletion back and the
        # event is retried; removing them twice is harmless. An archive's key starts with its job id, so a
        # build still running is removed by that prefix.
        for job_id, archive_key in await jobs.delete_jobs_of(d.session, e.case_id):
            for key in {f"{job_id}/", *([archive_key] if archive_key else [])}:
                await objects.remove(key)
            await objects.remove_manifest(job_id)

    return {Topic.EXPORT_REQUESTED: requested, Topic.CASE_DELETED: deleted}


def _remove_manifest(objects: Objects, export_id: str) -> Callable[[], Awaitable[None]]:
    async def remove() -> None:
        await objects.remove_manifest(export_id)

    return remove
