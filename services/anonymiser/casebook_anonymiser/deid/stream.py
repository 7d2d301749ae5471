"""Large DICOM objects de-identified file to file: the header in memory, the pixels a frame at a time.

The rules are those of the in-memory path (`dicom.py`): the same reader, builder, pixel rewrite,
text check, redaction and verification, applied to an input read through a memory map and written
straight to its output file. An object of any size costs about one frame (or one 8 MiB piece of
native pixels) of memory instead of several copies of itself, so a 2 GB upload fits a worker.

Steps: the header is parsed with large values left unread; the pixel element is rewritten into a
file of its own (native pixels piece by piece, compressed frames rebuilt one by one, or decoded
frame by frame when they cannot be rebuilt); the header is written and the pixel element appended;
sampled frames of the output are decoded one at a time for the text check; found text is redacted
frame by frame into a new pixel element; the output is verified through a memory map.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments, generate_frames
from pydicom.pixels.utils import iter_pixels, pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian

from . import dicom, textcheck
from . import elements as el
from . import pixels as px
from .allowlist import tag_of
from .build import PIXEL_TAGS
from .codestream import CodestreamError, rewrite_j2k, rewrite_jpeg
from .keys import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, CaseKey
from .reader import elements, read_dataset_file, text_value
from .result import ENCAPSULATED_UNVERIFIABLE, INVALID_DICOM, OCR_UNAVAILABLE, DeidResult, Quarantine

STREAM_MIN_BYTES = 64 * 1024 * 1024  # inputs at least this large take this path (CASEBOOK_DEID_STREAM_BYTES)
DEFER_BYTES = 1024 * 1024  # header values above this are read from the map, not by the parser
MAX_HEADER_VALUE = 16 * 1024 * 1024  # a non-pixel value larger than this is refused (no header needs one)
COPY_BYTES = 8 * 1024 * 1024
_UNDEFINED = 0xFFFFFFFF
_SEQUENCE_END = el.delimiter(el.SEQUENCE_END, 0)


def stream_min_bytes() -> int:
    """Where the streaming path starts (an operator may lower it, e.g. for a small memory limit)."""
    try:
        return max(0, int(os.environ.get("CASEBOOK_DEID_STREAM_BYTES", STREAM_MIN_BYTES)))
    except ValueError:
        return STREAM_MIN_BYTES


class _Pixels:
    """The input's pixel element as the pixel pass writes it to `path` (a complete element: header + value)."""

    def __init__(self, src: Path, fp: BinaryIO, mm: mmap.mmap, path: Path) -> None:
        self.src, self.fp, self.mm, self.view, self.path = src, fp, mm, memoryview(mm), path
        self.encapsulated = False

    def __call__(self, ds: Dataset, ts: UID) -> px.Pixels | None:
        raw = elements(ds).get(tag_of("PixelData"))
        for tag, vr in ((tag_of("FloatPixelData"), "OF"), (tag_of("DoubleFloatPixelData"), "OD")):
            float_raw = elements(ds).get(tag)
            if raw is None and float_raw is not None:
                value = self._value(float_raw)
                need = px.expected_length(ds)
                if len(value) < need:
                    raise Quarantine(INVALID_DICOM, "pixel data shorter than its description")
                self._write(tag, vr, need + need % 2, _slices(value[:need]))
                return px.Pixels(el.Element(vr), ExplicitVRLittleEndian, False, None, [])
        if raw is None:
            return None
        tag = tag_of("PixelData")
        if not ts.is_encapsulated:
            value = self._value(raw)
            actions: list[str] = []
            vr = "OB" if px._int(ds, "BitsAllocated") <= 8 else "OW"
            need = px.expected_length(ds)
            pieces = px.native_chunks(ds, value, ts.is_little_endian, actions,
                                      done=self._release_from(raw.value_tell) if raw.value is None else None)
            self._write(tag, vr, need + need % 2, pieces)
            return px.Pixels(el.Element(vr), ExplicitVRLittleEndian, False, None, actions)
        if raw.length != _UNDEFINED:
            raise Quarantine(INVALID_DICOM, "encapsulated pixel data of defined length")
        rebuilt = self._rebuild(ds, ts, raw.value_tell)
        if rebuilt is not None:
            return rebuilt
        return self._decode(ds)

    def _release_from(self, at: int) -> Callable[[int, int], None]:
        """Drop the map's pages of a range already rewritten, so the process never holds the whole input."""

        def release(start: int, end: int) -> None:
            first = (at + start) // mmap.PAGESIZE * mmap.PAGESIZE
            last = (at + end) // mmap.PAGESIZE * mmap.PAGESIZE
            if last > first:
                self.mm.madvise(mmap.MADV_DONTNEED, first, last - first)

        return release

    def _value(self, raw: RawDataElement) -> memoryview:
        if raw.value is not None:
            return memoryview(raw.value)
        return self.view[raw.value_tell : raw.value_tell + raw.length]

    def _write(self, tag: int, vr: str, length: int, pieces: Iterator[bytes] | Iterator[bytes | memoryview]) -> None:
        head = bytearray()
        el.header(head, tag, vr, length)
        with open(self.path, "wb") as out:
            out.write(head)
            written = 0
            for piece in pieces:
                out.write(piece)
                written += len(piece)
        if written != length:
            raise Quarantine(ENCAPSULATED_UNVERIFIABLE, "frames do not add up to their description")

    def _rebuild(self, ds: Dataset, ts: UID, at: int) -> px.Pixels | None:
        """Compressed frames rebuilt one at a time (the rule of `pixels.rewrite_encapsulated`)."""
        frames_n = max(1, px._int(ds, "NumberOfFrames", 1))
        if frames_n > px.MAX_FRAMES:
            raise Quarantine(ENCAPSULATED_UNVERIFIABLE, "too many frames")
        if ts in px.JPEG_SYNTAXES:
            rewrite = rewrite_jpeg
        elif ts in px.J2K_SYNTAXES:
            rewrite = rewrite_j2k
        else:
            return None
        self.fp.seek(at)
        offsets: list[int] = []
        pos = removed = 0
        head = bytearray()
        el.header(head, tag_of("PixelData"), "OB", _UNDEFINED)
        table = frames_n * 4 if frames_n > 1 else 0
        try:
            with open(self.path, "wb") as out:
                out.write(head + el.delimiter(el.ITEM, table) + b"\0" * table)
                for frame in generate_frames(self.fp, number_of_frames=frames_n):
                    r = rewrite(frame)
                    r = r + b"\x00" if len(r) % 2 else r
                    offsets.append(pos)
                    pos += 8 + len(r)
                    removed += len(frame) - len(r)
                    out.write(el.delimiter(el.ITEM, len(r)) + r)
                out.write(_SEQUENCE_END)
                if len(offsets) != frames_n:
                    return None
                if table:
                    out.seek(len(head) + 8)
                    out.write(b"".join(struct.pack("<L", o) for o in offsets))
        except CodestreamError:
            return None
        except Exception:  # noqa: BLE001 - any framing problem: decode instead (as in memory)
            return None
        self.encapsulated = True
        actions = ["frames_rebuilt"] + (["metadata_segments_removed"] if removed > frames_n else [])
        return px.Pixels(el.Element("OB", fragments=[]), ts, False, None, actions)

    def _decode(self, ds: Dataset) -> px.Pixels:
        """Frames decoded one at a time (lossless) and stored native, as `pixels.decoded_native` does."""
        frames_n = max(1, px._int(ds, "NumberOfFrames", 1))
        try:
            frames = iter_pixels(self.src)
            first = next(frames)
        except BaseException as exc:
            if isinstance(exc, px.FATAL):
                raise
            raise Quarantine(ENCAPSULATED_UNVERIFIABLE, "cannot decode") from exc
        length = first.nbytes * frames_n
        vr = "OB" if first.dtype.itemsize == 1 else "OW"

        def pieces() -> Iterator[bytes]:
            yield _le_bytes(first)
            try:
                for frame in frames:
                    yield _le_bytes(frame)
            except BaseException as exc:
                if isinstance(exc, px.FATAL):
                    raise
                raise Quarantine(ENCAPSULATED_UNVERIFIABLE, "cannot decode") from exc
            yield b"\0" * (length % 2)

        self._write(tag_of("PixelData"), vr, length + length % 2, pieces())
        pi = text_value(ds, "PhotometricInterpretation")
        if px._int(ds, "SamplesPerPixel", 1) == 3 and pi.startswith("YBR"):
            pi = "RGB"  # pydicom converts YCbCr to RGB when it decodes
        return px.Pixels(el.Element(vr), ExplicitVRLittleEndian, True, pi, ["frames_decoded_lossless"])


