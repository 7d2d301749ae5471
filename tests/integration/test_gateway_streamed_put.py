"""The gateway's put of an object while its bytes arrive (`adapters.incoming.StreamedPut`) on the real object store:
nothing is stored before `commit`, a put ended any other way leaves neither an object nor a pending upload, and
a committed one is exactly the bytes given."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from casebook_gateway.adapters.incoming import StreamedPut
from casebook_platform.settings import CommonSettings
from casebook_platform.storage import Storage

pytestmark = pytest.mark.integration

CHUNK = 256 * 1024


async def _storage(stack: Any) -> Storage:
    env = stack.service_env("gateway")
    storage = Storage(CommonSettings(s3_endpoint=env["CASEBOOK_S3_ENDPOINT"], s3_secure=False,
                                     s3_access_key=env["CASEBOOK_S3_ACCESS_KEY"],
                                     s3_secret_key=env["CASEBOOK_S3_SECRET_KEY"],
                                     s3_bucket_incoming=f"gw-streamed-{uuid.uuid4().hex[:8]}"))
    await storage.ensure_buckets(storage.incoming)
    return storage


def _left(storage: Storage) -> tuple[list[str], list[Any]]:
    """The objects and the pending multipart uploads of the incoming bucket."""
    objects = [str(o.object_name) for o in storage.client.list_objects(storage.incoming, recursive=True)]
    return objects, storage.client._list_multipart_uploads(storage.incoming).uploads


async def _write(put: StreamedPut, data: bytes) -> None:
    for i in range(0, len(data), CHUNK):
        await put.write(data[i:i + CHUNK])


async def test_the_object_is_stored_only_once_committed_and_is_the_bytes_given(stack: Any) -> None:
    storage = await _storage(stack)
    data = os.urandom(5 * 1024 * 1024 + 123)
    put = StreamedPut.start(storage, "c_1/i_1", size=len(data), content_type="application/dicom", timeout_s=30)
    await _write(put, data)
    assert not put.broken
    assert _left(storage) == ([], [])  # all but the last chunk sent: the store keeps nothing yet

    assert await put.commit()
    assert await storage.get_bytes(storage.incoming, "c_1/i_1") == data
    assert storage.client.stat_object(storage.incoming, "c_1/i_1").content_type == "application/dicom"
    assert _left(storage)[1] == []


async def test_an_abandoned_put_leaves_nothing(stack: Any) -> None:
    storage = await _storage(stack)
    data = os.urandom(6 * 1024 * 1024)
    put = StreamedPut.start(storage, "c_1/i_2", size=len(data), content_type="application/dicom", timeout_s=30)
    await _write(put, data)
    await put.abort()
    await put.abort()  # a second end changes nothing
    assert not await put.commit()
    assert _left(storage) == ([], [])


async def test_a_put_given_other_than_its_size_is_never_stored(stack: Any) -> None:
    storage = await _storage(stack)
    data = os.urandom(2 * 1024 * 1024)
    short = StreamedPut.start(storage, "c_1/short", size=len(data) + 1, content_type="image/png", timeout_s=30)
    await _write(short, data)
    assert not await short.commit()
    long = StreamedPut.start(storage, "c_1/long", size=len(data) - 1, content_type="image/png", timeout_s=30)
    await _write(long, data)
    assert long.broken and not await long.commit()
    assert _left(storage) == ([], [])
