"""The gateway's `ImageObjects` port on the real object store (`StoredImages`) and in memory (`MemoryImages`):
one scenario of reads, chunked opens and a case's deletion gives the same answers and leaves the same keys,
so the routes and handlers that take the port behave alike over both."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from minio.error import S3Error

from casebook_gateway.adapters.memory import MemoryImages
from casebook_gateway.adapters.objects import StoredImages
from casebook_gateway.ports import ImageObjects
from casebook_platform.settings import CommonSettings
from casebook_platform.storage import Storage

pytestmark = pytest.mark.integration

IMAGES = {"c_1/i_1": b"DICM" * 1000, "c_1/i_1.deid-report.json": b'{"status": "ready"}', "c_10/i_3": b"other",
          "c_2/i_2": b"kept"}
INCOMING = {"c_1/i_1.raw": b"raw one", "c_1/i_9.raw": b"raw nine", "c_2/i_2.raw": b"raw two"}


def _storage(stack: Any, suffix: str, *, images: str | None = None) -> Storage:
    env = stack.service_env("gateway")
    return Storage(CommonSettings(s3_endpoint=env["CASEBOOK_S3_ENDPOINT"], s3_secure=False,
                                  s3_access_key=env["CASEBOOK_S3_ACCESS_KEY"],
                                  s3_secret_key=env["CASEBOOK_S3_SECRET_KEY"],
                                  s3_bucket_incoming=f"gw-incoming-{suffix}",
                                  s3_bucket_images=images or f"gw-images-{suffix}"))


async def _seeded(stack: Any) -> Storage:
    storage = _storage(stack, uuid.uuid4().hex[:8])
    await storage.ensure_buckets(storage.incoming, storage.images)
    for bucket, objects in ((storage.images, IMAGES), (storage.incoming, INCOMING)):
        for key, data in objects.items():
            await storage.put_bytes(bucket, key, data, "application/octet-stream")
    return storage


def _keys(storage: Storage, bucket: str) -> set[str]:
    return {str(o.object_name) for o in storage.client.list_objects(bucket, recursive=True)}


def _chunks(objects: ImageObjects, key: str) -> list[bytes]:
    body = objects.open(key)
    try:
        return list(iter(lambda: body.read(1500), b""))
    finally:
        body.close()


async def _scenario(objects: ImageObjects) -> dict[str, Any]:
    seen: dict[str, Any] = {
        "report": await objects.read("c_1/i_1.deid-report.json"),
        "missing": await objects.read("c_1/no-such.deid-report.json"),
        "chunks": [len(c) for c in _chunks(objects, "c_1/i_1")],
        "whole": b"".join(_chunks(objects, "c_1/i_1")) == IMAGES["c_1/i_1"],
    }
    with pytest.raises((S3Error, LookupError)):  # each store says "no such object" its own way
        objects.open("c_1/no-such")
    await objects.delete_case("c_1")
    await objects.delete("c_2/no-such")  # removing what is not there is no error
    return seen


async def test_the_objects_on_the_store_and_in_memory_agree(stack: Any) -> None:
    memory = MemoryImages()
    memory.objects.update(IMAGES)
    memory.incoming.update(INCOMING)
    storage = await _seeded(stack)

    in_memory, on_store = await _scenario(memory), await _scenario(StoredImages(storage))

    assert in_memory == on_store == {"report": b'{"status": "ready"}', "missing": None,
                                     "chunks": [1500, 1500, 1000], "whole": True}
    # The case's objects are gone from both buckets; another case's (even one whose id it prefixes) stay.
    assert memory.keys == _keys(storage, storage.images) == {"c_10/i_3", "c_2/i_2"}
    assert set(memory.incoming) == _keys(storage, storage.incoming) == {"c_2/i_2.raw"}


async def test_a_bucket_that_fails_is_logged_and_the_other_still_emptied(stack: Any,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    seeded = await _seeded(stack)
    broken = _storage(stack, "unused", images=f"gw-no-such-bucket-{uuid.uuid4().hex[:8]}")
    broken.incoming = seeded.incoming
    with caplog.at_level(logging.WARNING, logger="casebook_gateway.adapters.objects"):
        await StoredImages(broken).delete_case("c_1")  # the deletion of the case has committed: no error
    assert _keys(seeded, seeded.incoming) == {"c_2/i_2.raw"}
    assert [r.getMessage() for r in caplog.records] == [f"could not remove objects of c_1 from {broken.images}"]
