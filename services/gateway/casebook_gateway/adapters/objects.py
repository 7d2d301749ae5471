"""The `ImageObjects` port on the object store: the images bucket, and the incoming one when a case goes."""

from __future__ import annotations

import logging
from typing import Any

from minio.error import S3Error

from casebook_platform.storage import Storage

log = logging.getLogger(__name__)
MISSING = ("NoSuchKey", "NoSuchObject")


class StoredBody:
    """An object's response from the store; closing it hands its connection back to the pool."""

    def __init__(self, response: Any) -> None:
        self.response = response

    def read(self, size: int, /) -> bytes:
        return bytes(self.response.read(size))

    def close(self) -> None:
        self.response.close()
        self.response.release_conn()


class StoredImages:
    """The `ImageObjects` port on `Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def delete(self, key: str) -> None:
        await self.storage.delete(self.storage.images, key)

    async def read(self, key: str) -> bytes | None:
        """The object's bytes; None when there is none. Any other `S3Error` passes unchanged."""
        try:
            return await self.storage.get_bytes(self.storage.images, key)
        except S3Error as exc:
            if exc.code in MISSING:
                return None
            raise

    def open(self, key: str) -> StoredBody:
        return StoredBody(self.storage.client.get_object(self.storage.images, key))

    async def delete_case(self, case_id: str) -> None:
        for bucket in (self.storage.images, self.storage.incoming):
            try:
                await self.storage.delete_prefix(bucket, f"{case_id}/")
            except Exception:  # noqa: BLE001 - the row is gone; a failed cleanup is logged, not surfaced
                log.warning("could not remove objects of %s from %s", case_id, bucket)
