"""The anonymiser's handler on the in-memory broker, de-identifying real DICOM with the real core in this process.

Outcomes (ready, quarantined, source missing, timeout, dying workers), what is stored and announced, when
the raw upload goes, redelivery, an unreachable object store, and the sweep of raw uploads left behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from service_tier import Running, running

from casebook_anonymiser.adapters.memory import InProcessDeidentifier, MemoryObjects, MemoryRuns
from casebook_anonymiser.deid import CaseKey
from casebook_anonymiser.handlers import handlers
from casebook_anonymiser.metrics import DomainMetrics
from casebook_anonymiser.ports import Deidentifier, Run
from casebook_anonymiser.settings import Settings
from casebook_anonymiser.sweeper import sweep_once
from casebook_anonymiser.worker import Outcome, TaskTimeout
from casebook_events import CaseAnonymised, CaseQuarantined, CaseUploaded, Envelope, Topic
from casebook_events.limits import MAX_IDENTIFIER_DIGESTS
from casebook_platform.identifiers import find_digested
from casebook_platform.memory import MemoryConsumer
from casebook_platform.metrics import Metrics

pytestmark = pytest.mark.service

SETTINGS = Settings(deid_secret="service-tier-secret-0123456789", deid_key_id="k-test", deid_crash_limit=3,
                    deid_ocr=True)


def ct_small() -> bytes:
    return Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()


def burned_in_ct() -> bytes:
    """CT_small declaring burned-in annotation, which the core refuses."""
    ds = pydicom.dcmread(io.BytesIO(ct_small()))
    ds.BurnedInAnnotation = "YES"
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


@dataclass
class Anonymiser:
    svc: Running
    objects: MemoryObjects
    runs: MemoryRuns
    metrics: Metrics
    domain: DomainMetrics

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    async def upload(self, image_id: str, data: bytes | None) -> Envelope:
        """Announce an upload as the gateway does, its raw object stored first (None: already gone)."""
        key = f"c_1/{image_id}.raw"
        if data is not None:
            self.objects.incoming[key] = data
        event = CaseUploaded(case_id="c_1", image_id=image_id, study_id="s_1", owner_id="alice", object_key=key,
                             content_type="application/dicom", size=len(data or b""),
                             sha256=hashlib.sha256(data or b"").hexdigest())
        async with asyncio.timeout(60):  # a failure taken for an outage is retried for ever: fail instead
            sent: Envelope = await self.svc.send(event)
        return sent

    def anonymised(self) -> list[CaseAnonymised]:
        found: list[CaseAnonymised] = self.svc.events(Topic.CASE_ANONYMISED)
        return found

    def quarantined(self) -> list[CaseQuarantined]:
        found: list[CaseQuarantined] = self.svc.events(Topic.CASE_QUARANTINED)
        return found

    def report(self, image_id: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.objects.images[f"c_1/{image_id}.deid-report.json"])
        return found


@asynccontextmanager
async def anonymiser(deidentifier: Deidentifier | None = None, objects: MemoryObjects | None = None,
                     runs: MemoryRuns | None = None) -> AsyncIterator[Anonymiser]:
    objects, runs, metrics = objects or MemoryObjects(), runs or MemoryRuns(), Metrics("anonymiser")
    domain = DomainMetrics(metrics)
    wired = handlers(objects=objects, runs=runs, deidentifier=deidentifier or InProcessDeidentifier(),
                     settings=SETTINGS, domain=domain)
    async with running("anonymiser", wired, stores=[runs],
                       watch=[Topic.CASE_ANONYMISED, Topic.CASE_QUARANTINED]) as svc:
        yield Anonymiser(svc, objects, runs, metrics, domain)


class CommitWatch(MemoryObjects):
    """Notes, at each raw deletion, which deliveries were committed and which events relayed by then."""

    def __init__(self) -> None:
        super().__init__()
        self.consumer: MemoryConsumer | None = None
        self.at_delete: list[tuple[set[str], list[str]]] = []

    async def delete_raw(self, key: str) -> None:
        assert self.consumer is not None
        self.at_delete.append((set(self.consumer.processed), [e.type for e in self.consumer.published]))
        await super().delete_raw(key)


class TimesOut:
    """A de-identifier whose task always outlives its time limit (as `DeidPool` reports it)."""

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, src: Path, dst: Path, key: CaseKey, ocr: bool) -> Outcome:
        self.calls += 1
        raise TaskTimeout("exceeded 600 s")


class TooManyIdentifiers:
    """The real core, its result reporting more identifiers than `case.anonymised` may carry digests of."""

    def __init__(self, core: InProcessDeidentifier) -> None:
        self.core = core

    async def run(self, src: Path, dst: Path, key: CaseKey, ocr: bool) -> Outcome:
        result = await self.core.run(src, dst, key, ocr)
        return dataclasses.replace(result, identifiers=[f"value {n}" for n in range(MAX_IDENTIFIER_DIGESTS + 1)])


class WorkerDies:
    """A pool whose worker dies `times` times, then runs the real core (as a replaced pool does)."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls = 0
        self.core = InProcessDeidentifier()

    async def run(self, src: Path, dst: Path, key: CaseKey, ocr: bool) -> Outcome:
        self.calls += 1
        if self.calls <= self.times:
            raise BrokenProcessPool("A process in the process pool was terminated abruptly")
        return await self.core.run(src, dst, key, ocr)


