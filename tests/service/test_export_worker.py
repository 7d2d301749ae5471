"""Export's workers and sweeps on in-memory jobs and bucket: the real run_job / sweeps, fakes only behind the
ports (the archive builder is replaced by one that stores a small object, as the real one streams one)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from casebook_events import (
    CaseSnapshot,
    ExportCase,
    ExportCaseRef,
    ExportFailed,
    ExportManifest,
    ExportReady,
    ExportRequested,
    ExportRequestedV2,
    claims,
)
from casebook_export import archive, core, worker
from casebook_export.adapters.memory import MemoryJobs, MemoryObjects
from casebook_export.metrics import DomainMetrics
from casebook_export.settings import Settings
from casebook_platform.metrics import Metrics

pytestmark = pytest.mark.service

CASE = ExportCase(case_id="c_1", revision=3, case=CaseSnapshot(title="Osteoid osteoma"), author_name="Alice",
                  attribution="Case courtesy of Alice, Casebook, case c_1", licence="CC BY-NC-SA 4.0")


class World:
    """The ports of one worker, in memory, with what it emitted and built."""

    def __init__(self, *, fail_builds: int = 0) -> None:
        self.jobs, self.objects = MemoryJobs(), MemoryObjects()
        self.emitted: list[BaseModel] = []
        self.built: list[ExportManifest] = []
        self.fail_builds = fail_builds
        self.during_build: Any = None
        self.metrics = DomainMetrics(Metrics("export"))
        self.deps = worker.WorkerDeps(
            transaction=self._transaction, jobs=self.jobs, objects=self.objects, build=self._build,
            emit=self._emit, nudge=lambda: None, built=self.metrics.built,
            settings=Settings(auth_secret="x" * 32, deid_secret="y" * 32, export_max_attempts=2))

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        yield None

    async def _emit(self, session: Any, event: BaseModel, key: str) -> None:
        self.emitted.append(event)

    def _build(self, manifest: ExportManifest, key: str, progress: dict[str, float]) -> archive.UploadResult:
        if self.during_build is not None:
            self.during_build()
        if self.fail_builds > 0:
            self.fail_builds -= 1
            raise ConnectionResetError("the images bucket went away")
        self.built.append(manifest)
        data = f"archive of {manifest.export_id}".encode()
        self.objects.put(key, data)
        progress["value"] = 0.99
        return archive.UploadResult(size=len(data), sha256=hashlib.sha256(data).hexdigest())

    async def request(self, export_id: str = "x_1", *, v1: bool = False) -> None:
        event: core.Requested
        if v1:
            event = ExportRequested(export_id=export_id, kind="originals", requested_by="alice",
                                    title="Osteoid osteoma", fingerprint="f" * 64, cases=[CASE])
        else:
            claim = self.objects.put_manifest(ExportManifest(export_id=export_id, kind="originals",
                                                             title="Osteoid osteoma", cases=[CASE]))
            event = ExportRequestedV2(
                export_id=export_id, kind="originals", requested_by="alice", title="Osteoid osteoma", case_id="c_1",
                revision=3, cases=[ExportCaseRef(case_id="c_1", revision=3)], fingerprint="f" * 64,
                manifest_key=claim.key, manifest_sha256=claim.sha256, manifest_size=claim.size)
        req = core.request_of(event)
        await self.jobs.insert_job(None, core.new_job(req, core.stored(event), deleted=False, reuse=None))

    async def work(self) -> str:
        job = await self.jobs.claim_next(None, now=datetime.now(UTC), lease_s=60)
        assert job is not None
        return await worker.run_job(self.deps, job)


async def test_a_v2_job_is_built_from_its_manifest_which_then_goes() -> None:
    w = World()
    await w.request()
    assert await w.work() == core.READY
    [ready] = w.emitted
    assert isinstance(ready, ExportReady) and ready.object_key == "x_1/casebook-Osteoid-osteoma.zip"
    assert [m.cases[0].case.title for m in w.built] == ["Osteoid osteoma"]
    assert sorted(w.objects.objects) == ["x_1/casebook-Osteoid-osteoma.zip"]  # the manifest is gone
    job = w.jobs.jobs["x_1"]
    assert job["status"] == core.READY and job["size"] == ready.size and job["sha256"] == ready.sha256


async def test_a_v1_job_is_built_from_the_request_itself() -> None:
    w = World()
    await w.request("x_0", v1=True)
    assert await w.work() == core.READY
    assert w.built[0].cases == [CASE] and isinstance(w.emitted[0], ExportReady)


async def test_a_failed_build_is_tried_again_then_fails_for_good_and_drops_its_manifest() -> None:
    w = World(fail_builds=5)
    await w.request()
    assert await w.work() == core.QUEUED  # attempt 1 of 2
    assert w.emitted == [] and claims.manifest_key("x_1") in w.objects.objects
    assert await w.work() == core.FAILED
    [failed] = w.emitted
    assert isinstance(failed, ExportFailed) and failed.reason == "build_failed"
    assert w.objects.objects == {} and "ConnectionResetError" in w.jobs.jobs["x_1"]["error"]


async def test_a_manifest_that_is_not_the_one_named_fails_at_once() -> None:
    w = World()
    await w.request()
    w.objects.put(claims.manifest_key("x_1"), b'{"export_id": "x_1"}')  # a newer version, not the one named
    assert await w.work() == core.FAILED  # no second attempt: it would read the same object
    [failed] = w.emitted
    assert isinstance(failed, ExportFailed) and failed.reason == "manifest_invalid" and w.built == []


async def test_a_case_deleted_while_its_archive_is_built_takes_the_archive() -> None:
    w = World()
    await w.request()

    def delete_case() -> None:  # what the case.deleted handler does meanwhile
        w.jobs.jobs["x_1"].update(status=core.DELETED)

    w.during_build = delete_case
    assert await w.work() == core.DELETED
    assert w.emitted == [] and not any(k.startswith("x_1/") for k in w.objects.objects)


async def test_expiry_keeps_an_archive_another_ready_job_shares() -> None:
    w = World()
    past, future = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(days=1)
    for job_id, expires in (("x_a", past), ("x_b", future), ("x_c", past)):
        key = "x_a/shared.zip" if job_id != "x_c" else "x_c/own.zip"
        await w.jobs.insert_job(None, {"id": job_id, "requested_by": "alice", "kind": "originals", "title": "t",
                                       "fingerprint": "f" * 64, "request": {}, "status": core.READY,
                                       "object_key": key, "expires_at": expires})
    w.objects.put("x_a/shared.zip", b"shared")
    w.objects.put("x_c/own.zip", b"own")
    await worker.expire_once(w.deps)
    assert {j["id"]: j["status"] for j in w.jobs.jobs.values()} == {"x_a": "expired", "x_b": "ready",
                                                                     "x_c": "expired"}
    assert sorted(w.objects.objects) == ["x_a/shared.zip"]


async def test_the_sweep_removes_finished_and_long_orphaned_manifests_only() -> None:
    w = World()
    await w.request("x_q")  # queued: its manifest is still needed
    await w.request("x_r")
    w.jobs.jobs["x_r"]["status"] = core.READY  # its removal after the build failed
    old = datetime.now(UTC) - timedelta(days=3)
    w.objects.put(claims.manifest_key("x_orphan"), b"{}", modified=old)  # the request was never recorded
    w.objects.put(claims.manifest_key("x_new"), b"{}")  # the request may still be on its way
    assert await worker.sweep_manifests_once(w.deps) == 2
    assert sorted(w.objects.objects) == [claims.manifest_key("x_new"), claims.manifest_key("x_q")]