def _slices(view: memoryview) -> Iterator[bytes | memoryview]:
    for start in range(0, len(view), COPY_BYTES):
        yield view[start : start + COPY_BYTES]
    yield b"\0" * (len(view) % 2)


def _le_bytes(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()


def _load_header_values(ds: Dataset, view: memoryview) -> None:
    """Read the deferred values of everything but the pixels (the builder needs them in memory).

    Raises:
        Quarantine: a non-pixel value too large for any header, or of undefined length.
    """
    table = elements(ds)
    for tag, raw in list(table.items()):
        if not isinstance(raw, RawDataElement) or raw.value is not None or raw.length == 0 or tag in PIXEL_TAGS:
            continue
        if raw.length == _UNDEFINED or raw.length > MAX_HEADER_VALUE:
            raise Quarantine(INVALID_DICOM, "a non-pixel value too large to check")
        table[tag] = raw._replace(value=bytes(view[raw.value_tell : raw.value_tell + raw.length]))


def _write_object(p: dicom.Prepared, pixels_path: Path | None, dst: Path) -> int:
    """Header, then the pixel element copied from its file; returns where the dataset starts."""
    ts = p.pixels.transfer_syntax if p.pixels is not None else ExplicitVRLittleEndian
    sop = p.out[tag_of("SOPInstanceUID")].value.decode("ascii").rstrip("\x00 ")
    head = el.file_meta(p.sop_class, sop, str(ts), IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME)
    body = bytearray(head)
    el.encode(p.out, body, skip=frozenset(t for t in dicom.NATIVE_PIXEL_TAGS if t in p.out))
    p.pixel_offset = len(body) if pixels_path is not None else 0
    with open(dst, "wb") as out:
        out.write(body)
        out.flush()  # the pixels are copied by the kernel, after the buffered header
        if pixels_path is not None:
            with open(pixels_path, "rb") as src:
                size = os.fstat(src.fileno()).st_size
                copied = 0
                while copied < size:
                    copied += os.sendfile(out.fileno(), src.fileno(), copied, min(COPY_BYTES * 8, size - copied))
    return len(head)


def _frame_reader(path: Path) -> textcheck.FrameAt:
    def frame_at(i: int) -> np.ndarray:
        try:
            return pixel_array(path, index=i)
        except BaseException as exc:
            if isinstance(exc, px.FATAL):
                raise
            raise Quarantine(ENCAPSULATED_UNVERIFIABLE, "cannot decode for the text check") from exc

    return frame_at


def _redact(src: Path, regions: list[textcheck.Region], into: Path) -> tuple[str, int]:
    """Every frame of `src` with the regions blacked out, written as a native pixel element to `into`."""
    frames_n = 0
    length = 0
    head_at = 0
    with open(into, "wb") as out:
        placeholder = bytearray()
        el.header(placeholder, tag_of("PixelData"), "OW", 0)
        out.write(placeholder)
        vr = "OW"
        for frame in iter_pixels(src):
            frame = np.array(frame, copy=True)
            for r in regions:
                frame[r.y0 : r.y1, r.x0 : r.x1, ...] = 0
            data = _le_bytes(frame)
            vr = "OB" if frame.dtype.itemsize == 1 else "OW"
            out.write(data)
            length += len(data)
            frames_n += 1
        if length % 2:
            out.write(b"\0")
            length += 1
        head = bytearray()
        el.header(head, tag_of("PixelData"), vr, length)
        out.seek(head_at)
        out.write(head)
    return vr, frames_n


def _verify(p: dicom.Prepared, dst: Path, start: int, encapsulated: bool) -> None:
    """`dicom.verify` on the written file: header bytes, fragment heads and tails, structure through a map."""
    with open(dst, "rb") as fp, mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        header = mm[: p.pixel_offset] if p.pixel_offset else mm[:]
        bulk: Iterator[bytes] = iter(())
        if encapsulated and p.pixel_offset:
            fp.seek(p.pixel_offset + 12)  # past the element header: the offset table item, then the frames
            fragments = generate_fragments(fp)
            next(fragments, None)
            bulk = fragments
        dicom.verify_parts(p, header, _bounded(bulk), mm, start)


def _bounded(fragments: Iterator[bytes]) -> list[bytes]:
    """Only the head and tail of each fragment are searched (see `Secrets.found_in`), so keep only those."""
    from .verify import BULK_HEAD, BULK_TAIL

    return [f if len(f) <= BULK_HEAD + BULK_TAIL else f[:BULK_HEAD] + f[-BULK_TAIL:] for f in fragments]


def deidentify_dicom_file(src: Path, dst: Path, key: CaseKey, ocr: bool) -> DeidResult:
    """De-identify the DICOM file `src` into `dst` (left in place only for a ready result; `data` is None).

    Raises:
        Quarantine: as `dicom.deidentify_dicom` does, for the same reasons.
    """
    work = dst.with_name(dst.name + ".pixels")
    try:
        return _deidentify(src, dst, work, key, ocr)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    finally:
        work.unlink(missing_ok=True)


def _deidentify(src: Path, dst: Path, work: Path, key: CaseKey, ocr: bool) -> DeidResult:
    with open(src, "rb") as fp:
        # The map is left to the collector, not closed here: slices of it may still be referenced (by a
        # traceback, say), and closing a map with live slices raises over the real error.
        mm = mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
        ds = read_dataset_file(fp, len(mm), DEFER_BYTES)
        pixel_pass = _Pixels(src, fp, mm, work)
        _load_header_values(ds, pixel_pass.view)
        p = dicom.prepare_dataset(ds, key, size=len(mm), pixel_pass=pixel_pass)
        del mm
    flags: list[str] = []
    report: dict[str, Any] = {"text_regions_redacted": []}
    start = _write_object(p, work if p.pixels is not None else None, dst)
    encapsulated = pixel_pass.encapsulated
    if p.pixels is not None:
        if not ocr:
            raise Quarantine(OCR_UNAVAILABLE, "the text check is required for every image but disabled")
        redacted = _text_check(p, dst, work, flags, report)
        if redacted is not None:
            start = _write_object(p, work, dst)
            textcheck.recheck_frames(redacted, _frame_reader(dst), int(redacted.get("NumberOfFrames", 1) or 1))
            encapsulated = False
    _verify(p, dst, start, encapsulated)
    return dicom.result_of(p, None, flags, report)


def _text_check(p: dicom.Prepared, dst: Path, into: Path, flags: list[str],
                report: dict[str, Any]) -> Dataset | None:
    """`dicom._text_check` on the file. When text was found, the redacted pixel element is written to
    `into` and the header marked; returns the checked header (to check the redacted object again)."""
    textcheck.require_engine()
    ds_out = dcmread(dst, stop_before_pixels=True)
    frames = int(ds_out.get("NumberOfFrames", 1) or 1)
    regions, n_views, first = textcheck.scan(ds_out, _frame_reader(dst), frames)
    flags.append("ocr_checked")
    if textcheck.near_uniform(ds_out, np.empty((0,)), first):
        flags.append("near_uniform")
    report["views_checked"] = n_views
    if not regions:
        return None
    vr, written = _redact(dst, regions, into)
    if written != frames:
        raise Quarantine(ENCAPSULATED_UNVERIFIABLE, "frames do not add up to their description")
    dicom.mark_redacted(p, ds_out, el.Element(vr), regions, flags, report)
    return ds_out
