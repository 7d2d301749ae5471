"""An upload stored while it arrives (`intake.Receiving`, the tee of `ingest.spool_multipart`): which uploads are
written to the store as they arrive, that what is written and digested is the file as the checks leave it (a
DICOM preamble zeroed), and that the object is kept only when it is exactly the accepted file."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from client import plain_png, sample_file

from casebook_gateway import ingest, intake
from casebook_gateway.settings import Settings

MIN = 4096


class FakePut:
    """An `intake.StreamingPut` that keeps what it was given and how it ended."""

    def __init__(self, size: int, content_type: str) -> None:
        self.size, self.content_type = size, content_type
        self.head = b""
        self.data = bytearray()
        self.ended = ""

    async def write(self, data: bytes) -> None:
        self.data += data
        self.head = bytes(self.data[:1024])

    async def commit(self) -> bool:
        self.ended = "committed"
        return True

    async def abort(self) -> None:
        self.ended = self.ended or "aborted"


def _receiving() -> tuple[intake.Receiving, list[FakePut]]:
    started: list[FakePut] = []

    def start(size: int, content_type: str) -> FakePut:
        started.append(FakePut(size, content_type))
        return started[-1]

    return intake.Receiving(start, min_bytes=MIN), started


def _polyglot_dicom() -> bytes:
    data = bytearray(sample_file("CT_small.dcm"))
    data[:128] = b"MZ\x90\x00 a program hides here".ljust(128, b"\x00")
    return bytes(data)


def _multipart(data: bytes, extra: dict[str, str] | None = None) -> tuple[bytes, str]:
    """The body and content type httpx sends for `file` (and extra fields), as a browser would frame it."""
    request = httpx.Request("POST", "http://x/", files={"file": ("x.dcm", data)}, data=extra)
    return request.read(), request.headers["content-type"]


async def _chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i:i + size]


async def _spool(tmp: Path, data: bytes, tee: ingest.Tee, extra: dict[str, str] | None = None) -> ingest.Spooled:
    body, ctype = _multipart(data, extra)
    return await ingest.spool_multipart(_chunks(body), ctype, max_bytes=1 << 30, tmp_dir=str(tmp), tee=tee,
                                        body_length=len(body))


async def test_a_dicom_file_is_written_as_it_arrives_with_its_preamble_zeroed_as_the_checks_zero_it(
        tmp_path: Path) -> None:
    data = _polyglot_dicom()
    receiving, started = _receiving()

    spooled = await _spool(tmp_path, data, receiving)
    [accepted], _ = intake.accept(spooled, Settings(tmp_dir=str(tmp_path)), sha256=receiving.digest(spooled.size))

    [put] = started
    checked = spooled.path.read_bytes()  # the spool file as the checks left it
    assert (put.size, put.content_type) == (len(data), "application/dicom")
    assert bytes(put.data) == checked == bytes(128) + data[128:]
    assert accepted.sha256 == hashlib.sha256(checked).hexdigest() == ingest.digest(spooled.path)
    assert accepted.notes == ["preamble_zeroed"]
    assert await receiving.store(accepted) and put.ended == "committed"


async def test_a_png_is_written_unchanged(tmp_path: Path) -> None:
    data = plain_png(1) + bytes(MIN)  # trailing bytes after IEND: the put takes the file as sent
    receiving, started = _receiving()
    spooled = await _spool(tmp_path, data, receiving)
    [put] = started
    assert (bytes(put.data), put.content_type) == (data, "image/png")
    assert receiving.digest(len(data)) == hashlib.sha256(data).hexdigest()
    spooled.path.unlink()


async def test_a_zip_a_small_file_and_an_unknown_kind_are_only_stored_once_checked(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.dcm", _polyglot_dicom())
    cases = {"zip": (buf.getvalue(), None), "small": (b"\x89PNG\r\n\x1a\n" + bytes(100), hashlib.sha256),
             "unknown": (b"%PDF-1.7" + bytes(MIN * 2), hashlib.sha256)}
    for name, (data, digest) in cases.items():
        receiving, started = _receiving()
        spooled = await _spool(tmp_path, data, receiving)
        assert started == [], name
        assert receiving.digest(len(data)) == (digest(data).hexdigest() if digest else None), name
        spooled.path.unlink()


async def test_a_body_whose_file_is_not_its_last_part_is_never_completed(tmp_path: Path) -> None:
    """The size told in advance assumes the file ends the body: a field after it makes the put come up short, so
    it is abandoned and the file stored once checked."""
    data = _polyglot_dicom()
    request = httpx.Request("POST", "http://x/", files=[("file", ("x.dcm", data)), ("note", ("n.txt", b"after"))])
    body = request.read()
    receiving, started = _receiving()
    spooled = await ingest.spool_multipart(_chunks(body), request.headers["content-type"], max_bytes=1 << 30,
                                           tmp_dir=str(tmp_path), tee=receiving, body_length=len(body))
    [accepted], _ = intake.accept(spooled, Settings(tmp_dir=str(tmp_path)), sha256=receiving.digest(spooled.size))
    [put] = started
    assert put.size != accepted.size
    assert not await receiving.store(accepted) and put.ended == "aborted"
    spooled.path.unlink()


async def test_a_put_that_is_not_the_checked_file_is_abandoned(tmp_path: Path) -> None:
    data = _polyglot_dicom()
    receiving, started = _receiving()
    spooled = await _spool(tmp_path, data, receiving)
    [accepted], _ = intake.accept(spooled, Settings(tmp_dir=str(tmp_path)), sha256=receiving.digest(spooled.size))
    spooled.path.write_bytes(b"\x01" + spooled.path.read_bytes()[1:])  # not what was written
    assert not await receiving.store(accepted)
    assert started[0].ended == "aborted"
    await receiving.abort()  # nothing left to end
    spooled.path.unlink()


async def test_the_file_size_told_in_advance_is_the_file_size(tmp_path: Path) -> None:
    told: list[int | None] = []

    class Tee:
        async def begin(self, expected_size: int | None) -> None:
            told.append(expected_size)

        async def write(self, data: bytes) -> None:
            pass

    for data in (b"x", bytes(100_000), _polyglot_dicom()):
        spooled = await _spool(tmp_path, data, Tee())
        assert told[-1] == spooled.size == len(data)
        spooled.path.unlink()


async def test_a_digest_of_other_bytes_than_the_file_is_not_given() -> None:
    receiving, _ = _receiving()
    await receiving.begin(None)
    await receiving.write(b"\x89PNG\r\n\x1a\n" + bytes(200))
    assert receiving.digest(208) is not None
    assert receiving.digest(209) is None  # a byte missed: the checks digest the file themselves
