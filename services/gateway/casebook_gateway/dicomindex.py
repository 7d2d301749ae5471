"""The DICOMweb index: each ready DICOM image's de-identified header is read once from the images bucket.

`case.anonymised` carries the series facts but not the study and SOP Instance UIDs, so the gateway reads
the header itself (the first 256 KiB of the object; the whole object only when the header is longer) and
keeps the UIDs, the QIDO attributes and the header as DICOM JSON (`dicomweb.index_header`). Rows that were
ready before this index existed are found the same way (the backfill). A background job, not a handler:
an outage of the object store delays the index, never the event consumer.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
from typing import Any

from minio.error import S3Error
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from casebook_gateway import dicomweb
from casebook_gateway.adapters import dicomweb as store
from casebook_platform.db import Database
from casebook_platform.storage import Storage

log = logging.getLogger(__name__)

HEAD_BYTES = 256 * 1024
_PARSE_ERRORS = (InvalidDicomError, AttributeError, KeyError, ValueError, TypeError, IndexError, OverflowError,
                 EOFError, NotImplementedError, RuntimeError)


def read_header(storage: Storage, key: str) -> dicomweb.HeaderIndex:
    """Read and index one object's header (blocking).

    Raises:
        ValueError: the object is not an indexable DICOM object.
        S3Error: the object store refused (e.g. the object is gone).
    """
    resp = storage.client.get_object(storage.images, key, offset=0, length=HEAD_BYTES)
    try:
        head = resp.read()
    finally:
        resp.close()
        resp.release_conn()
    try:
        return dicomweb.index_header(dcmread(io.BytesIO(head), stop_before_pixels=True))
    except _PARSE_ERRORS:
        if len(head) < HEAD_BYTES:
            raise ValueError("not an indexable DICOM object") from None
    with tempfile.TemporaryFile() as f:  # a header longer than the first read: the whole object, spooled
        resp = storage.client.get_object(storage.images, key)
        try:
            for chunk in resp.stream(1024 * 1024):
                f.write(chunk)
        finally:
            resp.close()
            resp.release_conn()
        f.seek(0)
        try:
            return dicomweb.index_header(dcmread(f, stop_before_pixels=True))
        except _PARSE_ERRORS as exc:
            raise ValueError(f"not an indexable DICOM object: {exc}") from exc


async def index_pending(*, db: Database, storage: Storage, limit: int = 50) -> int:
    """Index up to `limit` ready images not indexed yet; returns how many were handled.

    Raises whatever the database, or the store for anything but a missing object, raises (tried again later).
    """
    async with db.sessions() as session:
        todo = await store.pending(session, limit)
    for image_id, key in todo:
        try:
            found = await asyncio.to_thread(read_header, storage, key)
            values: dict[str, Any] = {
                "dicom_state": store.INDEXED, "study_uid": found.study_uid, "series_uid": found.series_uid,
                "sop_uid": found.sop_uid, "sop_class_uid": found.sop_class_uid,
                "transfer_syntax_uid": found.transfer_syntax_uid, "dicom_attrs": found.attrs,
                "dicom_meta": found.meta}
        except ValueError as exc:
            log.warning("image %s not indexed for DICOMweb: %s", image_id, exc)
            values = {"dicom_state": store.FAILED}
        except S3Error as exc:
            if exc.code != "NoSuchKey":
                raise
            values = {"dicom_state": store.FAILED}  # gone: its case was deleted meanwhile
        async with db.transaction() as session:
            await store.record_index(session, image_id, **values)
    return len(todo)


async def run_indexer(*, db: Database, storage: Storage, interval_s: float) -> None:
    """Background job: index what became ready, every `interval_s` while idle."""
    while True:
        try:
            if await index_pending(db=db, storage=storage):
                continue  # more may be waiting
        except asyncio.CancelledError:
            raise
        except Exception:  # an outage (store, database): retried at the next round
            log.warning("DICOMweb indexing failed; retrying", exc_info=True)
            await asyncio.sleep(interval_s * 4)
        await asyncio.sleep(interval_s)
