"""Export jobs and the exports bucket in memory: the ports for the service-test tier (no database, no store)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from casebook_events import ExportManifest, claims
from casebook_export import core
from casebook_export.adapters.objects import ManifestMissing
from casebook_platform.memory import MemoryStore


class MemoryJobs(MemoryStore):
    """Job rows (dicts with the table's defaults) and deleted case ids."""

    def __init__(self) -> None:
        super().__init__()
        jobs: dict[str, dict[str, Any]] = {}
        deleted: set[str] = set()
        self.state = {"jobs": jobs, "deleted": deleted}

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.state["jobs"]
        return found

    @property
    def deleted(self) -> set[str]:
        found: set[str] = self.state["deleted"]
        return found

    async def find_reusable(self, session: Any, *, fingerprint: str, kind: str, fresh_until: datetime
                            ) -> dict[str, Any] | None:
        for job in self.jobs.values():
            if (job["fingerprint"] == fingerprint and job["kind"] == kind and job["status"] == core.READY
                    and job["expires_at"] is not None and job["expires_at"] > fresh_until):
                return dict(job)
        return None

    async def insert_job(self, session: Any, values: dict[str, Any]) -> bool:
        if values["id"] in self.jobs:
            return False
        self.jobs[values["id"]] = {"progress": 0.0, "attempts": 0, "object_key": None, "size": None,
                                   "sha256": None, "expires_at": None, "error": None, **values}
        return True

    async def remember_deleted(self, session: Any, case_id: str) -> None:
        self.deleted.add(case_id)

    async def any_deleted(self, session: Any, case_ids: Sequence[str]) -> bool:
        return any(c in self.deleted for c in case_ids)

    async def delete_jobs_of(self, session: Any, case_id: str) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for job in self.jobs.values():
            if job["status"] != core.DELETED and any(c.get("case_id") == case_id
                                                     for c in job["request"].get("cases", [])):
                out.append((job["id"], job["object_key"]))
                job.update(status=core.DELETED, object_key=None, progress=0.0)
        return out


class MemoryObjects:
    """Objects by key (each key's versions as a list, as the versioned bucket keeps them)."""

    def __init__(self) -> None:
        self.objects: dict[str, list[bytes]] = {}

    def put(self, key: str, data: bytes) -> None:
        self.objects.setdefault(key, []).append(data)

    def put_manifest(self, manifest: ExportManifest) -> claims.Claim:
        data, claim = claims.encode_manifest(manifest)
        self.put(claim.key, data)
        return claim

    async def remove(self, key_or_prefix: str) -> int:
        keys = [k for k in self.objects if k.startswith(key_or_prefix)]
        n = sum(len(self.objects.pop(k)) for k in keys)
        return n

    async def remove_manifest(self, export_id: str) -> int:
        return await self.remove(claims.manifest_key(export_id))

    async def read_manifest(self, claim: claims.Claim, *, export_id: str) -> ExportManifest:
        versions = self.objects.get(claim.key)
        if not versions:
            raise ManifestMissing(claim.key)
        return claims.decode_manifest(versions[-1], claim, export_id=export_id)
