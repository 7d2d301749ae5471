"""An upload whose checks run out of time leaves nothing behind: the spool file goes at once, the zip's
extraction stops at its next member or chunk, and what it had extracted is removed."""

from __future__ import annotations

import asyncio
import threading
import time
import zipfile
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from casebook_gateway import ingest, intake
from casebook_gateway.settings import Settings
from casebook_platform.errors import ApiError


def _settings(tmp: Path) -> Settings:
    return Settings(tmp_dir=str(tmp))


def _zip_of_dicoms(tmp: Path, n: int) -> ingest.Spooled:
    data = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()
    path = tmp / "upload.spool"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(n):
            zf.writestr(f"series/{i:04}.dcm", data)
    return ingest.Spooled(path=path, filename="study.zip", size=path.stat().st_size)


def _left(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir())


async def test_a_timed_out_upload_removes_its_spool_and_stops_extracting(tmp_path: Path) -> None:
    spooled = _zip_of_dicoms(tmp_path, 400)
    settings = _settings(tmp_path)
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        await intake.accept_within(spooled, settings, timeout=0.2)
    assert refused.value.status == 422 and refused.value.code == "invalid_dicom"
    assert time.monotonic() - started < 1.0  # answered when the time ran out, not when the checks ended
    assert not spooled.path.exists()  # the spool goes at once
    # The thread notices at its next member or chunk and removes every member it had extracted.
    deadline = time.monotonic() + 10
    while _left(tmp_path) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _left(tmp_path) == []


async def test_an_upload_checked_in_time_keeps_its_members(tmp_path: Path) -> None:
    spooled = _zip_of_dicoms(tmp_path, 3)
    accepted, rejected = await intake.accept_within(spooled, _settings(tmp_path), timeout=30)
    assert len(accepted) == 3 and rejected == [] and all(a.path.exists() for a in accepted)
    assert not spooled.path.exists()  # a zip's spool goes once its members are out


def test_a_cancelled_extraction_removes_its_partial_member(tmp_path: Path) -> None:
    spooled = _zip_of_dicoms(tmp_path, 1)
    cancel = threading.Event()
    cancel.set()
    with zipfile.ZipFile(spooled.path) as zf:
        info = zf.infolist()[0]
    with pytest.raises(ingest.Cancelled):
        ingest.extract_member(spooled.path, info, str(tmp_path), cancel)
    assert _left(tmp_path) == [spooled.path.name]
    with pytest.raises(ingest.Cancelled):
        intake.accept(spooled, _settings(tmp_path), cancel)
    assert _left(tmp_path) == [spooled.path.name]  # nothing extracted; the caller removes the spool
