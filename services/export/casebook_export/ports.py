"""The ports of the export service: jobs as its handlers and workers use them, and the exports bucket.

`casebook_export.adapters.jobs` (PostgreSQL, each operation taking the transaction's session first) and
`adapters.objects.ExportObjects` (minio) implement them; `adapters.memory` holds the in-memory ones of the
service-test tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import ExportManifest, claims
from casebook_export.adapters.objects import StoredManifest


class Jobs(Protocol):
    """Export jobs and the cases deleted so far, within one transaction."""

    async def find_reusable(self, session: AsyncSession, *, fingerprint: str, kind: str,
                            fresh_until: datetime) -> dict[str, Any] | None: ...

    async def insert_job(self, session: AsyncSession, values: dict[str, Any]) -> bool: ...

    async def remember_deleted(self, session: AsyncSession, case_id: str) -> None: ...

    async def any_deleted(self, session: AsyncSession, case_ids: Sequence[str]) -> bool: ...

    async def delete_jobs_of(self, session: AsyncSession, case_id: str) -> list[tuple[str, str | None]]: ...


class Objects(Protocol):
    """The exports bucket: archives and manifests."""

    async def remove(self, key_or_prefix: str) -> int: ...

    async def remove_manifest(self, export_id: str) -> int: ...

    async def read_manifest(self, claim: claims.Claim, *, export_id: str) -> ExportManifest: ...


class WorkerJobs(Protocol):
    """The job operations of the build workers and the sweeps, within one transaction."""

    async def claim_next(self, session: AsyncSession, *, now: datetime, lease_s: int) -> dict[str, Any] | None: ...

    async def heartbeat(self, session: AsyncSession, export_id: str, *, progress: float,
                        lease_until: datetime) -> None: ...

    async def mark_ready(self, session: AsyncSession, export_id: str, *, object_key: str, size: int, sha256: str,
                         expires_at: datetime) -> bool: ...

    async def mark_failed(self, session: AsyncSession, export_id: str, *, final: bool, error: str) -> bool: ...

    async def expire_due(self, session: AsyncSession, *, now: datetime, limit: int = 100
                         ) -> list[tuple[str, str]]: ...

    async def archive_in_use(self, session: AsyncSession, object_key: str) -> bool: ...

    async def statuses(self, session: AsyncSession, export_ids: Sequence[str]) -> dict[str, str]: ...


class WorkerObjects(Objects, Protocol):
    """The exports bucket as the sweeps also list it."""

    async def manifests(self, limit: int = 1000) -> list[StoredManifest]: ...


Transaction = AbstractAsyncContextManager[Any]
