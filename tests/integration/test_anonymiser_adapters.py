"""The anonymiser's adapters on the real object store and PostgreSQL, and their agreement with the in-memory ones.

One scenario of uploads (a ready CT, a file that is no image, one whose raw object is gone, a redelivery and
the same upload under another event id) runs through the real handler twice: on `MemoryConsumer` with the
in-memory objects and runs, and on the real `EventConsumer` with `StorageObjects` (S3) and `SqlRuns`
(PostgreSQL). Run rows and emitted events must be the same, so the service tier tests what production runs.
The de-identifier is the real core in this process in both.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from harness import fresh_database
from minio.error import S3Error
from pydicom.data import get_testdata_file
from sqlalchemy import select

import casebook_anonymiser
from casebook_anonymiser.adapters import db as anon_db
from casebook_anonymiser.adapters.memory import InProcessDeidentifier, MemoryObjects, MemoryRuns
from casebook_anonymiser.adapters.objects import StorageObjects
from casebook_anonymiser.adapters.runs import SqlRuns
from casebook_anonymiser.handlers import handlers
from casebook_anonymiser.metrics import DomainMetrics
from casebook_anonymiser.ports import Objects, Run, Runs, SourceMissing
from casebook_anonymiser.settings import Settings
from casebook_anonymiser.sweeper import sweep_once
from casebook_events import CaseUploaded, Envelope, decode, encode, make_envelope
from casebook_platform.consumer import EventConsumer
from casebook_platform.db import Database
from casebook_platform.memory import MemoryConsumer
from casebook_platform.metrics import Metrics
from casebook_platform.migrations import upgrade
from casebook_platform.settings import CommonSettings
from casebook_platform.storage import Storage

pytestmark = pytest.mark.integration

SETTINGS = Settings(deid_secret="integration-secret-0123456789", deid_key_id="k-int")
CT = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()
JUNK = b"Dear colleague, the scan is attached.\n" * 20
RAW = {"i_ct": CT, "i_junk": JUNK}  # i_gone has no raw object
COLUMNS = ("image_id", "case_id", "status", "reasons", "actions", "incoming_key", "object_key", "size_in",
           "size_out", "key_id", "incoming_deleted")


def _storage(stack: Any, suffix: str) -> Storage:
    env = stack.service_env("anonymiser")
    return Storage(CommonSettings(s3_endpoint=env["CASEBOOK_S3_ENDPOINT"], s3_secure=False,
                                  s3_access_key=env["CASEBOOK_S3_ACCESS_KEY"],
                                  s3_secret_key=env["CASEBOOK_S3_SECRET_KEY"],
                                  s3_bucket_incoming=f"incoming-{suffix}", s3_bucket_images=f"images-{suffix}"))


def _uploaded(case_id: str, image_id: str) -> CaseUploaded:
    data = RAW.get(image_id, b"")
    return CaseUploaded(case_id=case_id, image_id=image_id, study_id="s_1", owner_id="alice",
                        object_key=f"{case_id}/{image_id}.raw", content_type="application/dicom", size=len(data),
                        sha256=hashlib.sha256(data).hexdigest())


def _scenario(case_id: str) -> list[Envelope]:
    ct = make_envelope(_uploaded(case_id, "i_ct"), producer="gateway", key=case_id)
    return [ct, make_envelope(_uploaded(case_id, "i_junk"), producer="gateway", key=case_id),
            make_envelope(_uploaded(case_id, "i_gone"), producer="gateway", key=case_id),
            ct,  # redelivered: handled once
            make_envelope(_uploaded(case_id, "i_ct"), producer="gateway", key=case_id)]  # another event id


async def _drive(broker: KafkaBroker, envelopes: list[Envelope]) -> None:
    for env in envelopes:
        await broker.publish(encode(env), env.type, key=env.key.encode())


def _wired(objects: Objects, runs: Runs) -> Any:
    return handlers(objects=objects, runs=runs, deidentifier=InProcessDeidentifier(), settings=SETTINGS,
                    domain=DomainMetrics(Metrics("anonymiser")))


def _outcomes(events: list[Any]) -> list[tuple[str, str, Any]]:
    return [(e.type, e.payload["image_id"], e.payload.get("reasons") or e.payload.get("sha256")) for e in events]


async def test_the_handler_on_s3_and_postgres_agrees_with_the_service_tier(stack: Any) -> None:
    case_id = f"c_{uuid.uuid4().hex[:8]}"
    envelopes = _scenario(case_id)

    memory_objects, memory_runs = MemoryObjects(), MemoryRuns()
    for image_id, data in RAW.items():
        memory_objects.incoming[f"{case_id}/{image_id}.raw"] = data
    broker = KafkaBroker("in-memory:9092", logger=None)
    consumer = MemoryConsumer(settings=CommonSettings(service_name="anonymiser"), broker=broker,
                              handlers=_wired(memory_objects, memory_runs), stores=[memory_runs])
    consumer.subscribe()
    async with TestKafkaBroker(broker):
        await _drive(broker, envelopes)

    storage = _storage(stack, uuid.uuid4().hex[:10])
    await storage.ensure_buckets(storage.incoming, storage.images)
    for image_id, data in RAW.items():
        await storage.put_bytes(storage.incoming, f"{case_id}/{image_id}.raw", data, "application/dicom")
    url = await asyncio.to_thread(fresh_database, stack, "anon_adapters")
    await upgrade(Path(casebook_anonymiser.__file__).parent / "migrations", url)
    db = Database(url)
    try:
        broker = KafkaBroker("in-memory:9092", logger=None)
        real = EventConsumer(settings=CommonSettings(service_name="anonymiser"), broker=broker, db=db,
                             tables=anon_db.tables, metrics=Metrics("anonymiser"), relay=None,
                             handlers=_wired(StorageObjects(storage), SqlRuns(db)))
        real.subscribe()
        async with TestKafkaBroker(broker):
            await _drive(broker, envelopes)
        async with db.sessions() as s:
            rows = {r["image_id"]: {c: r[c] for c in COLUMNS}
                    for r in (await s.execute(select(anon_db.runs))).mappings()}
            emitted = [decode(r.value) for r in (await s.execute(
                select(anon_db.tables.outbox.c.value).order_by(anon_db.tables.outbox.c.id))).all()]
        raw_left = [k for k in (f"{case_id}/{i}.raw" for i in RAW) if await storage.exists(storage.incoming, k)]
        output = await storage.get_bytes(storage.images, f"{case_id}/i_ct")
        report = await storage.get_bytes(storage.images, f"{case_id}/i_junk.deid-report.json")
    finally:
        await db.dispose()

    assert rows == memory_runs.runs
    assert {i: (r["status"], r["reasons"], r["incoming_deleted"]) for i, r in rows.items()} == {
        "i_ct": ("ready", [], True), "i_junk": ("quarantined", ["unsupported_media"], True),
        "i_gone": ("quarantined", ["source_missing"], True)}
    sha = hashlib.sha256(output).hexdigest()
    # The same upload under another event id finds its raw object gone; its first outcome is the one kept.
    assert _outcomes(emitted) == _outcomes(consumer.published) == [
        ("case.anonymised", "i_ct", sha), ("case.quarantined", "i_junk", ["unsupported_media"]),
        ("case.quarantined", "i_gone", ["source_missing"]), ("case.quarantined", "i_ct", ["source_missing"])]
    assert memory_objects.images[f"{case_id}/i_ct"] == output
    assert memory_objects.images[f"{case_id}/i_junk.deid-report.json"] == report
    assert raw_left == [] and memory_objects.incoming == {}


async def test_the_object_store_adapter_tells_a_missing_upload_from_a_store_that_refuses(
        stack: Any, tmp_path: Path) -> None:
    storage = _storage(stack, uuid.uuid4().hex[:10])
    await storage.ensure_buckets(storage.incoming, storage.images)
    objects = StorageObjects(storage)
    await storage.put_bytes(storage.incoming, "c_1/i_1.raw", CT, "application/dicom")

    assert await objects.get_raw("c_1/i_1.raw", tmp_path / "in") == len(CT)
    assert (tmp_path / "in").read_bytes() == CT
    with pytest.raises(SourceMissing):
        await objects.get_raw("c_1/never.raw", tmp_path / "none")
    # A store that answers but refuses (here: no such bucket) is not a missing upload: it stays an error.
    elsewhere = StorageObjects(_storage(stack, "absent-" + uuid.uuid4().hex[:8]))
    with pytest.raises(S3Error) as refused:
        await elsewhere.get_raw("c_1/i_1.raw", tmp_path / "x")
    assert not isinstance(refused.value, SourceMissing) and refused.value.code == "NoSuchBucket"

    await objects.put_output("c_1/i_1", tmp_path / "in", "application/dicom")
    await objects.put_report("c_1/i_1.deid-report.json", b'{"status": "ready"}')
    stat = await asyncio.to_thread(storage.client.stat_object, storage.images, "c_1/i_1")
    report = await asyncio.to_thread(storage.client.stat_object, storage.images, "c_1/i_1.deid-report.json")
    assert (stat.size, stat.content_type, report.content_type) == (len(CT), "application/dicom", "application/json")
    await objects.delete_raw("c_1/i_1.raw")
    await objects.delete_raw("c_1/i_1.raw")  # already gone: no error
    assert not await storage.exists(storage.incoming, "c_1/i_1.raw")


async def test_the_sweep_on_s3_and_postgres_removes_the_raw_uploads_left_behind(stack: Any) -> None:
    storage = _storage(stack, uuid.uuid4().hex[:10])
    await storage.ensure_buckets(storage.incoming, storage.images)
    url = await asyncio.to_thread(fresh_database, stack, "anon_sweep")
    await upgrade(Path(casebook_anonymiser.__file__).parent / "migrations", url)
    db = Database(url)
    runs, objects, metrics = SqlRuns(db), StorageObjects(storage), Metrics("anonymiser")
    try:
        for image_id in ("i_1", "i_2"):
            await storage.put_bytes(storage.incoming, f"c_1/{image_id}.raw", CT, "application/dicom")
            async with db.transaction() as s:  # outcome committed, then the service died before deleting
                await runs.record(s, Run(image_id=image_id, case_id="c_1", status="ready", reasons=[], actions=[],
                                         incoming_key=f"c_1/{image_id}.raw", object_key=f"c_1/{image_id}",
                                         size_in=len(CT), size_out=1, key_id="k-int"))
        await objects.delete_raw("c_1/i_2.raw")  # this one's deletion after the commit went through
        await runs.mark_raw_deleted("i_2")
        assert await runs.raw_left() == [("i_1", "c_1/i_1.raw")]
        domain = DomainMetrics(metrics)
        assert await sweep_once(objects=objects, runs=runs, domain=domain) == 1
        assert await runs.raw_left() == [] and await sweep_once(objects=objects, runs=runs, domain=domain) == 0
        assert not await storage.exists(storage.incoming, "c_1/i_1.raw")
        assert metrics.registry.get_sample_value("casebook_incoming_swept_total") == 1
    finally:
        await db.dispose()
