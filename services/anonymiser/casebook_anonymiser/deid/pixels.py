"""Pixel data is rewritten, never copied: only the image itself reaches the output.

Native pixels are cut to exactly the frames the header describes (bytes past the last frame are
dropped) and the bits above BitsStored are zeroed. Compressed frames are rebuilt losslessly by
``codestream`` (metadata segments and trailing bytes removed); a frame that cannot be rebuilt is
decoded and stored uncompressed (lossless), and RLE is always decoded because it carries no
markers to rewrite. Anything else is quarantined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels.decoders import base as _decoders
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
)

from . import elements as el
from .allowlist import tag_of
from .codestream import CodestreamError, jp2_header_walk_ends, rewrite_j2k, rewrite_jpeg
from .reader import elements, text_value
from .result import ENCAPSULATED_UNVERIFIABLE, INVALID_DICOM, Quarantine

JPEG_SYNTAXES = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1, JPEGLSLossless,
                           JPEGLSNearLossless})
J2K_SYNTAXES = frozenset({JPEG2000, JPEG2000Lossless, HTJ2K, HTJ2KLossless, HTJ2KLosslessRPCL})
MAX_FRAMES = 10_000
# Exceptions that must stop the process, never be turned into a quarantine. Anything else a decoder raises
# on hostile data is a quarantine: decoders written in Rust (pylibjpeg-rle) report a panic as pyo3's
# PanicException, which derives from BaseException, so catching Exception alone would let it through.
FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)


def _guard_j2k_parameters() -> None:
    """Every pydicom decode of a JPEG 2000 frame first reads the frame's parameters with `get_j2k_parameters`, which
    never returns on a JP2 header holding a box of length 0 (a fuzzed upload held a worker until its time limit).
    The decoder module's name is wrapped once so that such a frame raises, and so is quarantined as undecodable,
    on every path that decodes (the lossless fallback, the text check, frame by frame in the streaming path)."""
    name = "get_j2k_parameters"  # the decoder module's own import of pydicom.pixels.utils' function
    upstream = getattr(_decoders, name)
    if getattr(upstream, "casebook_guarded", False):
        return

    def guarded(codestream: bytes) -> dict[str, object]:
        if not jp2_header_walk_ends(codestream):
            raise CodestreamError("JP2 header box of length 0")
        return dict(upstream(codestream))

    guarded.casebook_guarded = True  # type: ignore[attr-defined]
    setattr(_decoders, name, guarded)


_guard_j2k_parameters()


@dataclass
class Pixels:
    element: el.Element
    transfer_syntax: UID
    decoded: bool  # True when compressed frames were stored uncompressed
    photometric: str | None  # set when decoding changed the photometric interpretation
    actions: list[str]


def _int(ds: Dataset, keyword: str, default: int = 0) -> int:
    """An integer attribute read from its raw bytes (US/IS), without pydicom's conversion."""
    elem = elements(ds).get(tag_of(keyword))
    if elem is None:
        return default
    value = elem.value
    try:
        if isinstance(value, bytes):
            if elem.VR in ("US", "SS") or (elem.VR is None and len(value) == 2 and keyword != "NumberOfFrames"):
                signed = elem.VR == "SS"
                return int.from_bytes(value[:2], "little" if elem.is_little_endian else "big", signed=signed)
            text = value.decode("ascii").strip(" \x00").split("\\")[0]
            return int(float(text)) if text else default
        return int(value if value not in (None, "") else default)
    except (TypeError, ValueError, UnicodeDecodeError):
        return default


def expected_length(ds: Dataset) -> int:
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    bits, samples = _int(ds, "BitsAllocated"), _int(ds, "SamplesPerPixel", 1)
    frames = max(1, _int(ds, "NumberOfFrames", 1))
    n = (rows * cols * frames * samples * bits + 7) // 8
    if text_value(ds, "PhotometricInterpretation") in ("YBR_FULL_422", "YBR_PARTIAL_422"):
        n = n * 2 // 3
    return n


def native_array(ds: Dataset, data: bytes | memoryview, little: bool) -> np.ndarray:
    """The stored values as a flat array of the stored word size (little endian)."""
    bits = _int(ds, "BitsAllocated")
    signed = _int(ds, "PixelRepresentation") == 1
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}").newbyteorder("<" if little else ">")
    return np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("<"))


CHUNK_BYTES = 8 * 1024 * 1024  # native pixels are rewritten in pieces this size (a multiple of every word size)


def rewrite_native(ds: Dataset, data: bytes, little: bool) -> tuple[bytes, list[str]]:
    actions: list[str] = []
    return b"".join(native_chunks(ds, data, little, actions)), actions


def native_chunks(ds: Dataset, data: bytes | memoryview, little: bool, actions: list[str], *,
                  done: Callable[[int, int], None] | None = None) -> Iterator[bytes]:
    """The rewritten native pixels in pieces (the in-memory and the streaming path share this rule).

    Cut to the frames the header describes, bits above BitsStored zeroed (signed values sign-extended
    from the high bit), big endian turned little, padded to even length. `actions` is complete once the
    iterator is exhausted; `done(start, end)` is told each range of `data` that is no longer needed.

    Raises:
        Quarantine: the pixel data is shorter than its description, or of an unsupported word size.
    """
    need = expected_length(ds)
    view = memoryview(data).cast("B")
    if len(view) < need:
        raise Quarantine(INVALID_DICOM, "pixel data shorter than its description")
    if len(view) > need + 1:
        actions.append("trailing_pixel_bytes_removed")
    bits, stored, high = _int(ds, "BitsAllocated"), _int(ds, "BitsStored"), _int(ds, "HighBit")
    transform = bits in (8, 16, 32) and (not little or (0 < stored < bits))
    if not transform and bits not in (1, 8, 16, 32, 64):
        raise Quarantine(INVALID_DICOM, f"BitsAllocated {bits} not supported")
    zeroed = False
    for start in range(0, need, CHUNK_BYTES):
        end = min(need, start + CHUNK_BYTES)
        piece = view[start:end]
        if not transform:
            yield bytes(piece)
        else:
            out, had_unused = _masked(ds, piece, little, bits, stored, high)
            zeroed = zeroed or had_unused
            yield out
        if done is not None:
            done(start, end)
    if zeroed:
        actions.append("unused_bits_zeroed")
    if need % 2:
        yield b"\x00"


