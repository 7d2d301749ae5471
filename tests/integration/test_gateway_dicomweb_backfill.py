"""Upgrading a gateway database holding images made ready before the DICOMweb index existed: the index job
reads each de-identified header once, from the real object store, and fills in the UIDs and attributes."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from client import sample_file
from harness import fresh_database
from pydicom import dcmread
from sqlalchemy import text

import casebook_gateway
from casebook_gateway import dicomindex
from casebook_platform.db import Database
from casebook_platform.migrations import alembic_config
from casebook_platform.settings import CommonSettings
from casebook_platform.storage import Storage

pytestmark = pytest.mark.integration
MIGRATIONS = Path(casebook_gateway.__file__).parent / "migrations"


def test_images_from_before_the_index_are_indexed_once(stack: Any) -> None:
    from alembic import command

    url = fresh_database(stack, "gw_dicomweb")
    cfg = alembic_config(MIGRATIONS, url)
    asyncio.run(asyncio.to_thread(command.upgrade, cfg, "f1a6c3d9e2b7"))  # the revision before the index
    env = stack.service_env("gateway")
    storage = Storage(CommonSettings(s3_endpoint=env["CASEBOOK_S3_ENDPOINT"], s3_secure=False,
                                     s3_access_key=env["CASEBOOK_S3_ACCESS_KEY"],
                                     s3_secret_key=env["CASEBOOK_S3_SECRET_KEY"]))
    prefix = f"c_{uuid.uuid4().hex[:8]}"
    ct = sample_file("CT_small.dcm")

    async def scenario() -> list[Any]:
        await storage.ensure_buckets(storage.images)
        await storage.put_bytes(storage.images, f"{prefix}/i_ct", ct, "application/dicom")
        await storage.put_bytes(storage.images, f"{prefix}/i_junk", b"\0" * 300, "application/dicom")
        db = Database(url)
        async with db.transaction() as s:
            for stmt in (
                f"INSERT INTO cases (id, owner_id, owner_name, title, visibility, status) VALUES "
                f"('{prefix}', 'alice', 'Alice', 'Old case', 'draft', 'draft')",
                f"INSERT INTO studies (id, case_id, position, modality) VALUES ('s_1{prefix}', '{prefix}', 1, 'CT')",
                "INSERT INTO images (id, case_id, study_id, status, incoming_key, object_key, media_type, size) VALUES "
                f"('i_ct{prefix}', '{prefix}', 's_1{prefix}', 'ready', 'k', '{prefix}/i_ct', 'application/dicom', "
                f"{len(ct)}), ('i_junk{prefix}', '{prefix}', 's_1{prefix}', 'ready', 'k', '{prefix}/i_junk', "
                "'application/dicom', 300), "
                f"('i_gone{prefix}', '{prefix}', 's_1{prefix}', 'ready', 'k', '{prefix}/i_gone', "
                "'application/dicom', 1), "
                f"('i_png{prefix}', '{prefix}', 's_1{prefix}', 'ready', 'k', '{prefix}/i_png', 'image/png', 1)"):
                await s.execute(text(stmt))
        await db.engine.dispose()
        await asyncio.to_thread(command.upgrade, cfg, "head")
        db = Database(url)
        handled = await dicomindex.index_pending(db=db, storage=storage)
        again = await dicomindex.index_pending(db=db, storage=storage)
        async with db.sessions() as s:
            rows = (await s.execute(text(
                "SELECT id, dicom_state, study_uid, series_uid, sop_uid, sop_class_uid, transfer_syntax_uid, "
                "dicom_attrs, dicom_meta FROM images ORDER BY id"))).mappings().all()
        await db.engine.dispose()
        return [handled, again, {r["id"].removesuffix(prefix): dict(r) for r in rows}]

    handled, again, rows = asyncio.run(scenario())
    assert (handled, again) == (3, 0), "each DICOM image is read once; a PNG is not DICOMweb's"
    ds = dcmread(io.BytesIO(ct))
    got = rows["i_ct"]
    assert got["dicom_state"] == "indexed"
    assert (got["study_uid"], got["series_uid"], got["sop_uid"], got["sop_class_uid"]) == (
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.SOPClassUID)
    assert got["transfer_syntax_uid"] == ds.file_meta.TransferSyntaxUID
    assert got["dicom_attrs"]["00080060"]["Value"] == ["CT"] and "7FE00010" not in got["dicom_meta"]
    assert rows["i_junk"]["dicom_state"] == "failed" and rows["i_gone"]["dicom_state"] == "failed"
    assert rows["i_png"]["dicom_state"] is None
