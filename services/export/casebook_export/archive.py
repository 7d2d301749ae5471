"""Streaming builders for the two export kinds and a bounded-memory multipart upload."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from zipstream import ZIP_DEFLATED, ZIP_STORED, ZipStream

from casebook_export.layout import case_text, originals_entries
from casebook_export.model import ExportCase, ExportImage
from casebook_export.presentation import presentation_chunks
from casebook_export.render import DEFAULT_MAX_EDGE, Frame, FrameFormat, render_image

READ_CHUNK = 1024 * 1024
DEFAULT_PART_SIZE = 16 * 1024 * 1024

ORIGINALS_CONTENT_TYPE = "application/zip"
# The presentation is one HTML file rather than a zip: it opens with a double
# click on any device, with no unpacking step that could separate its parts.
PRESENTATION_CONTENT_TYPE = "text/html; charset=utf-8"

Progress = Callable[[int, int], None]


class ObjectStream(Protocol):
    """A readable object body; a minio/urllib3 response is one."""

    def read(self, amt: int | None = None, /) -> bytes: ...

    def close(self) -> None: ...


class ObjectSource(Protocol):
    """Opens stored images by object key."""

    def open(self, object_key: str) -> ObjectStream: ...


class ArchiveError(RuntimeError):
    """An export could not be built from the stored objects."""


class MinioSource:
    """ObjectSource over one bucket of a minio client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def open(self, object_key: str) -> ObjectStream:
        """Open the object for reading; the caller closes it."""
        response: ObjectStream = self._client.get_object(self._bucket, object_key)
        return response


def _close(stream: ObjectStream) -> None:
    stream.close()
    # urllib3 responses go back to the pool only when released explicitly.
    release = getattr(stream, "release_conn", None)
    if callable(release):
        release()


def iter_object(source: ObjectSource, image: ExportImage, *, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """Yield the bytes of one stored image and check that its size is the recorded one.

    Raises ArchiveError when the object is shorter or longer than `image.size`:
    a truncated read must fail the export rather than ship a broken file.
    """
    stream = source.open(image.object_key)
    read = 0
    try:
        while chunk := stream.read(chunk_size):
            read += len(chunk)
            yield chunk
    finally:
        _close(stream)
    if image.size >= 0 and read != image.size:
        raise ArchiveError(f"object {image.object_key!r} has {read} bytes, expected {image.size}")


def build_originals(case: ExportCase, *, source: ObjectSource, progress: Progress | None = None) -> Iterator[bytes]:
    """Yield the originals zip: `case.txt` and every image byte-identical under its folder.

    Images are stored (DICOM, PNG and JPEG barely deflate, and storing keeps
    them byte-identical and cheap); ZIP64 records are used where sizes or
    offsets need them. Objects are read in 1 MiB pieces as the zip is consumed.

    Raises UnsupportedMediaType before any output for an image that is not
    DICOM, PNG or JPEG, and ArchiveError if a stored object does not match.
    """
    entries = list(originals_entries(case))
    total = len(entries)
    zs = ZipStream(compress_type=ZIP_STORED)
    zs.comment = f"Casebook case {case.case_id}"
    zs.add(case_text(case).encode("utf-8"), "case.txt", compress_type=ZIP_DEFLATED)
    for number, entry in enumerate(entries, start=1):
        zs.add(
            _counted(iter_object(source, entry.image), number, total, progress),
            entry.path,
            size=entry.image.size if entry.image.size >= 0 else None,
        )
    if progress is not None:
        progress(0, total)
    yield from zs


def _counted(chunks: Iterator[bytes], number: int, total: int, progress: Progress | None) -> Iterator[bytes]:
    yield from chunks
    if progress is not None:
        progress(number, total)


def build_presentation(
    cases: Sequence[ExportCase],
    *,
    source: ObjectSource,
    progress: Progress | None = None,
    title: str | None = None,
    max_edge: int = DEFAULT_MAX_EDGE,
    fmt: FrameFormat = "jpeg",
) -> Iterator[bytes]:
    """Yield the offline presentation: one self-contained HTML file for a case or a playlist.

    Each image is read, rendered to display frames and embedded before the
    next is opened, so memory stays bounded whatever the case size. An image
    that cannot be rendered shows a notice in its stack.

    Raises ValueError for an empty list of cases.
    """

    def frames(image: ExportImage) -> Iterator[Frame]:
        stream = source.open(image.object_key)
        try:
            yield from render_image(stream, image.media_type, max_edge=max_edge, fmt=fmt)
        finally:
            _close(stream)

    return presentation_chunks(cases, frames=frames, progress=progress, title=title)


@dataclass(frozen=True)
class UploadResult:
    """What was stored: size in bytes and SHA-256 of the whole object."""

    size: int
    sha256: str


class _ChunkReader:
    """A read()-able view of a chunk iterator that hashes and counts what passes through.

    read(n) returns exactly n bytes until the end, so minio assembles each
    part with one copy instead of growing it chunk by chunk.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(self._iter_all())
        out = bytearray()
        while len(out) < size:
            if not self._pending:
                try:
                    self._pending = memoryview(next(self._chunks))
                except StopIteration:
                    break
                if not self._pending:
                    continue
            take = self._pending[: size - len(out)]
            out += take
            self._pending = self._pending[len(take) :]
        data = bytes(out)
        self._hash.update(data)
        self.size += len(data)
        return data

    def _iter_all(self) -> Iterator[bytes]:
        while chunk := self.read(DEFAULT_PART_SIZE):
            yield chunk

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def upload_stream(
    client: Any,
    bucket: str,
    key: str,
    chunks: Iterable[bytes],
    *,
    part_size: int = DEFAULT_PART_SIZE,
    content_type: str = "application/octet-stream",
    parallel_parts: int = 2,
) -> UploadResult:
    """Stream `chunks` into `bucket/key` as a multipart upload and return its size and SHA-256.

    Nothing is written to disk and at most `parallel_parts + 1` parts are in
    memory at once (minio uploads the previous parts on worker threads while
    the next is being produced). A failure while producing or uploading
    aborts the multipart upload and propagates.
    """
    reader = _ChunkReader(chunks)
    client.put_object(
        bucket,
        key,
        reader,
        length=-1,
        part_size=part_size,
        content_type=content_type,
        num_parallel_uploads=parallel_parts,
    )
    return UploadResult(size=reader.size, sha256=reader.hexdigest())
