"""What a spooled upload is accepted as: each file recognised by its content and checked (`ingest`), a zip
member by member, in a thread and within a time bound, so that the upload route only parses, calls, returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from casebook_gateway import ingest
from casebook_gateway.schemas import RejectedMember
from casebook_gateway.settings import Settings
from casebook_platform import media
from casebook_platform.errors import ApiError

log = logging.getLogger(__name__)

Checked = tuple[list[ingest.Accepted], list[RejectedMember]]
"""The accepted files of an upload and the refused members of a zip."""

DICOM_NAMES = (".dcm", ".dicom", ".ima")  # a file named as DICOM without the marker is refused as bad DICOM


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(media.HEAD_BYTES)


def check_file(path: Path, filename: str, settings: Settings) -> tuple[media.Media, list[str]]:
    """Recognise one file by its content; returns (kind, notes).

    Raises:
        ApiError: 422 `invalid_dicom` / `invalid_image` for a file of a known kind that does not check out
            (or an empty file, or a DICOM name without the `DICM` marker); 415 `unsupported_media` otherwise.
    """
    head = _head(path)
    kind = media.sniff(head)
    if kind == media.Media.DICOM:
        ingest.validate_dicom(path)
        notes = ["preamble_zeroed"] if ingest.neutralise_preamble(path) else []
        return kind, notes
    if kind in (media.Media.PNG, media.Media.JPEG):
        ingest.validate_raster(path, kind, settings.max_image_pixels)
        return kind, []
    if filename.lower().endswith(DICOM_NAMES) or not head:
        raise ApiError(422, "invalid_dicom", f"{filename or 'the file'} is not DICOM (no DICM marker)")
    raise ApiError(415, "unsupported_media", "send one DICOM file, a zip of DICOM files, or a JPEG/PNG")


def accept(spooled: ingest.Spooled, settings: Settings, cancel: threading.Event | None = None,
           sha256: str | None = None) -> Checked:
    """Turn the spooled upload into accepted files and refused zip members (blocking: run it in a thread).

    A single file is accepted or refused whole; a zip is taken member by member, and refused whole only when
    the archive itself is unsafe. Setting `cancel` stops a zip's extraction at the next member or chunk and
    removes what was extracted. `sha256` is a single file's digest as the checks leave it, when it was
    computed while the file arrived (`Receiving.digest`); without it the file is read once more for it.

    Raises:
        ApiError: what `check_file` refuses of a single file; 422 `unsafe_archive` (`ingest.check_zip`) or
            `invalid_dicom` (an empty zip).
        ingest.Cancelled: `cancel` was set.
    """
    tmp = settings.tmp_dir or None
    if media.sniff(_head(spooled.path)) != media.Media.ZIP:
        kind, notes = check_file(spooled.path, spooled.filename, settings)
        return [ingest.Accepted(spooled.path, media.media_type(kind), spooled.size,
                                sha256 or ingest.digest(spooled.path), spooled.filename, notes)], []
    members = ingest.check_zip(spooled.path, max_entries=settings.max_zip_entries,
                               max_total=settings.max_zip_uncompressed_bytes, max_ratio=settings.max_zip_ratio)
    if not members:
        raise ApiError(422, "invalid_dicom", "the zip holds no files")
    accepted: list[ingest.Accepted] = []
    rejected: list[RejectedMember] = []
    try:
        for info in members:
            if cancel is not None and cancel.is_set():
                raise ingest.Cancelled()
            path = ingest.extract_member(spooled.path, info, tmp, cancel)  # an unsafe member refuses the archive
            try:
                kind, notes = check_file(path, info.filename, settings)
            except ApiError as exc:
                path.unlink(missing_ok=True)
                rejected.append(RejectedMember(name=info.filename[-255:], code=exc.code, message=exc.message))
                continue
            accepted.append(ingest.Accepted(path, media.media_type(kind), os.path.getsize(path), ingest.digest(path),
                                            info.filename[-255:], notes))
    except BaseException:
        for a in accepted:
            a.path.unlink(missing_ok=True)
        raise
    spooled.path.unlink(missing_ok=True)
    return accepted, rejected


async def accept_within(spooled: ingest.Spooled, settings: Settings, *, timeout: float, sha256: str | None = None
                        ) -> Checked:
    """`accept` in a thread, given up after `timeout` seconds: the spool file is removed at once and the
    extraction told to stop; whatever the thread still produces is removed when it ends.

    Raises:
        ApiError: 422 `invalid_dicom` when the time ran out, or what `accept` refused.
    """
    cancel = threading.Event()
    future = asyncio.get_running_loop().run_in_executor(None, accept, spooled, settings, cancel, sha256)

    def give_up() -> None:
        cancel.set()
        future.add_done_callback(_discard_late)
        spooled.path.unlink(missing_ok=True)

    try:
        done, _ = await asyncio.wait([future], timeout=timeout)
    except BaseException:  # the request itself was cancelled (client gone, shutdown)
        give_up()
        raise
    if not done:
        give_up()
        raise ApiError(422, "invalid_dicom", "the upload could not be recognised in time")
    try:
        return future.result()
    except BaseException:
        spooled.path.unlink(missing_ok=True)
        raise


def _discard_late(future: asyncio.Future[Checked]) -> None:
    """Remove the files of checks that finished after their upload was given up."""
    if future.cancelled() or future.exception() is not None:
        return
    for a in future.result()[0]:
        a.path.unlink(missing_ok=True)


class StreamingPut(Protocol):
    """An object written while its bytes arrive (`adapters.incoming.StreamedPut`)."""

    size: int
    content_type: str
    head: bytes  # the first bytes written

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> bool: ...

    async def abort(self) -> None: ...


StartPut = Callable[[int, str], StreamingPut]
STORED_WHILE_RECEIVED = (media.Media.DICOM, media.Media.PNG, media.Media.JPEG)  # kinds a single file can pass as
"""Begins the put of an object of the given size and media type."""


class Receiving:
    """The `ingest.Tee` of an upload: its digest, and its object stored while it arrives when that is worth it.

    The first bytes decide, by the same sniffer as the checks: a zip is checked and stored member by member
    once received (as is a file under `min_bytes`, one whose size the body does not say, or one the checks
    will refuse for its kind); a DICOM file, PNG or JPEG is written to the store as it arrives, and its
    object is kept only if `store` finds it is the file the checks accepted. A DICOM preamble is zeroed in
    what is written and digested, as the checks zero it in the spool file (`ingest.neutralise_preamble`),
    so the object, the digest and the checked file agree.
    """

    def __init__(self, start: StartPut, *, min_bytes: int) -> None:
        self._start = start
        self._min_bytes = min_bytes
        self._expected: int | None = None
        self._head = b""  # the first bytes, until there are enough to sniff
        self._decided = False
        self._hash: hashlib._Hash | None = hashlib.sha256()
        self._hashed = 0
        self.put: StreamingPut | None = None

    async def begin(self, expected_size: int | None) -> None:
        self._expected = expected_size

    async def write(self, data: bytes) -> None:
        if not self._decided:
            self._head += data
            if len(self._head) < media.HEAD_BYTES:
                return
            data = self._decide()
        if self._hash is not None:
            self._hash.update(data)
            self._hashed += len(data)
        if self.put is not None:
            await self.put.write(data)

    def _decide(self) -> bytes:
        """Sniff the first bytes; returns them as they are to be digested and stored."""
        self._decided = True
        data, self._head = self._head, b""
        kind = media.sniff(data[:media.HEAD_BYTES])
        if kind == media.Media.ZIP:
            self._hash = None  # its members are digested one by one
        if kind == media.Media.DICOM:
            data = bytes(media.DICM_OFFSET) + data[media.DICM_OFFSET:]
        expected = self._expected
        if expected is not None and expected >= self._min_bytes and kind in STORED_WHILE_RECEIVED:
            try:
                self.put = self._start(expected, media.media_type(kind))
            except Exception:  # the file is still stored the ordinary way once checked
                log.warning("could not begin storing the upload while it arrives", exc_info=True)
        return data

    def digest(self, size: int) -> str | None:
        """The SHA-256 of a single file as the checks leave it, once all of its `size` bytes were written; None
        for a zip, or if the bytes written were not the file's (then the checks read the file for it)."""
        if not self._decided:
            data = self._decide()  # shorter than a sniff's head: nothing is stored while it arrives
            if self._hash is not None:
                self._hash.update(data)
                self._hashed += len(data)
        return self._hash.hexdigest() if self._hash is not None and self._hashed == size else None

    async def store(self, accepted: ingest.Accepted) -> bool:
        """Complete the put if it holds exactly the accepted file (the spool file as checked); True if it did.
        Otherwise the put is abandoned (nothing stays in the store) and the caller stores the file itself."""
        put = self.put
        if put is None:
            return False
        if accepted.size != put.size or accepted.content_type != put.content_type \
                or await asyncio.to_thread(_read_head, accepted.path, len(put.head)) != put.head:
            await self.abort()
            return False
        stored = await put.commit()  # if the request ends meanwhile, `abort` still ends the put
        self.put = None
        return stored

    async def abort(self) -> None:
        """Abandon the put, if one is under way: the store keeps nothing of it."""
        put, self.put = self.put, None
        if put is not None:
            await put.abort()


def _read_head(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)
