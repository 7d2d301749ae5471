"""Display frames from stored images: DICOM pixel data (modality LUT, VOI window, palette, multi-frame) or
PNG/JPEG as 8-bit grey or RGB images, encoded as PNG or JPEG.

One pipeline for every place that shows an image: the export service's offline presentations and the
gateway's DICOMweb `rendered` resources.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Protocol

import numpy as np
from PIL import Image
from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import iter_pixels, pixel_array

FrameFormat = Literal["png", "jpeg"]
VoiFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]

DEFAULT_MAX_EDGE = 1024
JPEG_QUALITY = 90
# The largest edge a rendered frame is shown at when no viewport is asked for (native size up to this).
MAX_NATIVE_EDGE = 4096

# Attributes the per-frame display pipeline needs; the rest of a (possibly
# large) header is not copied into each frame's working dataset.
_DISPLAY_KEYWORDS = (
    "BitsStored",
    "PixelRepresentation",
    "PhotometricInterpretation",
    "RescaleSlope",
    "RescaleIntercept",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
)
_DECODE_ERRORS = (InvalidDicomError, AttributeError, KeyError, NotImplementedError, RuntimeError, ValueError,
                  TypeError, IndexError, OverflowError, EOFError)


class RenderError(ValueError):
    """An image could not be decoded or displayed."""


class Readable(Protocol):
    """The part of a binary stream that rendering reads."""

    def read(self, amt: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class Window:
    """An explicit VOI window (PS3.18 `window=center,width,function`), overriding what the object stores."""

    center: float
    width: float
    function: VoiFunction = "LINEAR"


@dataclass(frozen=True)
class Viewport:
    """PS3.18 `viewport=vw,vh[,sx,sy,sw,sh]`: the output fits in `width` x `height`; the optional source
    rectangle (in pixels of the frame) is cropped first."""

    width: int
    height: int
    source: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class Frame:
    """One encoded display frame."""

    data: bytes
    media_type: str
    width: int
    height: int


def render_dicom(fp: BinaryIO, *, max_edge: int = DEFAULT_MAX_EDGE, fmt: FrameFormat = "jpeg") -> Iterator[Frame]:
    """Yield each frame of a seekable DICOM file as an encoded display frame.

    Raises RenderError if the file is not DICOM or its pixel data cannot be decoded.
    """
    try:
        header = dcmread(fp, stop_before_pixels=True)
        window = _stack_range(fp, header, max_edge) if _needs_auto_window(header) else None
        fp.seek(0)
        for index, arr in enumerate(iter_pixels(fp)):
            yield encode_frame(to_display(arr, header, index=index, window=window, max_edge=max_edge), fmt)
    except (InvalidDicomError, AttributeError, KeyError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise RenderError(f"cannot render DICOM image: {exc}") from exc


def _needs_auto_window(ds: Dataset) -> bool:
    if not _is_monochrome(ds) or ds.get("VOILUTSequence"):
        return False
    first = _frame_dataset(ds, 0)
    return first.get("WindowCenter") is None or first.get("WindowWidth") is None


def _stack_range(fp: BinaryIO, ds: Dataset, max_edge: int) -> tuple[float, float]:
    low, high = np.inf, -np.inf
    fp.seek(0)
    # Without a stored window the whole stack shares one range, so that
    # scrolling does not make the brightness jump from frame to frame.
    for index, arr in enumerate(iter_pixels(fp)):
        values = apply_modality_lut(_reduce(arr, ds, max_edge), _frame_dataset(ds, index))
        # Percentiles ignore the few extreme pixels (padding, metal) that
        # would otherwise wash the image out.
        lo, hi = np.percentile(values, (0.5, 99.5))
        low, high = min(low, float(lo)), max(high, float(hi))
    if not np.isfinite(low) or high <= low:
        return (0.0, 1.0) if not np.isfinite(low) else (low, low + 1.0)
    return low, high


def _is_monochrome(ds: Dataset) -> bool:
    return str(ds.get("PhotometricInterpretation", "MONOCHROME2")).startswith("MONOCHROME")


def _frame_dataset(ds: Dataset, index: int) -> Dataset:
    """A small dataset with the display attributes that apply to frame `index`.

    Enhanced multi-frame objects keep rescale and window values in functional
    groups rather than at the top level; per-frame values win over shared ones.
    """
    out = Dataset()
    if hasattr(ds, "file_meta"):
        # LUTs stored as OW need the transfer syntax to know their byte order.
        out.file_meta = ds.file_meta
    for keyword in _DISPLAY_KEYWORDS:
        if keyword in ds:
            setattr(out, keyword, ds[keyword].value)
    groups: list[Any] = []
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame):
        groups.append(per_frame[index])
    for group in groups:
        for seq_name in ("PixelValueTransformationSequence", "FrameVOILUTSequence"):
            seq = group.get(seq_name)
            if not seq:
                continue
            for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth", "VOILUTFunction"):
                if keyword in seq[0]:
                    setattr(out, keyword, seq[0][keyword].value)
    if "RescaleSlope" in out and "RescaleIntercept" not in out:
        out.RescaleIntercept = 0
    if "RescaleIntercept" in out and "RescaleSlope" not in out:
        out.RescaleSlope = 1
    return out


def _reduce(arr: np.ndarray, ds: Dataset, max_edge: int) -> np.ndarray:
    """Shrink a frame by an integer factor before the float pipeline runs on it.

    A 4k x 4k mammogram would need 128 MB as float64; box-averaging it first
    keeps the work proportional to the output size. Palette indices cannot be
    averaged, so those are subsampled instead.
    """
    height, width = arr.shape[:2]
    factor = max(height, width) // (2 * max_edge)
    if factor < 2:
        return arr
    if str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR":
        return arr[::factor, ::factor]
    h, w = height // factor * factor, width // factor * factor
    blocks = arr[:h, :w].reshape(h // factor, factor, w // factor, factor, *arr.shape[2:])
    reduced = blocks.mean(axis=(1, 3), dtype=np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        reduced = np.rint(reduced)
    out: np.ndarray = reduced.astype(arr.dtype)
    return out


def to_display(
    arr: np.ndarray,
    ds: Dataset,
    *,
    index: int = 0,
    window: tuple[float, float] | None = None,
    max_edge: int = DEFAULT_MAX_EDGE,
    voi: Window | None = None,
) -> Image.Image:
    """Turn one decoded frame into an 8-bit grey or RGB image no larger than `max_edge`.

    Greyscale: modality LUT (rescale), then the stored VOI LUT or window, or
    else `window` as a (low, high) value range; MONOCHROME1 is inverted so that
    it displays like MONOCHROME2. Colour: palette expanded, YBR already
    converted to RGB by the decoder, deep samples scaled to 8 bits. `voi`, when
    given, replaces the stored VOI LUT and window of a greyscale frame.
    """
    arr = _reduce(arr, ds, max_edge)
    if _is_monochrome(ds):
        frame_ds = _frame_dataset(ds, index)
        values = apply_modality_lut(arr, frame_ds)
        grey = _voi_to_8bit(values, _with_voi(frame_ds, voi), window)
        if str(ds.get("PhotometricInterpretation")) == "MONOCHROME1":
            grey = 255 - grey
        image = Image.fromarray(grey, mode="L")
    else:
        if str(ds.get("PhotometricInterpretation")) == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
        image = Image.fromarray(_colour_to_8bit(arr, ds), mode="RGB")
    image.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    return image


def _with_voi(frame_ds: Dataset, voi: Window | None) -> Dataset:
    if voi is None:
        return frame_ds
    for keyword in ("VOILUTSequence", "WindowCenter", "WindowWidth", "VOILUTFunction"):
        if keyword in frame_ds:
            delattr(frame_ds, keyword)
    frame_ds.WindowCenter = voi.center
    frame_ds.WindowWidth = voi.width
    frame_ds.VOILUTFunction = voi.function
    return frame_ds


def _voi_to_8bit(values: np.ndarray, frame_ds: Dataset, window: tuple[float, float] | None) -> np.ndarray:
    if "VOILUTSequence" in frame_ds and frame_ds.VOILUTSequence:
        lut_input = np.rint(values).astype(np.int64) if not np.issubdtype(values.dtype, np.integer) else values
        out = apply_voi_lut(lut_input, frame_ds).astype(np.float32)
        # The output range is that of the LUT's entries; many LUTs declare 16
        # bits but hold 12-bit values, so the descriptor's depth is not used.
        entries, first_map = frame_ds.VOILUTSequence[0].LUTDescriptor[:2]
        every_input = np.arange(first_map, first_map + (entries or 65536), dtype=np.int64)
        lut = apply_voi_lut(every_input, frame_ds)
        return _scale(out, float(lut.min()), float(lut.max()))
    if frame_ds.get("WindowCenter") is not None and frame_ds.get("WindowWidth") is not None:
        # pydicom maps the window onto the range implied by BitsStored and
        # PixelRepresentation; a shim claiming unsigned 8-bit output makes
        # that range exactly 0..255, whatever the stored bit depth.
        shim = Dataset()
        shim.PhotometricInterpretation = "MONOCHROME2"
        shim.BitsStored = 8
        shim.PixelRepresentation = 0
        shim.WindowCenter = frame_ds.WindowCenter
        shim.WindowWidth = frame_ds.WindowWidth
        if "VOILUTFunction" in frame_ds:
            shim.VOILUTFunction = frame_ds.VOILUTFunction
        out = apply_voi_lut(values, shim, prefer_lut=False)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if window is None:
        lo, hi = np.percentile(values, (0.5, 99.5))
        window = (float(lo), float(hi))
    return _scale(values, *window)


def _scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    span = high - low if high > low else 1.0
    scaled = (np.asarray(values, dtype=np.float32) - low) * (255.0 / span)
    out: np.ndarray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return out


def _colour_to_8bit(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.dtype == np.uint8:
        return arr
    # Palette LUTs give 16-bit output; other deep colour uses BitsStored.
    bits = 16 if str(ds.get("PhotometricInterpretation")) == "PALETTE COLOR" else int(ds.get("BitsStored", 16))
    return _scale(arr, 0.0, float(2**bits - 1))


def render_raster(fp: BinaryIO, *, max_edge: int = DEFAULT_MAX_EDGE, fmt: FrameFormat = "jpeg") -> Frame:
    """Decode a PNG or JPEG and re-encode it at most `max_edge` on its longer side.

    Raises RenderError if the data is not a decodable image.
    """
    try:
        with Image.open(fp) as source:
            # JPEG can decode straight at 1/2, 1/4 or 1/8 scale: less memory and time.
            source.draft("RGB" if source.mode not in ("L", "I", "I;16") else "L", (max_edge, max_edge))
            source.load()
            image = _to_display_mode(source)
            image.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RenderError(f"cannot render image: {exc}") from exc
    return encode_frame(image, fmt)


def _to_display_mode(image: Image.Image) -> Image.Image:
    if image.mode in ("L", "RGB"):
        return image.copy()
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(image, dtype=np.float32)
        lo, hi = np.percentile(arr, (0.5, 99.5))
        return Image.fromarray(_scale(arr, float(lo), float(hi)), mode="L")
    if image.mode in ("LA", "RGBA", "PA", "P") and image.mode != "L":
        # Transparent areas are shown on black, like the viewer background.
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def encode_frame(image: Image.Image, fmt: FrameFormat = "jpeg", quality: int = JPEG_QUALITY) -> Frame:
    """Encode a display image as PNG (lossless) or JPEG (quality 90 unless asked otherwise)."""
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", compress_level=6)
        media_type = "image/png"
    else:
        # 4:4:4 keeps thin coloured overlays (Doppler, annotations) sharp.
        options: dict[str, Any] = {"subsampling": 0} if image.mode == "RGB" else {}
        image.save(buffer, format="JPEG", quality=quality, **options)
        media_type = "image/jpeg"
    return Frame(buffer.getvalue(), media_type, image.width, image.height)


def number_of_frames(ds: Dataset) -> int:
    """How many frames a DICOM header declares (1 when it does not say)."""
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def render_dicom_frame(fp: BinaryIO, index: int, *, fmt: FrameFormat = "png", voi: Window | None = None,
                       viewport: Viewport | None = None, quality: int = JPEG_QUALITY) -> Frame:
    """One frame (0-based `index`) of a seekable DICOM file as an encoded display image.

    Without a viewport the frame keeps its native size (up to MAX_NATIVE_EDGE on its longer side); with
    one it is cropped to the viewport's source rectangle and fitted into its width and height. Without
    `voi` the stored window applies, or else the frame's own value range.

    Raises:
        IndexError: `index` is not a frame of the object.
        RenderError: the file is not DICOM, its pixel data cannot be decoded, or the source rectangle
            lies outside the frame.
    """
    try:
        header = dcmread(fp, stop_before_pixels=True)
    except _DECODE_ERRORS as exc:
        raise RenderError(f"cannot read DICOM header: {exc}") from exc
    if "PixelData" not in header and "FloatPixelData" not in header and "DoubleFloatPixelData" not in header:
        fp.seek(0)
        if "PixelData" not in dcmread(fp, specific_tags=["PixelData"]):
            raise RenderError("the object holds no pixel data")
    if not 0 <= index < number_of_frames(header):
        raise IndexError(f"frame {index + 1} is not among the object's {number_of_frames(header)} frames")
    try:
        fp.seek(0)
        arr = pixel_array(fp, index=index)
        rows, cols = arr.shape[:2]
        if viewport is not None and viewport.source is not None:
            sx, sy, sw, sh = viewport.source
            if sx < 0 or sy < 0 or sw <= 0 or sh <= 0 or sx + sw > cols or sy + sh > rows:
                raise RenderError("the viewport's source rectangle lies outside the frame")
            arr = arr[sy:sy + sh, sx:sx + sw]
            rows, cols = arr.shape[:2]
        edge = min(MAX_NATIVE_EDGE, max(rows, cols))
        if viewport is not None:
            edge = min(edge, max(viewport.width, viewport.height))
        image = to_display(arr, header, index=index, max_edge=max(1, edge), voi=voi)
        if viewport is not None:  # fitted into the viewport, enlarged when it is bigger (PS3.18 8.3.5.1.3)
            scale = min(viewport.width / image.width, viewport.height / image.height)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            if size != image.size:
                image = image.resize(size, Image.Resampling.LANCZOS)
    except RenderError:
        raise
    except _DECODE_ERRORS as exc:
        raise RenderError(f"cannot render DICOM frame: {exc}") from exc
    return encode_frame(image, fmt, quality)
