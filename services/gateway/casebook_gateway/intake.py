"""What a spooled upload is accepted as: each file recognised by its content and checked (`ingest`), a zip
member by member, in a thread and within a time bound, so that the upload route only parses, calls, returns.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from casebook_gateway import ingest
from casebook_gateway.schemas import RejectedMember
from casebook_gateway.settings import Settings
from casebook_platform import media
from casebook_platform.errors import ApiError

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


def accept(spooled: ingest.Spooled, settings: Settings, cancel: threading.Event | None = None) -> Checked:
    """Turn the spooled upload into accepted files and refused zip members (blocking: run it in a thread).

    A single file is accepted or refused whole; a zip is taken member by member, and refused whole only when
    the archive itself is unsafe. Setting `cancel` stops a zip's extraction at the next member or chunk and
    removes what was extracted.

    Raises:
        ApiError: what `check_file` refuses of a single file; 422 `unsafe_archive` (`ingest.check_zip`) or
            `invalid_dicom` (an empty zip).
        ingest.Cancelled: `cancel` was set.
    """
    tmp = settings.tmp_dir or None
    if media.sniff(_head(spooled.path)) != media.Media.ZIP:
        kind, notes = check_file(spooled.path, spooled.filename, settings)
        return [ingest.Accepted(spooled.path, media.media_type(kind), spooled.size, ingest.digest(spooled.path),
                                spooled.filename, notes)], []
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


async def accept_within(spooled: ingest.Spooled, settings: Settings, *, timeout: float) -> Checked:
    """`accept` in a thread, given up after `timeout` seconds: the spool file is removed at once and the
    extraction told to stop; whatever the thread still produces is removed when it ends.

    Raises:
        ApiError: 422 `invalid_dicom` when the time ran out, or what `accept` refused.
    """
    cancel = threading.Event()
    future = asyncio.get_running_loop().run_in_executor(None, accept, spooled, settings, cancel)

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
