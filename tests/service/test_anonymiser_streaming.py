"""The anonymiser's handler with every DICOM upload streamed (`CASEBOOK_DEID_STREAM_BYTES=0`) announces and
stores exactly what it does with the in-memory path, on the in-memory broker with the real core."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

import pytest
from deid_parity import multiframe
from pydicom.data import get_testdata_file
from service_tier import running

from casebook_anonymiser.adapters.memory import InProcessDeidentifier, MemoryObjects, MemoryRuns
from casebook_anonymiser.handlers import handlers
from casebook_anonymiser.metrics import DomainMetrics
from casebook_anonymiser.settings import Settings
from casebook_events import CaseUploaded, Topic
from casebook_platform.metrics import Metrics

pytestmark = pytest.mark.service

SETTINGS = Settings(deid_secret="service-tier-secret-0123456789", deid_key_id="k-test", deid_ocr=True)


def _cine() -> bytes:
    buf = io.BytesIO()
    multiframe(10, text_on=3).save_as(buf, enforce_file_format=True)
    return buf.getvalue()


async def _outcomes(uploads: dict[str, bytes]) -> tuple[list[dict[str, object]], dict[str, bytes]]:
    objects, runs = MemoryObjects(), MemoryRuns()
    wired = handlers(objects=objects, runs=runs, deidentifier=InProcessDeidentifier(), settings=SETTINGS,
                     domain=DomainMetrics(Metrics("anonymiser")))
    async with running("anonymiser", wired, stores=[runs],
                       watch=[Topic.CASE_ANONYMISED, Topic.CASE_QUARANTINED]) as svc:
        for image_id, data in uploads.items():
            key = f"c_1/{image_id}.raw"
            objects.incoming[key] = data
            async with asyncio.timeout(60):
                await svc.send(CaseUploaded(case_id="c_1", image_id=image_id, study_id="s_1", owner_id="alice",
                                            object_key=key, content_type="application/dicom", size=len(data),
                                            sha256=hashlib.sha256(data).hexdigest()))
        events = [e.model_dump() for e in svc.events(Topic.CASE_ANONYMISED) + svc.events(Topic.CASE_QUARANTINED)]
    return events, dict(objects.images)


async def test_streamed_uploads_are_announced_and_stored_as_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    uploads = {"i_ct": Path(str(get_testdata_file("CT_small.dcm"))).read_bytes(), "i_cine": _cine(),
               "i_rle": Path(str(get_testdata_file("MR_small_RLE.dcm"))).read_bytes()}
    monkeypatch.setenv("CASEBOOK_DEID_STREAM_BYTES", str(1 << 40))
    in_memory = await _outcomes(uploads)
    monkeypatch.setenv("CASEBOOK_DEID_STREAM_BYTES", "0")
    streamed = await _outcomes(uploads)
    events, stored = in_memory
    assert len(events) == 3 and all(e.get("object_key") for e in events), events  # all three ready
    assert any("burned_in_text_redacted" in e["flags"] for e in events)  # type: ignore[operator]
    assert streamed == in_memory
    assert set(stored) == {f"c_1/{i}" for i in uploads} | {f"c_1/{i}.deid-report.json" for i in uploads}
