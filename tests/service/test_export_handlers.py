"""Export's handlers on the in-memory broker: requests of both versions become jobs, reuse, deletion, manifests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from service_tier import running

from casebook_events import (
    CaseDeleted,
    CaseSnapshot,
    ExportCase,
    ExportCaseRef,
    ExportImage,
    ExportManifest,
    ExportReady,
    ExportRequested,
    ExportRequestedV2,
    ExportSeries,
    ExportStudy,
    Topic,
    claims,
)
from casebook_export import core, worker
from casebook_export.adapters.memory import MemoryJobs, MemoryObjects
from casebook_export.handlers import handlers

pytestmark = pytest.mark.service

SNAP = CaseSnapshot(title="Osteoid osteoma", diagnosis="Osteoid osteoma", discussion="Classic nidus.")


def case(case_id: str = "c_1", revision: int = 3) -> ExportCase:
    return ExportCase(case_id=case_id, revision=revision, case=SNAP, author_name="Alice",
                      attribution=f"Case courtesy of Alice, Casebook, case {case_id}", licence="CC BY-NC-SA 4.0",
                      studies=[ExportStudy(position=1, modality="CT", series=[ExportSeries(position=1, images=[
                          ExportImage(image_id="i_1", object_key=f"{case_id}/i_1", media_type="application/dicom",
                                      size=1000)])])])


def v2(objects: MemoryObjects, export_id: str = "x_1", cases: tuple[ExportCase, ...] = (), fingerprint: str = "f" * 64,
       ) -> ExportRequestedV2:
    cases = cases or (case(),)
    claim = objects.put_manifest(ExportManifest(export_id=export_id, kind="originals", title="Osteoid osteoma",
                                                cases=list(cases)))
    return ExportRequestedV2(export_id=export_id, kind="originals", requested_by="alice", title="Osteoid osteoma",
                             case_id=cases[0].case_id, revision=cases[0].revision,
                             cases=[ExportCaseRef(case_id=c.case_id, revision=c.revision) for c in cases],
                             fingerprint=fingerprint, manifest_key=claim.key, manifest_sha256=claim.sha256,
                             manifest_size=claim.size)


def v1(export_id: str = "x_0", fingerprint: str = "e" * 64) -> ExportRequested:
    return ExportRequested(export_id=export_id, kind="originals", requested_by="alice", title="Osteoid osteoma",
                           fingerprint=fingerprint, cases=[case()])


def _run(jobs: MemoryJobs, objects: MemoryObjects):  # type: ignore[no-untyped-def]
    return running("export", handlers(jobs=jobs, objects=objects), stores=[jobs], watch=[Topic.EXPORT_READY])


async def test_a_v2_request_queues_a_job_that_names_its_manifest() -> None:
    jobs, objects = MemoryJobs(), MemoryObjects()
    async with _run(jobs, objects) as svc:
        sent = await svc.send(v2(objects))
        await svc.redeliver(sent)  # a redelivery records nothing twice
        await svc.send(v2(objects))  # nor does the same request under another event id
    [job] = jobs.jobs.values()
    assert job["status"] == core.QUEUED and job["title"] == "Osteoid osteoma"
    stored = core.parse_stored(job["request"])
    assert isinstance(stored, ExportRequestedV2) and stored.manifest_key == claims.manifest_key("x_1")
    assert claims.manifest_key("x_1") in objects.objects  # kept for the worker to read
    assert svc.events(Topic.EXPORT_READY) == []


async def test_a_v1_request_from_an_older_gateway_is_still_accepted() -> None:
    jobs, objects = MemoryJobs(), MemoryObjects()
    async with _run(jobs, objects) as svc:
        await svc.send(v1())
    job = jobs.jobs["x_0"]
    assert job["status"] == core.QUEUED
    stored = core.parse_stored(job["request"])
    assert isinstance(stored, ExportRequested) and stored.cases[0].case_id == "c_1"
    assert svc.dead_letters(Topic.EXPORT_REQUESTED) == []


async def test_an_unchanged_export_reuses_the_archive_and_drops_its_manifest() -> None:
    jobs, objects = MemoryJobs(), MemoryObjects()
    expires = datetime.now(UTC) + timedelta(days=3)
    await jobs.insert_job(None, {"id": "x_old", "requested_by": "bob", "kind": "originals", "title": "t",
                                 "fingerprint": "f" * 64, "request": {"cases": [{"case_id": "c_1"}]},
                                 "status": core.READY, "object_key": "x_old/case.zip", "size": 5, "sha256": "a" * 64,
                                 "expires_at": expires})
    async with _run(jobs, objects) as svc:
        await svc.send(v2(objects, "x_2"))
        [ready] = svc.events(Topic.EXPORT_READY)
    assert isinstance(ready, ExportReady) and ready.export_id == "x_2" and ready.object_key == "x_old/case.zip"
    assert jobs.jobs["x_2"]["status"] == core.READY and jobs.jobs["x_2"]["expires_at"] == expires
    assert claims.manifest_key("x_2") not in objects.objects


async def test_an_archive_about_to_expire_is_not_reused() -> None:
    jobs, objects = MemoryJobs(), MemoryObjects()
    await jobs.insert_job(None, {"id": "x_old", "requested_by": "bob", "kind": "originals", "title": "t",
                                 "fingerprint": "f" * 64, "request": {"cases": []}, "status": core.READY,
                                 "object_key": "x_old/case.zip", "size": 5, "sha256": "a" * 64,
                                 "expires_at": datetime.now(UTC) + timedelta(minutes=2)})
    async with _run(jobs, objects) as svc:
        await svc.send(v2(objects, "x_2"))
        assert svc.events(Topic.EXPORT_READY) == []
    assert jobs.jobs["x_2"]["status"] == core.QUEUED


async def test_a_request_arriving_after_its_case_was_deleted_is_never_built() -> None:
    jobs, objects = MemoryJobs(), MemoryObjects()
    async with _run(jobs, objects) as svc:
        await svc.send(CaseDeleted(case_id="c_1", owner_id="alice", deleted_by="alice"))
        await svc.send(v2(objects, "x_3"))
    assert jobs.jobs["x_3"]["status"] == core.DELETED
    assert objects.objects == {}  # its manifest (case text) is gone too


async def test_deleting_a_case_takes_its_jobs_archives_and_manifests_but_no_other() -> None:
    jobs, objects = MemoryJobs(), MemoryObjects()
    async with _run(jobs, objects) as svc:
        await svc.send(v2(objects, "x_4"))
        await svc.send(v2(objects, "x_5", cases=(case("c_2"), case("c_1")), fingerprint="1" * 64))  # a playlist
        await svc.send(v2(objects, "x_6", cases=(case("c_2"),), fingerprint="2" * 64))
        objects.put("x_4/partial.zip", b"a build under way")
        await svc.send(CaseDeleted(case_id="c_1", owner_id="alice", deleted_by="alice"))
    assert {k: j["status"] for k, j in jobs.jobs.items()} == {"x_4": "deleted", "x_5": "deleted", "x_6": "queued"}
    assert sorted(objects.objects) == [claims.manifest_key("x_6")]


async def test_a_store_that_fails_rolls_the_deletion_back_and_the_event_is_retried() -> None:
    jobs, objects = MemoryJobs(), MemoryObjects()
    calls = {"n": 0}
    remove = objects.remove

    async def flaky(key: str) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionResetError("object store unreachable")
        return await remove(key)

    objects.remove = flaky  # type: ignore[method-assign]
    async with _run(jobs, objects) as svc:
        await svc.send(v2(objects, "x_7"))
        await svc.send(CaseDeleted(case_id="c_1", owner_id="alice", deleted_by="alice"))
        assert svc.dead_letters(Topic.CASE_DELETED) == []
    assert jobs.jobs["x_7"]["status"] == core.DELETED and objects.objects == {} and calls["n"] >= 2


async def test_a_request_that_is_not_an_event_goes_to_the_dead_letter_topic() -> None:
    jobs, objects = MemoryJobs(), MemoryObjects()
    async with _run(jobs, objects) as svc:
        await svc.send_raw(Topic.EXPORT_REQUESTED, b'{"not": "an envelope"}')
        assert len(svc.dead_letters(Topic.EXPORT_REQUESTED)) == 1
    assert jobs.jobs == {}


def _deps(objects: MemoryObjects) -> worker.WorkerDeps:
    return cast(worker.WorkerDeps, type("Deps", (), {"objects": objects})())  # manifest_of reads objects only


async def test_the_worker_reads_the_manifest_a_v2_request_names_and_refuses_another() -> None:
    objects = MemoryObjects()
    request = v2(objects, "x_8")
    manifest = await worker.manifest_of(_deps(objects), request)
    assert manifest.export_id == "x_8" and manifest.cases[0].case.title == "Osteoid osteoma"
    inline = await worker.manifest_of(_deps(objects), v1())
    assert inline.cases == v1().cases  # a v1 request carries its manifest

    objects.put(request.manifest_key, b'{"tampered": true}')  # a newer version that is not the one named
    with pytest.raises(worker.FinalFailure) as bad:
        await worker.manifest_of(_deps(objects), request)
    assert bad.value.reason == "manifest_invalid"
    await objects.remove_manifest("x_8")
    with pytest.raises(worker.FinalFailure) as gone:
        await worker.manifest_of(_deps(objects), request)
    assert gone.value.reason == "manifest_missing"


def test_manifests_go_when_their_job_is_finished_or_long_orphaned() -> None:
    grace = 3600.0
    for status in ("ready", "failed", "expired", "deleted"):
        assert core.manifest_disposable(status, 1.0, grace)
    for status in ("queued", "running"):
        assert not core.manifest_disposable(status, 10 * grace, grace)
    assert not core.manifest_disposable(None, grace / 2, grace)  # its request may still be on its way
    assert core.manifest_disposable(None, grace * 2, grace)


def test_a_manifest_of_another_export_is_refused() -> None:
    data, claim = claims.encode_manifest(ExportManifest(export_id="x_9", kind="originals", title="t", cases=[]))
    assert claims.decode_manifest(data, claim, export_id="x_9").export_id == "x_9"
    with pytest.raises(claims.ClaimMismatch):
        claims.decode_manifest(data, claim, export_id="x_10")
    with pytest.raises(claims.ClaimMismatch):
        claims.decode_manifest(data + b" ", claim, export_id="x_9")
    assert claims.export_id_of(claim.key) == "x_9" and claims.export_id_of("x_9/case.zip") is None


