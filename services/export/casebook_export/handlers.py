"""The export service: requests become jobs; workers build archives straight into the object store."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert

from casebook_events import CaseDeleted, ExportFailed, ExportReady, ExportRequested, Topic
from casebook_export import archive, core
from casebook_export.adapters import deletions
from casebook_export.adapters.db import jobs
from casebook_export.settings import Settings
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime

log = logging.getLogger(__name__)


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    async def requested(d: Delivery) -> None:
        e: ExportRequested = d.event
        now = datetime.now(UTC)
        # An unchanged case that was exported recently reuses the stored archive.
        reuse = (await d.session.execute(select(jobs).where(
            jobs.c.fingerprint == e.fingerprint, jobs.c.kind == e.kind, jobs.c.status == "ready",
            jobs.c.expires_at > now + timedelta(minutes=10)).limit(1))).mappings().first()
        values: dict[str, Any] = {"id": e.export_id, "requested_by": e.requested_by, "kind": e.kind,
                                  "title": e.title[:300], "fingerprint": e.fingerprint,
                                  "request": e.model_dump(mode="json"), "status": "queued"}
        if await deletions.any_deleted(d.session, [c.case_id for c in e.cases]):
            values.update(status=deletions.DELETED)  # a case of it was deleted first: never built
            reuse = None
        if reuse:
            values.update(status="ready", progress=1.0, object_key=reuse["object_key"], size=reuse["size"],
                          sha256=reuse["sha256"], expires_at=reuse["expires_at"])
            await d.emit(ExportReady(export_id=e.export_id, object_key=reuse["object_key"], size=reuse["size"],
                                     sha256=reuse["sha256"], expires_at=reuse["expires_at"]), key=e.export_id)
        await d.session.execute(insert(jobs).values(**values).on_conflict_do_nothing())

    async def deleted(d: Delivery) -> None:
        e: CaseDeleted = d.event
        await deletions.remember_deleted(d.session, e.case_id)
        # The archives go before the commit: a store that fails rolls the deletion back and the event is
        # retried; removing them twice is harmless.
        for key in await deletions.delete_jobs_of(d.session, e.case_id):
            await deletions.remove_every_version(rt.storage.client, rt.storage.exports, key)

    return {Topic.EXPORT_REQUESTED: requested, Topic.CASE_DELETED: deleted}


async def _claim(rt: Runtime, lease_s: int) -> dict[str, Any] | None:
    """Take one queued job (or one whose worker died: its lease ran out)."""
    now = datetime.now(UTC)
    async with rt.db.transaction() as s:
        row = (await s.execute(select(jobs).where(or_(
            jobs.c.status == "queued", and_(jobs.c.status == "running", jobs.c.lease_until < now)))
            .order_by(jobs.c.created_at).limit(1).with_for_update(skip_locked=True))).mappings().first()
        if row is None:
            return None
        await s.execute(jobs.update().where(jobs.c.id == row["id"]).values(
            status="running", attempts=row["attempts"] + 1, lease_until=now + timedelta(seconds=lease_s),
            updated_at=now))
        return dict(row)


def _build(rt: Runtime, req: ExportRequested, key: str, progress: dict[str, float]) -> archive.UploadResult:
    """Blocking: stream the archive into a multipart upload (never whole in memory or on disk)."""
    source = archive.MinioSource(rt.storage.client, rt.storage.images)
    cases = [core.to_model(c) for c in req.cases]

    def on_progress(done: int, total: int) -> None:
        progress["value"] = core.progress_fraction(done, total)

    if req.kind == "originals":
        chunks = archive.build_originals(cases[0], source=source, progress=on_progress)
        ctype = "application/zip"
    else:
        chunks = archive.build_presentation(cases, source=source, progress=on_progress, title=req.title)
        ctype = "text/html; charset=utf-8"
    return archive.upload_stream(rt.storage.client, rt.storage.exports, key, chunks, content_type=ctype)


async def run_job(rt: Runtime, job: dict[str, Any], built: Any) -> None:
    settings: Settings = rt.settings  # type: ignore[assignment]
    req = ExportRequested.model_validate(job["request"])
    key = core.object_key(req)
    progress = {"value": 0.0}
    task = asyncio.create_task(asyncio.to_thread(_build, rt, req, key, progress))
    while not task.done():
        await asyncio.wait([task], timeout=0.5)
        async with rt.db.transaction() as s:  # progress moves, and the lease says we are alive
            await s.execute(jobs.update().where(jobs.c.id == job["id"]).values(
                progress=progress["value"],
                lease_until=datetime.now(UTC) + timedelta(seconds=settings.export_lease_seconds)))
    try:
        result = task.result()
    except Exception as exc:
        log.warning("export %s failed (attempt %d)", job["id"], job["attempts"] + 1, exc_info=True)
        final = job["attempts"] + 1 >= settings.export_max_attempts
        async with rt.db.transaction() as s:
            await s.execute(jobs.update().where(jobs.c.id == job["id"]).values(
                status="failed" if final else "queued", error=f"{type(exc).__name__}: {exc}"[:1000]))
            if final:
                await rt.emit(s, ExportFailed(export_id=job["id"], reason="build_failed",
                                              message="the archive could not be built"), key=job["id"])
        return
    expires_at = core.expires(datetime.now(UTC), settings.export_ttl_seconds)
    async with rt.db.transaction() as s:
        done = await s.execute(jobs.update().where(jobs.c.id == job["id"], jobs.c.status == "running").values(
            status="ready", progress=1.0, object_key=key, size=result.size, sha256=result.sha256,
            expires_at=expires_at, updated_at=datetime.now(UTC)))
        if done.rowcount == 0:  # type: ignore[attr-defined]
            # Its case was deleted while the archive was built: the archive goes too.
            await deletions.remove_every_version(rt.storage.client, rt.storage.exports, key)
            return
        await rt.emit(s, ExportReady(export_id=job["id"], object_key=key, size=result.size, sha256=result.sha256,
                                     expires_at=expires_at), key=job["id"])
    rt.relay.nudge()
    built.labels(job["kind"]).inc()


async def work_forever(rt: Runtime) -> None:
    """One export worker: claim, build, repeat; idle workers poll gently."""
    settings: Settings = rt.settings  # type: ignore[assignment]
    built = rt.domain.built  # type: ignore[attr-defined]
    while True:
        try:
            job = await _claim(rt, settings.export_lease_seconds)
            if job is None:
                await asyncio.sleep(settings.export_poll_seconds)
                continue
            await run_job(rt, job, built)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("export worker error", exc_info=True)
            await asyncio.sleep(2)


async def expire_forever(rt: Runtime) -> None:
    """Delete archives past their expiry (an archive shared by reuse goes when its last job expires)."""
    while True:
        await asyncio.sleep(60)
        try:
            now = datetime.now(UTC)
            async with rt.db.transaction() as s:
                rows = (await s.execute(select(jobs.c.id, jobs.c.object_key).where(
                    jobs.c.status == "ready", jobs.c.expires_at < now).with_for_update(skip_locked=True)
                    .limit(100))).all()
                for r in rows:
                    await s.execute(jobs.update().where(jobs.c.id == r.id).values(status="expired"))
            for r in rows:
                async with rt.db.sessions() as s:
                    still = (await s.execute(select(jobs.c.id).where(
                        jobs.c.object_key == r.object_key, jobs.c.status == "ready").limit(1))).first()
                if still is None:
                    await rt.storage.delete(rt.storage.exports, r.object_key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("expiry sweep failed", exc_info=True)
