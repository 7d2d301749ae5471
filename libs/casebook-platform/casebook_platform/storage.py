"""A thin layer over the minio client: the three buckets, created on start if missing."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import BinaryIO

from minio import Minio
from minio.error import S3Error

from casebook_platform.settings import CommonSettings


class Storage:
    """The object store, with blocking minio calls moved off the event loop."""

    def __init__(self, settings: CommonSettings) -> None:
        self.client = Minio(settings.s3_endpoint, access_key=settings.s3_access_key,
                            secret_key=settings.s3_secret_key, secure=settings.s3_secure, region=settings.s3_region)
        self.incoming = settings.s3_bucket_incoming
        self.images = settings.s3_bucket_images
        self.exports = settings.s3_bucket_exports

    async def ensure_buckets(self, *buckets: str) -> None:
        """Create the given buckets (default: all three) if they are missing."""
        for b in buckets or (self.incoming, self.images, self.exports):
            if not await asyncio.to_thread(self.client.bucket_exists, b):
                try:
                    await asyncio.to_thread(self.client.make_bucket, b)
                except S3Error as exc:  # another replica may have won the race
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

    async def ping(self) -> bool:
        try:
            await asyncio.to_thread(self.client.bucket_exists, self.images)
            return True
        except Exception:  # noqa: BLE001 - readiness reports any failure as "not ready"
            return False

    async def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        import io

        await asyncio.to_thread(self.client.put_object, bucket, key, io.BytesIO(data), len(data),
                                content_type=content_type)

    async def put_stream(self, bucket: str, key: str, stream: BinaryIO, length: int, content_type: str,
                         part_size: int = 8 * 1024 * 1024) -> None:
        await asyncio.to_thread(self.client.put_object, bucket, key, stream, length, content_type=content_type,
                                part_size=part_size)

    async def get_bytes(self, bucket: str, key: str) -> bytes:
        def read() -> bytes:
            resp = self.client.get_object(bucket, key)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return await asyncio.to_thread(read)

    async def get_file(self, bucket: str, key: str, path: str | os.PathLike[str], chunk: int = 8 * 1024 * 1024
                       ) -> int:
        """Stream an object to a local file (never whole in memory); returns its size.

        Raises:
            S3Error: e.g. `NoSuchKey`.
        """
        def run() -> int:
            resp = self.client.get_object(bucket, key)
            size = 0
            try:
                with open(path, "wb") as out:
                    for part in resp.stream(chunk):
                        out.write(part)
                        size += len(part)
            finally:
                resp.close()
                resp.release_conn()
            return size

        return await asyncio.to_thread(run)

    async def put_file(self, bucket: str, key: str, path: str | os.PathLike[str], content_type: str) -> None:
        """Upload a local file in parts (multipart above 8 MB)."""
        await asyncio.to_thread(self.client.fput_object, bucket, key, str(path), content_type=content_type,
                                part_size=8 * 1024 * 1024)

    async def exists(self, bucket: str, key: str) -> bool:
        try:
            await asyncio.to_thread(self.client.stat_object, bucket, key)
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return False
            raise

    async def delete(self, bucket: str, key: str) -> None:
        await asyncio.to_thread(self.client.remove_object, bucket, key)

    async def delete_prefix(self, bucket: str, prefix: str) -> int:
        from minio.deleteobjects import DeleteObject

        def run() -> int:
            keys = [DeleteObject(o.object_name) for o in self.client.list_objects(bucket, prefix=prefix,
                                                                                  recursive=True)]
            if keys:
                for err in self.client.remove_objects(bucket, keys):
                    raise RuntimeError(f"could not delete {err.name}: {err.message}")
            return len(keys)

        return await asyncio.to_thread(run)

    def presigned_get(self, bucket: str, key: str, expires: timedelta, filename: str | None = None) -> str:
        headers: dict[str, str | list[str] | tuple[str]] | None = (
            {"response-content-disposition": f'attachment; filename="{filename}"'} if filename else None)
        return self.client.presigned_get_object(bucket, key, expires=expires, response_headers=headers)

    def presigned_put(self, bucket: str, key: str, expires: timedelta) -> str:
        """A URL that writes `key` with one PUT of any body (signed without hashing it: UNSIGNED-PAYLOAD), so
        a caller can stream an object while its bytes arrive instead of reading them twice, once to sign."""
        return self.client.presigned_put_object(bucket, key, expires=expires)
