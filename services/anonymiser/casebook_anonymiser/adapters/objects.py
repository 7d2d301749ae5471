"""The anonymiser's objects on the platform's object store (the `Objects` port): raw uploads in, results out."""

from __future__ import annotations

from pathlib import Path

from minio.error import S3Error

from casebook_anonymiser.ports import SourceMissing
from casebook_platform.storage import Storage

MISSING = ("NoSuchKey", "NoSuchObject")


class StorageObjects:
    """The incoming and images buckets of `Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def get_raw(self, key: str, path: Path) -> int:
        """Stream a raw upload to `path`; returns its size.

        Raises:
            SourceMissing: no such object. Any other `S3Error` (the store refusing for now) passes unchanged.
        """
        try:
            return await self.storage.get_file(self.storage.incoming, key, path)
        except S3Error as exc:
            if exc.code in MISSING:
                raise SourceMissing(key) from exc
            raise

    async def put_report(self, key: str, data: bytes) -> None:
        await self.storage.put_bytes(self.storage.images, key, data, "application/json")

    async def put_output(self, key: str, path: Path, media_type: str) -> None:
        await self.storage.put_file(self.storage.images, key, path, media_type)

    async def delete_raw(self, key: str) -> None:
        await self.storage.delete(self.storage.incoming, key)
