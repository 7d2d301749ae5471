"""Every image is checked for burned-in text as a viewer would display it.

For each sampled frame the check renders the views a reader could see: the modality LUT, then
each VOI window stored in the file (or a default window when there is none), palette colour
tables applied, colour as colour, and a contrast-stretched view (histogram equalisation) that
shows text a narrow window or a single hot pixel would hide. The text detector runs on every view
and gates recognition: only views where it finds a region are read. Found text is redacted on
every frame and the whole check runs again; text that remains quarantines the image.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut

from . import ocr
from .pixels import FATAL
from .result import BURNED_IN_TEXT, ENCAPSULATED_UNVERIFIABLE, OCR_UNAVAILABLE, Quarantine

MAX_FRAMES_CHECKED = 8  # frames sampled per object: first, last and evenly between
MAX_WINDOWS = 3  # VOI windows taken from the file
DET_MIN_SIDE = 256  # small images are enlarged for the detector; large ones are reduced to
DET_MAX_SIDE = 1600
MIN_TEXT_CHARS = 2


@dataclass(frozen=True)
class Region:
    x0: int
    y0: int
    x1: int
    y1: int


def sample_frames(n: int) -> list[int]:
    if n <= MAX_FRAMES_CHECKED:
        return list(range(n))
    step = (n - 1) / (MAX_FRAMES_CHECKED - 1)
    return sorted({round(i * step) for i in range(MAX_FRAMES_CHECKED)})


def _to_u8(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return ((a.astype(np.float32) - lo) * (255.0 / (hi - lo))).clip(0, 255).astype(np.uint8)


def equalised(a: np.ndarray) -> np.ndarray:
    flat = a.astype(np.float32).ravel()
    lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    bins = 4096
    hist, _ = np.histogram(flat, bins=bins, range=(lo, hi))
    cdf = np.cumsum(hist).astype(np.float32)
    cdf = (cdf - cdf[0]) / max(1.0, cdf[-1] - cdf[0]) * 255.0
    idx = np.clip(((flat - lo) / (hi - lo) * (bins - 1)).astype(np.int32), 0, bins - 1)
    out: np.ndarray = cdf[idx].reshape(a.shape).astype(np.uint8)
    return out


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _many(value: object) -> bool:
    return hasattr(value, "__iter__") and not isinstance(value, (str, bytes))


def views(ds: Dataset, frame: np.ndarray) -> list[np.ndarray]:
    """The uint8 images a reader could see of one frame."""
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    out: list[np.ndarray] = []
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(frame, ds)
        top = float(rgb.max()) or 1.0
        colour = _to_u8(rgb, 0, 255 if top <= 255 else 65535)
        out += [colour, equalised(_luminance(colour))]
        return out
    if frame.ndim == 3:  # RGB (pydicom already converted YCbCr)
        top = 255 if frame.dtype.itemsize == 1 else float((1 << int(ds.get("BitsStored", 8))) - 1)
        colour = _to_u8(frame, 0, top)
        out += [colour, equalised(_luminance(colour))]
        return out
    values = apply_modality_lut(frame, ds).astype(np.float32)
    invert = pi == "MONOCHROME1"
    windows = []
    if "VOILUTSequence" in ds:
        for i in range(min(MAX_WINDOWS, len(ds.VOILUTSequence))):
            windows.append(np.asarray(apply_voi_lut(frame, ds, index=i, prefer_lut=True), np.float32))
    if "WindowCenter" in ds and "WindowWidth" in ds:
        centres, widths = ds.WindowCenter, ds.WindowWidth
        centres = list(centres) if _many(centres) else [centres]
        widths = list(widths) if _many(widths) else [widths]
        for c, w in list(zip(centres, widths, strict=False))[:MAX_WINDOWS]:
            c, w = float(c), max(1.0, float(w))
            out.append(_to_u8(values, c - w / 2, c + w / 2))
    for v in windows:
        out.append(_to_u8(v, float(v.min()), float(v.max())))
    if not out:  # the default window a viewer opens with: 0.5th to 99.5th percentile
        lo, hi = np.percentile(values, (0.5, 99.5))
        out.append(_to_u8(values, float(lo), float(hi) if hi > lo else float(values.max())))
    out.append(equalised(values))
    if invert:
        out = [255 - v for v in out]
    return out


def _scale_for_detector(img: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = img.shape[:2]
    scale = 1.0
    if min(h, w) < DET_MIN_SIDE:
        scale = DET_MIN_SIDE / min(h, w)
    if max(h, w) * scale > DET_MAX_SIDE:
        scale = DET_MAX_SIDE / max(h, w)
    if scale == 1.0:
        return img, 1.0
    from PIL import Image

    pil = Image.fromarray(img)
    resized = pil.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
    return np.asarray(resized), scale


# Views already checked in this process, by digest of their exact pixels: the check is a pure function of
# the view, so identical frames (a cine loop that repeats, copies of one series) are read once. Only digests
# and region coordinates are kept, never pixels.
_SEEN: OrderedDict[bytes, tuple[Region, ...]] = OrderedDict()
SEEN_MAX = 4096


def _digest(img: np.ndarray) -> bytes:
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((img.shape, img.dtype.str)).encode())
    h.update(np.ascontiguousarray(img).data)
    return h.digest()


def find_regions(img: np.ndarray) -> list[Region]:
    """Text regions in one view: the detector gates, recognition confirms.

    A constant view holds no text and is not run through the detector; a view identical to one already
    checked gets that view's answer.
    """
    if img.size == 0 or int(img.min()) == int(img.max()):
        return []
    key = _digest(img)
    seen = _SEEN.get(key)
    if seen is not None:
        _SEEN.move_to_end(key)
        return list(seen)
    regions = _find_regions(img)
    _SEEN[key] = tuple(regions)
    if len(_SEEN) > SEEN_MAX:
        _SEEN.popitem(last=False)
    return regions


def _find_regions(img: np.ndarray) -> list[Region]:
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    scaled, scale = _scale_for_detector(np.ascontiguousarray(img))
    h, w = img.shape[:2]
    regions = []
    for box in ocr.read(scaled):
        if sum(ch.isalnum() for ch in box.text) < MIN_TEXT_CHARS:
            continue
        regions.append(Region(max(0, int(box.x0 / scale)), max(0, int(box.y0 / scale)),
                              min(w, int(np.ceil(box.x1 / scale)) + 1), min(h, int(np.ceil(box.y1 / scale)) + 1)))
    return regions


def _frame(ds_bytes: bytes, index: int, frames: int) -> tuple[Dataset, np.ndarray]:
    ds = dcmread(BytesIO(ds_bytes))
    try:
        arr = ds.pixel_array
    except BaseException as exc:
        if isinstance(exc, FATAL):
            raise
        raise Quarantine(ENCAPSULATED_UNVERIFIABLE, "cannot decode for the text check") from exc
    return ds, arr


def require_engine() -> None:
    """Raises: Quarantine(OCR_UNAVAILABLE) when the text detector cannot run (every image needs it)."""
    try:
        ocr.get_engine()
    except ocr.OcrUnavailable as exc:
        raise Quarantine(OCR_UNAVAILABLE, str(exc)) from exc


def check(output: bytes) -> tuple[Dataset, np.ndarray, list[Region], int, np.ndarray]:
    """Decode the written object and look for text on sampled frames as a viewer shows them.

    Returns the decoded dataset, all frames, the regions found, how many views were checked and the
    first frame's first view (what a reader opens with).
    """
    require_engine()
    ds, arr = _frame(output, 0, 1)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    stack = arr if frames > 1 else arr[None, ...]
    regions, n_views, first = scan(ds, lambda i: stack[i], stack.shape[0])
    return ds, stack, regions, n_views, first


FrameAt = Callable[[int], np.ndarray]


def scan(ds: Dataset, frame_at: FrameAt, frames: int) -> tuple[list[Region], int, np.ndarray]:
    """Text regions on the sampled frames (`frame_at(i)` decodes frame i), views checked, the first view."""
    regions: list[Region] = []
    n_views = 0
    first: np.ndarray | None = None
    for i in sample_frames(frames):
        for view in views(ds, frame_at(i)):
            first = view if first is None else first
            n_views += 1
            regions += find_regions(view)
    assert first is not None  # every frame has at least one view
    return regions, n_views, first


NEAR_UNIFORM_STD = 2.0  # grey levels (of 255) in the view a reader opens with


def near_uniform(ds: Dataset, stack: np.ndarray, first: np.ndarray | None = None) -> bool:
    """Whether the image is blank or nearly so as a reader first sees it (advice for editors, never a block).

    `first` is that view when the caller has it already (`check` returns it)."""
    first = views(ds, stack[0])[0] if first is None else first
    return float(np.asarray(first, np.float32).std()) < NEAR_UNIFORM_STD


def redact(stack: np.ndarray, regions: list[Region]) -> np.ndarray:
    """The union of all regions blacked out on every frame (cine loops repeat overlays)."""
    out = stack.copy()
    for r in regions:
        out[:, r.y0 : r.y1, r.x0 : r.x1, ...] = 0
    return out


def recheck(ds: Dataset, stack: np.ndarray) -> None:
    recheck_frames(ds, lambda i: stack[i], stack.shape[0])


def recheck_frames(ds: Dataset, frame_at: FrameAt, frames: int) -> None:
    """Raises: Quarantine(BURNED_IN_TEXT) when text is still found after redaction."""
    for i in sample_frames(frames):
        for view in views(ds, frame_at(i)):
            if find_regions(view):
                raise Quarantine(BURNED_IN_TEXT, "text remains after redaction")
