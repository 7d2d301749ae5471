"""Deleting a case's exports: the jobs that hold it, and every stored version of their archives."""

from __future__ import annotations

import asyncio
from typing import Any

from minio.deleteobjects import DeleteObject
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_export.adapters.db import deleted_cases, jobs

DELETED = "deleted"


async def remember_deleted(session: AsyncSession, case_id: str) -> None:
    await session.execute(insert(deleted_cases).values(case_id=case_id).on_conflict_do_nothing())


async def any_deleted(session: AsyncSession, case_ids: list[str]) -> bool:
    q = select(deleted_cases.c.case_id).where(deleted_cases.c.case_id.in_(case_ids)).limit(1)
    return (await session.execute(q)).first() is not None


async def delete_jobs_of(session: AsyncSession, case_id: str) -> list[str]:
    """Mark every job whose archive holds the case as deleted; returns the archive keys to remove."""
    holds = jobs.c.request["cases"].contains([{"case_id": case_id}])
    rows = (await session.execute(select(jobs.c.id, jobs.c.object_key).where(holds, jobs.c.status != DELETED)
                                  .with_for_update())).all()
    if rows:
        await session.execute(jobs.update().where(jobs.c.id.in_([r.id for r in rows])).values(
            status=DELETED, object_key=None, progress=0.0))
    # An archive's key also starts with its job id: a build still running is removed by that prefix.
    return sorted({r.object_key for r in rows if r.object_key} | {f"{r.id}/" for r in rows})


async def remove_every_version(client: Any, bucket: str, key_or_prefix: str) -> int:
    """Delete every version (and delete marker) of the objects at `key_or_prefix`, so no URL serves them again.

    Raises:
        RuntimeError: the store refused to delete one of them (the caller retries).
    """
    def run() -> int:
        objs = [DeleteObject(o.object_name, o.version_id) for o in
                client.list_objects(bucket, prefix=key_or_prefix, recursive=True, include_version=True)]
        if objs:
            for err in client.remove_objects(bucket, objs):
                raise RuntimeError(f"could not delete {err.name}: {err.message}")
        return len(objs)

    return await asyncio.to_thread(run)
