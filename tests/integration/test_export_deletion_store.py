"""Removing a deleted case's archive takes every stored version, on the real object store (versioned bucket)."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import pytest
from minio import Minio
from minio.commonconfig import ENABLED
from minio.versioningconfig import VersioningConfig

from casebook_export.adapters.objects import remove_every_version

pytestmark = pytest.mark.integration


def test_every_version_of_an_archive_is_removed(stack: Any) -> None:
    client = Minio(f"127.0.0.1:{stack.ports.s3}", stack.secrets["s3_access_key"], stack.secrets["s3_secret_key"],
                   secure=False)
    bucket = f"exports-{uuid.uuid4().hex[:12]}"
    client.make_bucket(bucket)
    client.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
    for content in (b"first build", b"second build", b"third build"):
        client.put_object(bucket, "x_1/case.zip", io.BytesIO(content), len(content))
    client.put_object(bucket, "x_2/other.zip", io.BytesIO(b"keep"), 4)

    def versions(prefix: str) -> list[Any]:
        return list(client.list_objects(bucket, prefix=prefix, recursive=True, include_version=True))

    assert len(versions("x_1/")) == 3
    removed = asyncio.run(remove_every_version(client, bucket, "x_1/"))
    assert removed == 3
    assert versions("x_1/") == []  # no version and no delete marker is left to serve
    assert [o.object_name for o in versions("x_2/")] == ["x_2/other.zip"]  # another export stays
    assert asyncio.run(remove_every_version(client, bucket, "x_1/")) == 0  # a redelivery is harmless