class Unreachable(MemoryObjects):
    """An object store that refuses the first few reads and output writes (connection reset), then serves."""

    def __init__(self, reads: int, writes: int) -> None:
        super().__init__()
        self.reads, self.writes = reads, writes

    async def get_raw(self, key: str, path: Path) -> int:
        if self.reads:
            self.reads -= 1
            raise ConnectionResetError("object store unreachable")
        return await super().get_raw(key, path)

    async def put_output(self, key: str, path: Path, media_type: str) -> None:
        if self.writes:
            self.writes -= 1
            raise ConnectionResetError("object store unreachable")
        await super().put_output(key, path, media_type)


class RecordFailsFirst(MemoryRuns):
    """A runs record whose first write for each image fails (the database dropped the connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: list[str] = []

    async def record(self, session: Any, run: Run) -> None:
        if run.image_id not in self.failed:
            self.failed.append(run.image_id)
            raise ConnectionResetError("database unreachable")
        await super().record(session, run)


class DeleteFails(MemoryObjects):
    """An object store that fails raw deletions until `healed` (a crash between commit and deletion)."""

    healed = False

    async def delete_raw(self, key: str) -> None:
        if not self.healed:
            raise ConnectionResetError("object store unreachable")
        await super().delete_raw(key)


async def test_a_ready_image_is_stored_and_announced_with_digests_and_its_raw_upload_goes_after_the_commit() -> None:
    objects = CommitWatch()
    async with anonymiser(objects=objects) as a:
        objects.consumer = a.svc.consumer
        sent = await a.upload("i_1", ct_small())
    assert a.quarantined() == []
    [done] = a.anonymised()
    stored = objects.images["c_1/i_1"]
    assert (done.object_key, done.media_type, done.modality) == ("c_1/i_1", "application/dicom", "CT")
    assert done.size == len(stored) and done.sha256 == hashlib.sha256(stored).hexdigest()
    assert objects.media_types["c_1/i_1"] == "application/dicom"
    out = pydicom.dcmread(io.BytesIO(stored))
    assert out.PatientIdentityRemoved == "YES" and str(out.PatientName).startswith("CASEBOOK^")
    assert b"CompressedSamples" not in stored and b"JFK IMAGING" not in stored
    # The input's identifiers travel as digests only; moderation finds them in a case's text with them.
    assert find_digested("Mr Compressedsamples, scanned at JFK Imaging Center", "c_1",
                         done.identifier_digests) == ["compressedsamples", "jfk imaging center"]
    report = a.report("i_1")
    assert report["status"] == "ready" and "StudyInstanceUID" in report["rewritten"]
    assert objects.media_types["c_1/i_1.deid-report.json"] == "application/json"
    # The raw upload went, once: after the delivery was committed and its event relayed.
    assert objects.incoming == {}
    assert objects.at_delete == [({sent.event_id}, [Topic.CASE_ANONYMISED])]
    assert a.runs.runs["i_1"] == {
        "image_id": "i_1", "case_id": "c_1", "status": "ready", "reasons": [], "actions": done.actions,
        "incoming_key": "c_1/i_1.raw", "object_key": "c_1/i_1", "size_in": len(ct_small()), "size_out": done.size,
        "key_id": "k-test", "incoming_deleted": True}
    assert a.count("casebook_images_deidentified_total") == 1


@pytest.mark.parametrize(("data", "reason"), [
    (b"Dear colleague, please find the scan attached.\n" * 20, "unsupported_media"),
    (burned_in_ct(), "burned_in_text"),
], ids=["not an image", "burned-in annotation"])
async def test_an_input_the_core_refuses_is_quarantined_with_its_reason(data: bytes, reason: str) -> None:
    async with anonymiser() as a:
        await a.upload("i_2", data)
    assert a.anonymised() == []
    [q] = a.quarantined()
    assert (q.case_id, q.image_id, q.reasons) == ("c_1", "i_2", [reason])
    assert set(a.objects.images) == {"c_1/i_2.deid-report.json"}  # the owner's report, no image
    report = a.report("i_2")
    assert report["status"] == "quarantined" and report["quarantine_reasons"] == [reason]
    run = a.runs.runs["i_2"]
    assert (run["status"], run["reasons"], run["object_key"], run["incoming_deleted"]) == (
        "quarantined", [reason], None, True)
    assert a.objects.incoming == {}
    assert a.count("casebook_images_quarantined_total", reason=reason) == 1


async def test_an_upload_whose_raw_object_is_gone_is_quarantined_source_missing() -> None:
    core = InProcessDeidentifier()
    async with anonymiser(core) as a:
        await a.upload("i_3", None)  # its case was deleted before the anonymiser got to it
    assert [q.reasons for q in a.quarantined()] == [["source_missing"]]
    assert a.anonymised() == [] and core.calls == 0
    assert a.objects.images == {}  # nothing was de-identified, so there is no report either
    assert (a.runs.runs["i_3"]["status"], a.runs.runs["i_3"]["reasons"]) == ("quarantined", ["source_missing"])


async def test_a_task_past_its_time_limit_is_quarantined_processing_timeout_and_not_run_again() -> None:
    stuck = TimesOut()
    async with anonymiser(stuck) as a:
        await a.upload("i_4", ct_small())
    assert [q.reasons for q in a.quarantined()] == [["processing_timeout"]]
    assert a.anonymised() == [] and stuck.calls == 1
    assert set(a.objects.images) == {"c_1/i_4.deid-report.json"}
    assert a.report("i_4")["quarantine_reasons"] == ["processing_timeout"]
    assert a.objects.incoming == {} and a.runs.runs["i_4"]["reasons"] == ["processing_timeout"]


async def test_a_dead_worker_is_retried_and_one_that_keeps_dying_quarantines_processing_error() -> None:
    recovers = WorkerDies(times=SETTINGS.deid_crash_limit - 1)  # another task's worker, say: the next try works
    async with anonymiser(recovers) as a:
        await a.upload("i_5", ct_small())
    assert [e.image_id for e in a.anonymised()] == ["i_5"] and a.quarantined() == []
    assert recovers.calls == SETTINGS.deid_crash_limit

    dies = WorkerDies(times=10**6)  # this upload kills its worker every time
    async with anonymiser(dies) as a:
        await a.upload("i_6", ct_small())
    assert [q.reasons for q in a.quarantined()] == [["processing_error"]]
    assert a.anonymised() == [] and dies.calls == SETTINGS.deid_crash_limit
    assert set(a.objects.images) == {"c_1/i_6.deid-report.json"} and a.objects.incoming == {}


async def test_a_redelivered_upload_is_handled_once() -> None:
    core = InProcessDeidentifier()
    async with anonymiser(core) as a:
        sent = await a.upload("i_7", ct_small())
        await a.svc.redeliver(sent)  # as after a rebalance before the offset was committed
        await a.svc.redeliver(sent)
    # Handled again, it would find its raw object gone and quarantine it as source_missing.
    assert [e.image_id for e in a.anonymised()] == ["i_7"] and a.quarantined() == []
    assert core.calls == 1 and list(a.runs.runs) == ["i_7"] and a.runs.runs["i_7"]["status"] == "ready"
    assert a.count("casebook_images_deidentified_total") == 1


async def test_an_outcome_whose_transaction_is_retried_is_counted_once() -> None:
    runs = RecordFailsFirst()
    async with anonymiser(runs=runs) as a:
        await a.upload("i_11", b"not an image at all")
        await a.upload("i_12", ct_small())
    assert runs.failed == ["i_11", "i_12"]  # each delivery rolled back once, then committed
    assert [q.image_id for q in a.quarantined()] == ["i_11"] and [e.image_id for e in a.anonymised()] == ["i_12"]
    assert a.count("casebook_images_quarantined_total", reason="unsupported_media") == 1
    assert a.count("casebook_images_deidentified_total") == 1


async def test_too_many_identifiers_quarantine_an_image_the_core_made_ready() -> None:
    many = InProcessDeidentifier()
    async with anonymiser(TooManyIdentifiers(many)) as a:
        await a.upload("i_13", ct_small())
    assert a.anonymised() == [] and [q.reasons for q in a.quarantined()] == [["too_many_identifiers"]]
    assert set(a.objects.images) == {"c_1/i_13.deid-report.json"}  # the report, never the image
    assert a.report("i_13")["quarantine_reasons"] == ["too_many_identifiers"]
    assert a.runs.runs["i_13"]["status"] == "quarantined" and a.objects.incoming == {}
    assert a.count("casebook_images_quarantined_total", reason="too_many_identifiers") == 1


async def test_an_unreachable_object_store_is_waited_for_never_turned_into_an_outcome() -> None:
    objects, core = Unreachable(reads=2, writes=1), InProcessDeidentifier()
    async with anonymiser(core, objects) as a:
        await a.upload("i_8", ct_small())
        assert a.svc.dead_letters(Topic.CASE_UPLOADED) == []
    assert objects.reads == 0 and objects.writes == 0  # every refusal was met, and retried
    assert a.quarantined() == []
    assert [e.image_id for e in a.anonymised()] == ["i_8"]
    assert core.calls == 2  # the failed write came after de-identifying: the retry did it again
    assert a.runs.runs["i_8"]["status"] == "ready" and objects.incoming == {}


async def test_the_sweep_removes_raw_uploads_whose_deletion_failed_after_the_commit() -> None:
    objects = DeleteFails()
    async with anonymiser(objects=objects) as a:
        await a.upload("i_9", ct_small())
        await a.upload("i_10", b"not an image at all")
    assert {e.image_id for e in a.anonymised()} == {"i_9"} and {q.image_id for q in a.quarantined()} == {"i_10"}
    assert sorted(objects.incoming) == ["c_1/i_10.raw", "c_1/i_9.raw"]  # outcomes durable, raw objects left
    assert sorted(await a.runs.raw_left()) == [("i_10", "c_1/i_10.raw"), ("i_9", "c_1/i_9.raw")]

    domain = a.domain
    with pytest.raises(ConnectionResetError):  # still unreachable: the sweep fails and marks nothing
        await sweep_once(objects=objects, runs=a.runs, domain=domain)
    assert len(await a.runs.raw_left()) == 2
    objects.healed = True
    assert await sweep_once(objects=objects, runs=a.runs, domain=domain) == 2
    assert objects.incoming == {} and await a.runs.raw_left() == []
    assert all(r["incoming_deleted"] for r in a.runs.runs.values())
    assert await sweep_once(objects=objects, runs=a.runs, domain=domain) == 0
    assert a.count("casebook_incoming_swept_total") == 2
