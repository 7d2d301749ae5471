"""Database operations on export jobs and deleted cases (the only SQL of the export service)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_export import core
from casebook_export.adapters.db import deleted_cases, jobs


async def find_reusable(session: AsyncSession, *, fingerprint: str, kind: str, fresh_until: datetime
                        ) -> dict[str, Any] | None:
    """A ready job of the same content and kind whose archive outlives `fresh_until`."""
    row = (await session.execute(select(jobs).where(
        jobs.c.fingerprint == fingerprint, jobs.c.kind == kind, jobs.c.status == core.READY,
        jobs.c.expires_at > fresh_until).limit(1))).mappings().first()
    return dict(row) if row else None


async def insert_job(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Record a job; False when one with its id exists already (a request delivered twice)."""
    done = await session.execute(insert(jobs).values(**values).on_conflict_do_nothing().returning(jobs.c.id))
    return done.first() is not None


async def get_job(session: AsyncSession, export_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(jobs).where(jobs.c.id == export_id))).mappings().first()
    return dict(row) if row else None


async def statuses(session: AsyncSession, export_ids: Sequence[str]) -> dict[str, str]:
    """The status of each of these jobs that exists."""
    if not export_ids:
        return {}
    rows = (await session.execute(select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(list(export_ids))))).all()
    return {r.id: r.status for r in rows}


async def remember_deleted(session: AsyncSession, case_id: str) -> None:
    await session.execute(insert(deleted_cases).values(case_id=case_id).on_conflict_do_nothing())


async def any_deleted(session: AsyncSession, case_ids: Sequence[str]) -> bool:
    q = select(deleted_cases.c.case_id).where(deleted_cases.c.case_id.in_(list(case_ids))).limit(1)
    return (await session.execute(q)).first() is not None


async def delete_jobs_of(session: AsyncSession, case_id: str) -> list[tuple[str, str | None]]:
    """Mark every job whose archive holds the case as deleted; returns (job id, archive key) of each."""
    holds = jobs.c.request["cases"].contains([{"case_id": case_id}])
    rows = (await session.execute(select(jobs.c.id, jobs.c.object_key).where(holds, jobs.c.status != core.DELETED)
                                  .with_for_update())).all()
    if rows:
        await session.execute(jobs.update().where(jobs.c.id.in_([r.id for r in rows])).values(
            status=core.DELETED, object_key=None, progress=0.0))
    return [(r.id, r.object_key) for r in rows]


async def claim_next(session: AsyncSession, *, now: datetime, lease_s: int) -> dict[str, Any] | None:
    """Take one queued job (or one whose worker died: its lease ran out), leased to the caller."""
    row = (await session.execute(select(jobs).where(or_(
        jobs.c.status == core.QUEUED, and_(jobs.c.status == core.RUNNING, jobs.c.lease_until < now)))
        .order_by(jobs.c.created_at).limit(1).with_for_update(skip_locked=True))).mappings().first()
    if row is None:
        return None
    await session.execute(jobs.update().where(jobs.c.id == row["id"]).values(
        status=core.RUNNING, attempts=row["attempts"] + 1, lease_until=now + timedelta(seconds=lease_s),
        updated_at=now))
    return dict(row)


async def heartbeat(session: AsyncSession, export_id: str, *, progress: float, lease_until: datetime) -> None:
    await session.execute(jobs.update().where(jobs.c.id == export_id).values(progress=progress,
                                                                             lease_until=lease_until))


async def mark_ready(session: AsyncSession, export_id: str, *, object_key: str, size: int, sha256: str,
                     expires_at: datetime) -> bool:
    """The job's archive is stored; False when the job is no longer running (its case was deleted meanwhile)."""
    done = await session.execute(jobs.update().where(jobs.c.id == export_id, jobs.c.status == core.RUNNING)
                                 .values(status=core.READY, progress=1.0, object_key=object_key, size=size,
                                         sha256=sha256, expires_at=expires_at, updated_at=datetime.now(UTC))
                                 .returning(jobs.c.id))
    return done.first() is not None


async def mark_failed(session: AsyncSession, export_id: str, *, final: bool, error: str) -> bool:
    """Back to the queue for another attempt, or failed for good; False when the job is no longer running."""
    done = await session.execute(jobs.update().where(jobs.c.id == export_id, jobs.c.status == core.RUNNING)
                                 .values(status=core.FAILED if final else core.QUEUED, error=error[:1000],
                                         updated_at=datetime.now(UTC)).returning(jobs.c.id))
    return done.first() is not None


async def expire_due(session: AsyncSession, *, now: datetime, limit: int = 100) -> list[tuple[str, str]]:
    """Mark ready jobs past their expiry as expired; returns (job id, archive key) of each."""
    rows = (await session.execute(select(jobs.c.id, jobs.c.object_key).where(
        jobs.c.status == core.READY, jobs.c.expires_at < now).with_for_update(skip_locked=True)
        .limit(limit))).all()
    if rows:
        await session.execute(jobs.update().where(jobs.c.id.in_([r.id for r in rows])).values(status=core.EXPIRED))
    return [(r.id, r.object_key) for r in rows]


async def archive_in_use(session: AsyncSession, object_key: str) -> bool:
    """Whether a ready job still serves this archive (reuse shares one archive between jobs)."""
    q = select(jobs.c.id).where(jobs.c.object_key == object_key, jobs.c.status == core.READY).limit(1)
    return (await session.execute(q)).first() is not None
