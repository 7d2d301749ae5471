"""Claim check through the running platform: `export.requested` names a manifest (version 2, a few hundred
bytes however large the case), the export service builds from the manifest, and the manifest is removed once
the export is ready or its case is deleted (every stored version: it holds case text)."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
import zipfile
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from client import plain_png
from minio import Minio

from casebook_events import (
    CaseSnapshot,
    ExportCase,
    ExportImage,
    ExportRequested,
    ExportSeries,
    ExportStudy,
    claims,
    credit,
    encode,
    make_envelope,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUCKET = "casebook-exports"


def _store(stack: Any) -> Minio:
    return Minio(f"127.0.0.1:{stack.ports.s3}", stack.secrets["s3_access_key"], stack.secrets["s3_secret_key"],
                 secure=False)


def _versions(client: Minio, key: str) -> list[Any]:
    return list(client.list_objects(BUCKET, prefix=key, recursive=True, include_version=True))


def _requested(stack: Any, export_ids: set[str], timeout: float = 60) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """The `export.requested` records of these exports, read off the broker: raw bytes and envelope."""
    async def read() -> dict[str, tuple[bytes, dict[str, Any]]]:
        consumer = AIOKafkaConsumer("export.requested", bootstrap_servers=f"127.0.0.1:{stack.ports.kafka}",
                                    group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        found: dict[str, tuple[bytes, dict[str, Any]]] = {}
        try:
            deadline = time.monotonic() + timeout
            while export_ids - found.keys() and time.monotonic() < deadline:
                for recs in (await consumer.getmany(timeout_ms=1000)).values():
                    for r in recs:
                        env = json.loads(r.value)
                        if env["key"] in export_ids:
                            found[env["key"]] = (r.value, env)
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def _approved(users: Any, images: int) -> tuple[Any, str]:
    alice, editor = users("contributor,supporter", name="Dr Alice Example"), users("editor")
    cid = alice.create_case(title="Osteoid osteoma", discussion="Classic nidus. " * 1000)["id"]
    sid = alice.add_study(cid, "US", "Lucent nidus. " * 1000)
    for n in range(images):
        alice.upload(cid, sid, plain_png(n + 2, 64), f"us{n}.png", "image/png")
    assert all(i["status"] == "ready" for i in alice.wait_images(cid, images))
    assert alice.post(f"/v1/cases/{cid}/publish").status_code == 202
    deadline = time.monotonic() + 60
    while editor.post(f"/v1/moderation/{cid}/approve").status_code != 200:
        assert time.monotonic() < deadline, "the case never reached the queue"
        time.sleep(0.5)
    alice.wait_status(cid, "approved")
    return alice, cid


def _eventually(check: Any, what: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (got := check()):
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out: {what}")


def test_the_request_names_a_manifest_that_goes_when_the_export_is_ready(stack: Any, platform: Any,
                                                                          users: Any) -> None:
    alice, cid = _approved(users, images=6)
    export_id = alice.post(f"/v1/cases/{cid}/exports", json={"kind": "originals"}).json()["id"]
    raw, env = _requested(stack, {export_id})[export_id]
    payload = env["payload"]
    assert env["version"] == 2 and payload["case_id"] == cid and payload["cases"][0]["case_id"] == cid
    assert payload["manifest_key"] == claims.manifest_key(export_id)
    assert len(raw) < 2048, f"export.requested is {len(raw)} bytes: it should carry references, not the case"
    assert "Classic nidus" not in raw.decode() and "object_key" not in payload  # no text, no image keys

    body = _eventually(lambda: (b := alice.get(f"/v1/exports/{export_id}").json())["status"] in ("ready", "failed")
                       and b, "export finished")
    assert body["status"] == "ready", body
    store = _store(stack)
    _eventually(lambda: _versions(store, payload["manifest_key"]) == [], "manifest removed after the export")


def test_deleting_the_case_removes_the_manifest_of_its_export(stack: Any, platform: Any, users: Any) -> None:
    alice, cid = _approved(users, images=1)
    export_id = alice.post(f"/v1/cases/{cid}/exports", json={"kind": "presentation"}).json()["id"]
    store = _store(stack)
    key = claims.manifest_key(export_id)
    [(_, env)] = _requested(stack, {export_id}).values()
    assert env["payload"]["manifest_size"] > 20_000  # the case text went to the manifest, not the event
    assert alice.http.delete(f"/v1/cases/{cid}").status_code == 204
    _eventually(lambda: _versions(store, key) == [], "manifest removed with its case")
    assert alice.get(f"/v1/exports/{export_id}").status_code == 404


def test_a_v1_request_of_an_older_gateway_is_still_built(stack: Any, platform: Any, users: Any) -> None:
    """A rolling upgrade: the export service reads `export.requested` v1 (content inline) as before."""
    alice, cid = _approved(users, images=2)
    store = _store(stack)
    listed = alice.get(f"/v1/cases/{cid}/images").json()
    stored = {o.object_name: o.size for o in store.list_objects("casebook-images", prefix=f"{cid}/",
                                                                recursive=True)}
    images = [ExportImage(image_id=i["id"], object_key=f"{cid}/{i['id']}", media_type="image/png",
                          size=stored[f"{cid}/{i['id']}"]) for i in listed]
    export_id = f"x_v1{uuid.uuid4().hex[:12]}"
    event = ExportRequested(
        export_id=export_id, kind="originals", requested_by=alice.id, title="Osteoid osteoma",
        fingerprint=uuid.uuid4().hex * 2, cases=[ExportCase(
            case_id=cid, revision=1, case=CaseSnapshot(title="Osteoid osteoma", discussion="Classic nidus."),
            author_name="Dr Alice Example", attribution=credit.attribution("Dr Alice Example", cid),
            licence=credit.LICENCE, studies=[ExportStudy(position=1, modality="US", series=[
                ExportSeries(position=1, images=images)])])])
    env = make_envelope(event, producer="gateway", key=export_id)
    assert env.version == 1

    async def publish() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.ports.kafka}")
        await producer.start()
        try:
            await producer.send_and_wait("export.requested", encode(env), key=export_id.encode())
        finally:
            await producer.stop()

    asyncio.run(publish())
    export = platform["export"].url  # the gateway has no record of a request it did not write itself
    body = _eventually(lambda: (b := alice.http.get(f"{export}/v1/exports/{export_id}").json()).get("status")
                       in ("ready", "failed") and b, "v1 export finished")
    assert body["status"] == "ready", body
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(body["download_url"], timeout=30).content))
    names = archive.namelist()
    assert "case.txt" in names and len([n for n in names if n.endswith(".png")]) == 2, names