def _masked(ds: Dataset, piece: memoryview, little: bool, bits: int, stored: int, high: int) -> tuple[bytes, bool]:
    arr = native_array(ds, piece, little)
    had_unused = False
    if 0 < stored < bits:
        low = max(0, high + 1 - stored)
        mask = ((1 << stored) - 1) << low
        unsigned = arr.view(arr.dtype.str.replace("i", "u"))
        had_unused = bool(np.any(unsigned & ~np.array(mask, dtype=unsigned.dtype)))
        if _int(ds, "PixelRepresentation") == 1 and low == 0:
            # Signed values: keep the sign by extending it from the high bit (what readers do).
            shift = bits - stored
            arr = ((arr.astype(arr.dtype) << shift) >> shift).astype(arr.dtype)
        else:
            arr = (unsigned & np.array(mask, dtype=unsigned.dtype)).view(arr.dtype)
    return arr.tobytes(), had_unused


def rewrite_encapsulated(ds: Dataset, value: bytes, ts: UID) -> Pixels | None:
    """Rebuilt fragments, or None when the frames must be decoded instead."""
    frames_n = max(1, _int(ds, "NumberOfFrames", 1))
    if frames_n > MAX_FRAMES:
        raise Quarantine(ENCAPSULATED_UNVERIFIABLE, "too many frames")
    if ts in JPEG_SYNTAXES:
        rewrite = rewrite_jpeg
    elif ts in J2K_SYNTAXES:
        rewrite = rewrite_j2k
    else:
        return None
    try:
        frames = list(generate_frames(value, number_of_frames=frames_n))
    except Exception:  # noqa: BLE001 - any framing problem: decode instead
        return None
    if len(frames) != frames_n:
        return None
    rebuilt = []
    try:
        for f in frames:
            r = rewrite(f)
            rebuilt.append(r + b"\x00" if len(r) % 2 else r)
    except CodestreamError:
        return None
    offsets, pos = [], 0
    for r in rebuilt:
        offsets.append(pos)
        pos += 8 + len(r)
    removed = sum(len(f) for f in frames) - sum(len(r) for r in rebuilt)
    actions = ["frames_rebuilt"] + (["metadata_segments_removed"] if removed > len(frames) else [])
    element = el.Element("OB", fragments=rebuilt, offsets=offsets if frames_n > 1 else [])
    return Pixels(element, ts, False, None, actions)


def decoded_native(ds: Dataset) -> tuple[np.ndarray, str]:
    """All frames decoded (lossless from the stored data) and the photometric interpretation after decoding."""
    try:
        arr = ds.pixel_array
    except BaseException as exc:
        if isinstance(exc, FATAL):
            raise
        raise Quarantine(ENCAPSULATED_UNVERIFIABLE, "cannot decode") from exc
    pi = str(ds.get("PhotometricInterpretation", "")).strip()
    samples = _int(ds, "SamplesPerPixel", 1)
    if samples == 3 and pi.startswith("YBR"):
        pi = "RGB"  # pydicom converts YCbCr to RGB when it decodes
    return arr, pi


def native_element(arr: np.ndarray) -> el.Element:
    data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
    return el.binary("OB" if arr.dtype.itemsize == 1 else "OW", data)


def rewrite(ds: Dataset, ts: UID, little: bool) -> Pixels | None:
    """The output pixel element for the input dataset's PixelData (None when there is none)."""
    raw = elements(ds).get(tag_of("PixelData"))
    for tag, vr in ((tag_of("FloatPixelData"), "OF"), (tag_of("DoubleFloatPixelData"), "OD")):
        float_raw = elements(ds).get(tag)
        if raw is None and float_raw is not None and isinstance(float_raw.value, bytes):
            need = expected_length(ds)
            data = float_raw.value
            if len(data) < need:
                raise Quarantine(INVALID_DICOM, "pixel data shorter than its description")
            return Pixels(el.binary(vr, data[:need]), ExplicitVRLittleEndian, False, None, [])
    if raw is None:
        return None
    value = raw.value
    if not isinstance(value, bytes):
        raise Quarantine(INVALID_DICOM, "unreadable pixel data")
    if not ts.is_encapsulated:
        data, actions = rewrite_native(ds, value, little)
        vr = "OB" if _int(ds, "BitsAllocated") <= 8 else "OW"
        return Pixels(el.binary(vr, data), ExplicitVRLittleEndian, False, None, actions)
    rebuilt = rewrite_encapsulated(ds, value, ts)
    if rebuilt is not None:
        return rebuilt
    arr, pi = decoded_native(ds)
    return Pixels(native_element(arr), ExplicitVRLittleEndian, True, pi, ["frames_decoded_lossless"])
