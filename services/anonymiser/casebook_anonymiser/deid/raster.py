"""PNG/JPEG de-identification: decode, check for text as shown and contrast-stretched, rebuild.

A JPEG with nothing to redact is rebuilt losslessly from its marker stream (EXIF, XMP, IPTC, ICC,
comments and bytes after EOI dropped; the entropy-coded data untouched), so teaching keeps the
original quality. Anything else is re-encoded from a bare pixel array (a fresh ``Image`` with no
``info``), which drops every metadata block, PNG text chunks and ICC profiles included (viewers
then assume sRGB). EXIF orientation is applied first so the picture still looks upright.
"""

from __future__ import annotations

import warnings
from io import BytesIO
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageOps

from . import ocr as ocr_mod
from . import textcheck
from .codestream import CodestreamError, rewrite_jpeg
from .result import BURNED_IN_TEXT, IDENTIFIER_SURVIVED, INVALID_IMAGE, OCR_UNAVAILABLE, DeidResult, Quarantine

MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}
MAX_PIXELS = 80_000_000  # refuse decompression bombs rather than exhaust memory
JPEG_QUALITY = 95
_METADATA_MARKERS_JPEG = (b"Exif\x00\x00", b"http://ns.adobe.com/xap/", b"Photoshop 3.0", b"ICC_PROFILE")
_METADATA_CHUNKS_PNG = (b"eXIf", b"tEXt", b"iTXt", b"zTXt", b"tIME", b"iCCP")


def _metadata_strings(img: Image.Image) -> set[str]:
    """Text found in the input's metadata: treated as identifiers that must not survive."""
    out: set[str] = set()
    for value in img.info.values():
        if isinstance(value, str):
            out.add(value)
    try:
        exif = img.getexif()
        for value in exif.values():
            if isinstance(value, str):
                out.add(value)
            elif isinstance(value, bytes) and len(value) < 512:
                out.add(value.decode("latin-1", "ignore"))
        for ifd_id in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
            for value in exif.get_ifd(ifd_id).values():
                if isinstance(value, str):
                    out.add(value)
    except Exception:  # noqa: BLE001, S110 - unreadable EXIF is dropped by re-encoding anyway
        pass
    return {s.strip(" \x00") for s in out if len(s.strip(" \x00")) >= 4}


def _normalise_mode(img: Image.Image) -> Image.Image:
    if img.mode in ("L", "RGB"):
        return img
    if img.mode in ("I;16", "I;16B", "I", "F"):
        arr = np.asarray(img)
        return Image.fromarray(ocr_mod.to_uint8(arr), mode="L")
    if img.mode in ("RGBA", "LA", "P", "PA"):
        # Flatten transparency onto black: hidden pixels under alpha must not come back.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def deidentify_raster(data: bytes, fmt: str, ocr: bool) -> DeidResult:
    media_type = MEDIA_TYPES[fmt]
    flags: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(BytesIO(data))
            img: Image.Image = opened
            if opened.format != fmt:
                raise Quarantine(INVALID_IMAGE, f"content is {opened.format}, not {fmt}")
            if getattr(img, "n_frames", 1) != 1:
                raise Quarantine(INVALID_IMAGE, "animated images are not accepted")
            if img.width * img.height > MAX_PIXELS:
                raise Quarantine(INVALID_IMAGE, "image too large")
            secrets = _metadata_strings(img)
            orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
            img.load()
            img = ImageOps.exif_transpose(img) or img
            img = _normalise_mode(img)
    except Quarantine:
        raise
    except Exception as exc:
        raise Quarantine(INVALID_IMAGE, str(exc)) from exc

    if not ocr:
        raise Quarantine(OCR_UNAVAILABLE, "OCR is required for photographs/screenshots but disabled")
    try:
        ocr_mod.get_engine()
    except ocr_mod.OcrUnavailable as exc:
        raise Quarantine(OCR_UNAVAILABLE, str(exc)) from exc
    pixels = np.array(img)
    regions = [r for v in _views(pixels) for r in textcheck.find_regions(v)]
    flags.append("ocr_checked")
    if regions:
        for r in regions:
            pixels[r.y0 : r.y1, r.x0 : r.x1, ...] = 0
        if any(textcheck.find_regions(v) for v in _views(pixels)):
            raise Quarantine(BURNED_IN_TEXT, "text remains after redaction")
        flags.append("burned_in_text_redacted")

    out = b""
    actions = []
    if fmt == "JPEG" and not regions and orientation == 1:
        try:
            out = rewrite_jpeg(data)
            actions.append("frames_rebuilt")
        except CodestreamError:
            out = b""
    clean = Image.fromarray(pixels, mode=img.mode)
    if not out:
        buf = BytesIO()
        save_args: dict[str, Any] = {}
        if fmt == "JPEG":
            save_args.update(quality=JPEG_QUALITY, optimize=True)
        clean.save(buf, format=fmt, **save_args)
        out = buf.getvalue()
        actions.append("reencoded")
    _verify(out, fmt, secrets)
    info = {
        "modality": None,
        "study_uid": None,
        "series_uid": None,
        "series_number": None,
        "series_description": None,
        "instance_number": None,
        "rows": clean.height,
        "columns": clean.width,
        "frames": 1,
        "actions": [*actions, f"metadata_removed:{len(secrets)}"],
        "flags": flags,
        "report": {"kept": ["pixels"], "removed": ["metadata"] if secrets else [], "rewritten": [],
                   "pixels": actions, "text_regions_redacted": [[r.x0, r.y0, r.x1, r.y1] for r in regions]},
    }
    return DeidResult("ready", [], out, media_type, info, sorted(secrets))


def _views(pixels: np.ndarray) -> list[np.ndarray]:
    """The picture as shown and contrast-stretched (faint text on a near-uniform background)."""
    shown = ocr_mod.to_uint8(pixels)
    grey = shown if shown.ndim == 2 else shown[..., :3].mean(axis=2)
    return [shown, textcheck.equalised(grey)]


def _verify(out: bytes, fmt: str, secrets: set[str]) -> None:
    """The re-encoded file must decode, carry no metadata blocks and none of the input's metadata text."""
    check = Image.open(BytesIO(out))
    check.load()
    if check.getexif() or check.info.get("icc_profile"):
        raise Quarantine(IDENTIFIER_SURVIVED, "metadata present after rebuilding")
    markers = _METADATA_MARKERS_JPEG if fmt == "JPEG" else _METADATA_CHUNKS_PNG
    if any(m in out for m in markers):
        raise Quarantine(IDENTIFIER_SURVIVED, "metadata block present after re-encoding")
    lowered = out.lower()
    for s in secrets:
        if s.lower().encode("utf-8", "ignore") in lowered:
            raise Quarantine(IDENTIFIER_SURVIVED, "metadata value present after re-encoding")
