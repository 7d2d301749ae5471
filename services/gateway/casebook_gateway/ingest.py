"""Upload intake: stream the multipart body to a spool file, recognise the content, refuse unsafe archives.

Nothing here holds a whole upload in memory: the body is streamed to disk while its size is checked,
archives are inspected from their central directory before anything is extracted, and each accepted
file is handed on as a path.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from python_multipart.multipart import MultipartParser, parse_options_header

from casebook_platform.errors import ApiError
from casebook_platform.spool import SpoolWriter

CHUNK = 1024 * 1024
# Everything around the file is small and bounded: a part's headers, the parts, each non-file field.
MAX_PART_HEADER_BYTES = 16 * 1024
MAX_PARTS = 16
MAX_FIELD_BYTES = 64 * 1024
UNDEFINED_LENGTH = 0xFFFFFFFF  # a sequence or item whose end is marked by a delimiter, not a length


@dataclass
class Spooled:
    """The uploaded file, on disk."""

    path: Path
    filename: str
    size: int


@dataclass
class _PartState:
    """Where the multipart parser is: inside the `file` part or not, and what it has seen."""

    in_file: bool = False
    seen_file: bool = False
    size: int = 0
    filename: str = ""
    header: bytes = b""
    value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_bytes: int = 0
    parts: int = 0
    field_bytes: int = 0
    consumed: int = 0  # body bytes before the chunk being parsed
    data_offset: int | None = None  # where the file's bytes start in the body
    teed: list[bytes] = field(default_factory=list)  # the file's bytes of the chunk just parsed


class Tee(Protocol):
    """Where the file's bytes also go while they are spooled (the store, for an upload stored as it arrives)."""

    async def begin(self, expected_size: int | None) -> None:
        """Before the first bytes: the file's size if the body says it (`expected_size`), else None."""

    async def write(self, data: bytes) -> None:
        """The next bytes of the file, in order, each already within the size limit."""


def closing_delimiter(boundary: bytes) -> int:
    """Length of what follows the last part's data: CRLF, `--boundary--`, CRLF (as clients write it)."""
    return len(boundary) + 8


@dataclass
class Accepted:
    """One file accepted for de-identification."""

    path: Path
    content_type: str
    size: int
    sha256: str
    filename: str
    notes: list[str] = field(default_factory=list)


