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


def test_a_manifest_is_read_verified_and_removed_with_every_version(stack: Any) -> None:
    from casebook_events import ExportManifest, claims
    from casebook_export.adapters.objects import ExportObjects, ManifestMissing

    client = Minio(f"127.0.0.1:{stack.ports.s3}", stack.secrets["s3_access_key"], stack.secrets["s3_secret_key"],
                   secure=False)
    bucket = f"exports-{uuid.uuid4().hex[:12]}"
    client.make_bucket(bucket)
    client.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
    objects = ExportObjects(client, bucket)
    data, claim = claims.encode_manifest(ExportManifest(export_id="x_1", kind="originals", title="t", cases=[]))
    client.put_object(bucket, claim.key, io.BytesIO(b"an older version"), 16)
    client.put_object(bucket, claim.key, io.BytesIO(data), len(data))

    assert asyncio.run(objects.read_manifest(claim, export_id="x_1")).export_id == "x_1"
    longer = claims.Claim(key=claim.key, sha256=claim.sha256, size=claim.size - 1)
    with pytest.raises(claims.ClaimMismatch):  # read one byte past the claimed size: longer than claimed
        asyncio.run(objects.read_manifest(longer, export_id="x_1"))
    assert [m.export_id for m in asyncio.run(objects.manifests())] == ["x_1"]

    client.remove_object(bucket, claim.key)  # as the gateway discards one: a delete marker over the versions
    assert [m.export_id for m in asyncio.run(objects.manifests())] == ["x_1"]  # still found by the sweep
    assert asyncio.run(objects.remove_manifest("x_1")) == 3  # both versions and the marker: it holds case text
    assert list(client.list_objects(bucket, prefix="manifests/", recursive=True, include_version=True)) == []
    with pytest.raises(ManifestMissing):
        asyncio.run(objects.read_manifest(claim, export_id="x_1"))
