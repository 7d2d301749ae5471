"""Export jobs and the exports bucket in memory: the ports for the service-test tier (no database, no store)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from casebook_events import ExportManifest, claims
from casebook_export import core
from casebook_export.adapters.objects import ManifestMissing, StoredManifest
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


    # -- the workers' and sweeps' operations (`WorkerJobs`) --
    async def claim_next(self, session: Any, *, now: datetime, lease_s: int) -> dict[str, Any] | None:
        for job in self.jobs.values():
            if job["status"] == core.QUEUED or (job["status"] == core.RUNNING and job.get("lease_until")
                                                and job["lease_until"] < now):
                found = dict(job)
                job.update(status=core.RUNNING, attempts=job["attempts"] + 1,
                           lease_until=now + timedelta(seconds=lease_s))
                return found
        return None

    async def heartbeat(self, session: Any, export_id: str, *, progress: float, lease_until: datetime) -> None:
        self.jobs[export_id].update(progress=progress, lease_until=lease_until)

    async def mark_ready(self, session: Any, export_id: str, *, object_key: str, size: int, sha256: str,
                         expires_at: datetime) -> bool:
        job = self.jobs[export_id]
        if job["status"] != core.RUNNING:
            return False
        job.update(status=core.READY, progress=1.0, object_key=object_key, size=size, sha256=sha256,
                   expires_at=expires_at)
        return True

    async def mark_failed(self, session: Any, export_id: str, *, final: bool, error: str) -> bool:
        job = self.jobs[export_id]
        if job["status"] != core.RUNNING:
            return False
        job.update(status=core.FAILED if final else core.QUEUED, error=error[:1000])
        return True

    async def expire_due(self, session: Any, *, now: datetime, limit: int = 100) -> list[tuple[str, str]]:
        due = [j for j in self.jobs.values() if j["status"] == core.READY and j["expires_at"] < now][:limit]
        for j in due:
            j["status"] = core.EXPIRED
        return [(j["id"], j["object_key"]) for j in due]

    async def archive_in_use(self, session: Any, object_key: str) -> bool:
        return any(j["object_key"] == object_key and j["status"] == core.READY for j in self.jobs.values())

    async def statuses(self, session: Any, export_ids: Sequence[str]) -> dict[str, str]:
        return {i: self.jobs[i]["status"] for i in export_ids if i in self.jobs}


class MemoryObjects:
    """Objects by key (each key's versions as a list, as the versioned bucket keeps them)."""

    def __init__(self) -> None:
        self.objects: dict[str, list[bytes]] = {}
        self.modified: dict[str, datetime] = {}

    def put(self, key: str, data: bytes, *, modified: datetime | None = None) -> None:
        self.objects.setdefault(key, []).append(data)
        self.modified[key] = modified or datetime.now(UTC)

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

    async def manifests(self, limit: int = 1000) -> list[StoredManifest]:
        out = [StoredManifest(key=k, export_id=e, modified=self.modified[k]) for k in sorted(self.objects)
               if (e := claims.export_id_of(k)) is not None]
        return out[:limit]
