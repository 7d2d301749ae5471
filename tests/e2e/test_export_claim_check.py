"""Claim check through the running platform: `export.requested` names a manifest (version 2, a few hundred
bytes however large the case), the export service builds from the manifest, and the manifest is removed once
the export is ready or its case is deleted (every stored version: it holds case text)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from client import plain_png
from minio import Minio

from casebook_events import claims

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