async def spool_multipart(body: AsyncIterator[bytes], content_type: str, *, max_bytes: int, tmp_dir: str | None,
                          tee: Tee | None = None, body_length: int | None = None) -> Spooled:
    """Write the multipart field `file` to a temporary file, enforcing `max_bytes` while streaming.

    With a `tee`, the file's bytes are also handed to it as they are spooled (a chunk at a time, so a slow
    tee slows the body down instead of piling up); `body_length` (the request's `Content-Length`) lets it
    know the file's size in advance when the file is the body's last part.

    Raises:
        ApiError: 413 `upload_too_large`; 422 `invalid_request` for a body without a `file` field.
    """
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise ApiError(415, "unsupported_media", "send multipart/form-data with a `file` field")
    out = SpoolWriter.temporary("upload-", tmp_dir)
    name = out.path
    state = _PartState()

    def bounded_header(n: int) -> None:
        state.header_bytes += n
        if state.header_bytes > MAX_PART_HEADER_BYTES:
            raise ApiError(413, "request_too_large",
                           f"multipart part headers are limited to {MAX_PART_HEADER_BYTES} bytes")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        bounded_header(end - start)
        state.header += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        bounded_header(end - start)
        state.value += data[start:end]

    def on_header_end() -> None:
        state.headers[state.header.lower()] = state.value
        state.header = state.value = b""

    def on_headers_finished() -> None:
        state.parts += 1
        if state.parts > MAX_PARTS:
            raise ApiError(422, "invalid_request", f"a multipart body may have at most {MAX_PARTS} parts")
        _, disp = parse_options_header(state.headers.get(b"content-disposition", b""))
        is_file = disp.get(b"name") == b"file" and not state.seen_file
        state.in_file = is_file
        if is_file:
            state.seen_file = True
            state.filename = disp.get(b"filename", b"").decode("utf-8", "replace")[:255]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.in_file:
            if state.data_offset is None:
                state.data_offset = state.consumed + start
            state.size += end - start
            if state.size > max_bytes:
                raise ApiError(413, "upload_too_large", f"uploads are limited to {max_bytes} bytes")
            piece = data[start:end]
            out.write(piece)
            if tee is not None and piece:
                state.teed.append(piece)
        else:
            state.field_bytes += end - start
            if state.field_bytes > MAX_FIELD_BYTES:
                # Only `file` is part of the contract: a field beyond the small allowance for clients' own
                # empty fields is an unknown field, refused like any other (422, not a size error).
                raise ApiError(422, "invalid_request", "only the `file` field is accepted")

    def on_part_end() -> None:
        state.in_file = False
        state.headers = {}
        state.header_bytes = state.field_bytes = 0

    callbacks: dict[str, Callable[..., None]] = {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    begun = False

    async def pass_on() -> None:
        """Hand the file's bytes the parser just gave to the tee (every one of them, in order)."""
        nonlocal begun
        if state.teed and tee is not None:
            if not begun:
                begun = True
                await tee.begin(_expected_size(body_length, state.data_offset, boundary))
            for piece in state.teed:
                await tee.write(piece)
            state.teed.clear()

    try:
        async for chunk in body:
            parser.write(chunk)
            state.consumed += len(chunk)
            await pass_on()
        parser.finalize()
        await pass_on()
    except ApiError:
        out.close()
        os.unlink(name)
        raise
    except Exception as exc:
        out.close()
        os.unlink(name)
        raise ApiError(422, "invalid_request", f"malformed multipart body: {exc}") from exc
    out.close()
    if not state.seen_file:
        os.unlink(name)
        raise ApiError(422, "invalid_request", "the multipart body has no `file` field")
    return Spooled(name, state.filename, state.size)


def _expected_size(body_length: int | None, data_offset: int | None, boundary: bytes) -> int | None:
    """The file's size if it is the body's last part: the body's length less what precedes and follows it."""
    if body_length is None or data_offset is None:
        return None
    size = body_length - data_offset - closing_delimiter(boundary)
    return size if size >= 0 else None


def check_zip(path: Path, *, max_entries: int, max_total: int, max_ratio: float) -> list[zipfile.ZipInfo]:
    """The members of a zip, checked before anything is extracted.

    Raises:
        ApiError: 422 `unsafe_archive` (too many entries, too large uncompressed, suspicious compression
        ratio, names escaping the folder, links, encryption) or `invalid_request` for a broken zip.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ApiError(422, "unsafe_archive", f"not a readable zip: {exc}") from exc
    with zf:
        infos = zf.infolist()
    if len(infos) > max_entries:
        raise ApiError(422, "unsafe_archive", f"the zip has {len(infos)} entries; at most {max_entries}")
    total = 0
    files = []
    for info in infos:
        name = info.filename
        p = PurePosixPath(name.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
            raise ApiError(422, "unsafe_archive", f"entry {name[:100]!r} escapes its folder")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ApiError(422, "unsafe_archive", f"entry {name[:100]!r} is a link")
        if info.flag_bits & 0x1:
            raise ApiError(422, "unsafe_archive", "encrypted entries are not accepted")
        if info.is_dir():
            continue
        total += info.file_size
        if total > max_total:
            raise ApiError(422, "unsafe_archive", f"the zip expands beyond {max_total} bytes")
        if info.compress_size and info.file_size / max(info.compress_size, 1) > max_ratio and info.file_size > CHUNK:
            raise ApiError(422, "unsafe_archive", f"entry {name[:100]!r} has a suspicious compression ratio")
        if info.compress_size == 0 and info.file_size > 0:
            raise ApiError(422, "unsafe_archive", f"entry {name[:100]!r} claims data from nothing")
        base = p.name
        if base.startswith(".") or base.lower() in ("dicomdir", "thumbs.db") or p.parts[0] == "__MACOSX":
            continue  # platform litter and index files carry no images
        files.append(info)
    return files


class Cancelled(Exception):
    """The upload's checks were given up (its time ran out): stop extracting, leave nothing behind."""


def extract_member(path: Path, info: zipfile.ZipInfo, tmp_dir: str | None,
                   cancel: threading.Event | None = None) -> Path:
    """Extract one checked member to its own temp file, re-checking the real size as it streams.

    Raises:
        ApiError: 422 `unsafe_archive` when the member expands beyond what its header declared.
        Cancelled: `cancel` was set (checked at every chunk); the partial file is removed.
    """
    dst = SpoolWriter.temporary("member-", tmp_dir)
    written = 0
    try:
        with dst, zipfile.ZipFile(path) as zf, zf.open(info) as src:
            while chunk := src.read(CHUNK):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                written += len(chunk)
                if written > info.file_size:
                    raise ApiError(422, "unsafe_archive", "an entry expands beyond its declared size")
                dst.write(chunk)
    except BaseException:
        dst.path.unlink()
        raise
    return dst.path


def validate_dicom(path: Path) -> list[str]:
    """Parse a DICOM file's elements (deferring large values) to prove it is whole, well-formed DICOM.

    Raises:
        ApiError: 422 `invalid_dicom` for what pydicom cannot parse, or a file cut short.
    """
    import pydicom
    from pydicom.dataelem import RawDataElement

    size = path.stat().st_size
    try:
        ds = pydicom.dcmread(path, defer_size=4096)
        if "SOPClassUID" not in ds:
            raise ApiError(422, "invalid_dicom", "the file has no SOP Class UID")
        deflated = ds.file_meta.get("TransferSyntaxUID") == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
        if deflated:
            # Offsets of a deflated dataset count inflated bytes: bound the inflated size instead.
            size = _inflated_size(path, ds)
        for elem in ds._dict.values():
            # A deferred value is only located, not read: one that runs past the end means truncation.
            if isinstance(elem, RawDataElement) and elem.length != UNDEFINED_LENGTH \
                    and elem.value_tell + elem.length > size:
                raise ApiError(422, "invalid_dicom", "the file is truncated")
        _walk(ds)
    except ApiError:
        raise
    except Exception as exc:  # any parse failure is invalid input
        raise ApiError(422, "invalid_dicom", f"not a valid DICOM file: {type(exc).__name__}") from exc
    return []


DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
MAX_INFLATION_RATIO = 200


def _inflated_size(path: Path, ds: Any) -> int:
    """Size of the dataset once inflated (plus its meta), refusing a stream that inflates past a bound."""
    import zlib

    start = int(ds.file_meta.get("FileMetaInformationGroupLength", 0) or 0) + 132 + 12
    limit = max(1 << 20, path.stat().st_size * MAX_INFLATION_RATIO)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    with open(path, "rb") as f:
        f.seek(start)
        while chunk := f.read(1 << 16):
            total += len(inflater.decompress(chunk, limit))
            while inflater.unconsumed_tail:
                total += len(inflater.decompress(inflater.unconsumed_tail, limit))
                if total > limit:
                    break
            if total > limit:
                raise ApiError(422, "invalid_dicom", "the deflated dataset inflates beyond the allowed ratio")
    if not inflater.eof:
        raise ApiError(422, "invalid_dicom", "the file is truncated")
    return start + total


def _walk(ds: Any, depth: int = 0) -> None:
    """Convert every element once so malformed (nested) data fails here; deferred values stay on disk."""
    from pydicom.dataelem import RawDataElement

    if depth > 32:
        raise ApiError(422, "invalid_dicom", "sequences are nested too deeply")
    for tag, raw in list(ds._dict.items()):
        if isinstance(raw, RawDataElement) and raw.value is None:
            continue  # deferred (large): its bounds were checked, its bytes are not needed here
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value:
                _walk(item, depth + 1)


def validate_raster(path: Path, kind: str, max_pixels: int) -> None:
    """Prove a PNG/JPEG decodes within the pixel bound.

    Raises:
        ApiError: 422 `invalid_image` for a broken or oversized image.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise ApiError(422, "invalid_image", f"the image exceeds {max_pixels} pixels")
            im.verify()
    except ApiError:
        raise
    except Exception as exc:
        raise ApiError(422, "invalid_image", f"not a valid {kind.upper()} image: {type(exc).__name__}") from exc


def neutralise_preamble(path: Path) -> bool:
    """Zero a DICOM preamble that carries anything (executables hide there: polyglot files); True if changed."""
    with open(path, "r+b") as f:
        pre = f.read(128)
        if pre.strip(b"\x00"):
            f.seek(0)
            f.write(b"\x00" * 128)
            return True
    return False


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
