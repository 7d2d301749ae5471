"""The export service's objects: archives and manifests in the exports bucket, images read from theirs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from casebook_events import ExportManifest, claims

MISSING = ("NoSuchKey", "NoSuchObject", "NotFound")


class ManifestMissing(LookupError):
    """The manifest an export names is not stored (deleted with its case, or never written)."""


async def remove_every_version(client: Any, bucket: str, key_or_prefix: str) -> int:
    """Delete every version (and delete marker) of the objects at `key_or_prefix`, so no URL serves them again.

    Raises:
        RuntimeError: the store refused to delete one of them (the caller retries).
    """
    def run() -> int:
        objs = [DeleteObject(o.object_name, o.version_id) for o in
                client.list_objects(bucket, prefix=key_or_prefix, recursive=True, include_version=True)]
        if objs:
            for err in client.remove_objects(bucket, objs):
                raise RuntimeError(f"could not delete {err.name}: {err.message}")
        return len(objs)

    return await asyncio.to_thread(run)


@dataclass(frozen=True)
class StoredManifest:
    """A manifest in the bucket, as a listing shows it."""

    key: str
    export_id: str
    modified: datetime


class ExportObjects:
    """The exports bucket of a minio client (the `Objects` port)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    async def remove(self, key_or_prefix: str) -> int:
        """Every version of an archive (or of every object under a prefix)."""
        return await remove_every_version(self.client, self.bucket, key_or_prefix)

    async def remove_manifest(self, export_id: str) -> int:
        """Every version of an export's manifest (it holds case text: nothing of it may stay)."""
        return await remove_every_version(self.client, self.bucket, claims.manifest_key(export_id))

    async def read_manifest(self, claim: claims.Claim, *, export_id: str) -> ExportManifest:
        """The manifest an event names, verified against its size and SHA-256.

        Raises:
            ManifestMissing: no such object.
            casebook_events.claims.ClaimMismatch: it is not the manifest the event names.
        """
        if claim.size > claims.MAX_MANIFEST_BYTES:
            raise claims.ClaimMismatch(f"manifest {claim.key} is {claim.size} bytes, more than "
                                       f"{claims.MAX_MANIFEST_BYTES}")

        def read() -> bytes:
            try:
                resp = self.client.get_object(self.bucket, claim.key)
            except S3Error as exc:
                if exc.code in MISSING:
                    raise ManifestMissing(claim.key) from exc
                raise
            try:
                data: bytes = resp.read(claim.size + 1)  # one byte more shows an object longer than claimed
                return data
            finally:
                resp.close()
                resp.release_conn()

        data = await asyncio.to_thread(read)
        return claims.decode_manifest(data, claim, export_id=export_id)

    async def manifests(self, limit: int = 1000) -> list[StoredManifest]:
        """Manifests in the bucket (at most `limit`), by any stored version: one the gateway deleted without its
        versions (a delete marker over the text) is still there to be removed."""
        def run() -> list[StoredManifest]:
            found: dict[str, StoredManifest] = {}
            for o in self.client.list_objects(self.bucket, prefix=claims.MANIFEST_PREFIX, recursive=True,
                                              include_version=True):
                export_id = claims.export_id_of(o.object_name)
                if export_id is None or o.last_modified is None:
                    continue
                seen = found.get(o.object_name)
                if seen is None and len(found) >= limit:
                    break
                if seen is None or o.last_modified > seen.modified:
                    found[o.object_name] = StoredManifest(key=o.object_name, export_id=export_id,
                                                          modified=o.last_modified)
            return list(found.values())

        return await asyncio.to_thread(run)
