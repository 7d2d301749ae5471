"""What an upload is accepted as: recognised by its bytes (never its name), a zip taken member by member with
each refused member named, a single file accepted or refused whole."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from client import plain_png, sample_file

from casebook_gateway import ingest, intake
from casebook_gateway.settings import Settings
from casebook_platform.errors import ApiError


def _spooled(tmp: Path, data: bytes, filename: str) -> ingest.Spooled:
    path = tmp / "upload.spool"
    path.write_bytes(data)
    return ingest.Spooled(path=path, filename=filename, size=len(data))


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(("data", "filename", "media_type"), [
    (sample_file("CT_small.dcm"), "anything.bin", "application/dicom"),
    (plain_png(1), "scan.dcm", "image/png"),  # the bytes decide, not the name
], ids=["dicom", "png named .dcm"])
def test_a_single_file_is_accepted_as_what_its_bytes_say(tmp_path: Path, data: bytes, filename: str,
                                                         media_type: str) -> None:
    [accepted], rejected = intake.accept(_spooled(tmp_path, data, filename), Settings(tmp_dir=str(tmp_path)))
    assert (accepted.content_type, accepted.size, accepted.filename, rejected) == (media_type, len(data), filename, [])


@pytest.mark.parametrize(("data", "filename", "status", "code"), [
    (b"Dear colleague, the scan is attached.\n", "letter.txt", 415, "unsupported_media"),
    (b"Dear colleague, the scan is attached.\n", "slice.DCM", 422, "invalid_dicom"),
    (b"", "empty", 422, "invalid_dicom"),
    (_zip({}), "empty.zip", 422, "invalid_dicom"),
], ids=["text", "text named as DICOM", "empty file", "empty zip"])
def test_a_single_file_that_does_not_check_out_is_refused_whole(tmp_path: Path, data: bytes, filename: str,
                                                                 status: int, code: str) -> None:
    with pytest.raises(ApiError) as refused:
        intake.accept(_spooled(tmp_path, data, filename), Settings(tmp_dir=str(tmp_path)))
    assert (refused.value.status, refused.value.code) == (status, code)


def test_a_zip_keeps_its_good_members_and_names_each_refused_one(tmp_path: Path) -> None:
    data = _zip({"ct/0001.dcm": sample_file("CT_small.dcm"), "notes.txt": b"not an image",
                 "ct/0002.dcm": b"truncated", "us.png": plain_png(2)})
    spooled = _spooled(tmp_path, data, "study.zip")
    accepted, rejected = intake.accept(spooled, Settings(tmp_dir=str(tmp_path)))
    assert [(a.filename, a.content_type) for a in accepted] == [("ct/0001.dcm", "application/dicom"),
                                                                ("us.png", "image/png")]
    assert [(r.name, r.code) for r in rejected] == [("notes.txt", "unsupported_media"),
                                                    ("ct/0002.dcm", "invalid_dicom")]
    assert not spooled.path.exists() and all(a.path.exists() for a in accepted)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(a.path.name for a in accepted)  # refused ones gone
