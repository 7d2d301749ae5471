"""The ports of the export service: jobs as its handlers and workers use them, and the exports bucket.

`casebook_export.adapters.jobs` (PostgreSQL, each operation taking the transaction's session first) and
`adapters.objects.ExportObjects` (minio) implement them; `adapters.memory` holds the in-memory ones of the
service-test tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import ExportManifest, claims


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
