"""DICOM de-identification: the output is built from the allow-list, never edited from the input.

The pipeline for one object: read → build the header from the allow-list (``build``) → rewrite the
pixels (``pixels``) → add the de-identification markers → write (``elements``) → check the image
for burned-in text as a viewer shows it, redact and check again (``textcheck``) → verify that no
input identifier survives and that only allow-listed elements were written (``verify``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from . import elements as el
from . import pixels as px
from . import textcheck
from .allowlist import rules, tag_of
from .build import PIXEL_TAGS, Builder
from .keys import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, CaseKey
from .profile import METHOD_CODES, SAFE_PRIVATE_CODE
from .reader import read_dataset, text_value, transfer_syntax
from .result import BURNED_IN_TEXT, INVALID_DICOM, OCR_UNAVAILABLE, UNSUPPORTED_MEDIA, DeidResult, Quarantine
from .verify import check_secrets, check_structure

MEDIA_TYPE = "application/dicom"
UID_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)*")
NON_IMAGE_CLASSES = frozenset({"1.2.840.10008.1.3.10"})  # Media Storage Directory Storage
METHOD = "CASEBOOK DEID ALLOW-LIST 2"
PIXEL_DATA = tag_of("PixelData")
NATIVE_PIXEL_TAGS = tuple(tag_of(k) for k in ("FloatPixelData", "DoubleFloatPixelData", "PixelData"))
CODE_VALUE, CODING_SCHEME, CODE_MEANING = (tag_of(k) for k in ("CodeValue", "CodingSchemeDesignator", "CodeMeaning"))
_GENERATED_TEXT = frozenset(
    tag_of(k) for k in ("PatientName", "PatientID", "PatientIdentityRemoved", "DeidentificationMethod",
                        "LongitudinalTemporalInformationModified", "DeidentificationMethodCodeSequence")
)
# Times of day are left out of the word search: a StudyID that repeats the study time is common and
# a time of day identifies no one; dates are searched in all their written forms.
_SEARCHED_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})


VISIBLE_LIGHT_PREFIX = "1.2.840.10008.5.1.4.1.1.77.1."


@cache
def srgb_profile() -> bytes:
    """A standard sRGB ICC profile (Little CMS through Pillow), written where a colour profile is expected."""
    from PIL import ImageCms

    profile: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return profile


@dataclass
class Prepared:
    """An object after the header and pixel passes, before the text check."""

    out: el.Dataset
    builder: Builder
    pixels: px.Pixels | None
    sop_class: str
    actions: list[str] = field(default_factory=list)
    pixel_offset: int = 0  # where the pixel element starts in the written file (set by `write`)


@cache
def _method_sequence(with_private: bool) -> el.Element:
    codes = list(METHOD_CODES) + ([SAFE_PRIVATE_CODE] if with_private else [])
    items = [{CODE_VALUE: el.text("SH", [v]), CODING_SCHEME: el.text("SH", ["DCM"]), CODE_MEANING: el.text("LO", [m])}
             for v, m in codes]
    return el.Element("SQ", items=items)


def _refuse_early(ds: Dataset) -> str:
    sop_class = text_value(ds, "SOPClassUID")
    if not sop_class:
        raise Quarantine(INVALID_DICOM, "no SOP Class UID")
    if not UID_PATTERN.fullmatch(sop_class) or len(sop_class) > 64:
        raise Quarantine(INVALID_DICOM, "SOP Class UID is not a UID")
    if "Rows" in ds and not any(t in ds._dict for t in PIXEL_TAGS):
        raise Quarantine(INVALID_DICOM, "image pixel description without pixel data (truncated?)")
    if sop_class in NON_IMAGE_CLASSES:
        # A DICOMDIR indexes files by path, and paths are commonly built from patient IDs.
        raise Quarantine(UNSUPPORTED_MEDIA, "media storage directory")
    if text_value(ds, "BurnedInAnnotation").upper() == "YES":
        raise Quarantine(BURNED_IN_TEXT, "BurnedInAnnotation is YES")
    return sop_class


PixelPass = Callable[[Dataset, UID], "px.Pixels | None"]


def _rewrite_in_memory(ds: Dataset, ts: UID) -> px.Pixels | None:
    return px.rewrite(ds, ts, ts.is_little_endian)


def prepare(data: bytes, key: CaseKey) -> Prepared:
    """Header and pixel passes (no text check): the output dataset and what was done."""
    return prepare_dataset(read_dataset(data), key, size=len(data), pixel_pass=_rewrite_in_memory)


def prepare_dataset(ds: Dataset, key: CaseKey, *, size: int, pixel_pass: PixelPass) -> Prepared:
    """The header pass and `pixel_pass` (in memory, or streamed to a file by `stream`) on a parsed input."""
    sop_class = _refuse_early(ds)
    ts = transfer_syntax(ds)
    builder = Builder(key, ts.is_little_endian)
    out = builder.build(ds, top=True)
    builder.finish()
    pixels = pixel_pass(ds, ts)
    if pixels is not None:
        out[PIXEL_DATA if pixels.element.vr in ("OB", "OW") else _float_tag(pixels.element.vr)] = pixels.element
        if pixels.decoded:
            out[tag_of("PlanarConfiguration")] = el.binary("US", (0).to_bytes(2, "little"))
            if pixels.photometric:
                out[tag_of("PhotometricInterpretation")] = el.text("CS", [pixels.photometric])
            if tag_of("PlanarConfiguration") in out and int(ds.get("SamplesPerPixel", 1) or 1) == 1:
                del out[tag_of("PlanarConfiguration")]
    if sop_class.startswith(VISIBLE_LIGHT_PREFIX) and _int(out, "SamplesPerPixel") == 3:
        out[tag_of("ICCProfile")] = el.binary("OB", srgb_profile())
        out[tag_of("ColorSpace")] = el.text("CS", ["SRGB"])
    sop_uid = out.get(tag_of("SOPInstanceUID"))
    if sop_uid is None:
        out[tag_of("SOPInstanceUID")] = el.text("UI", [key.uid("casebook-missing-sop:" + sop_class + str(size))])
    out.update({
        tag_of("PatientName"): el.text("PN", [key.patient_name]),
        tag_of("PatientID"): el.text("LO", [key.patient_id]),
        tag_of("PatientIdentityRemoved"): el.text("CS", ["YES"]),
        tag_of("DeidentificationMethod"): el.text("LO", [METHOD, f"key:{key.key_id}"[:64]]),
        tag_of("DeidentificationMethodCodeSequence"): _method_sequence(builder.private_kept > 0),
        tag_of("LongitudinalTemporalInformationModified"): el.text("CS", ["MODIFIED"]),
    })
    return Prepared(out, builder, pixels, sop_class, list(pixels.actions) if pixels else [])


def _float_tag(vr: str) -> int:
    return tag_of("FloatPixelData") if vr == "OF" else tag_of("DoubleFloatPixelData")


def write(p: Prepared) -> tuple[bytes, int]:
    """The file bytes and where the dataset starts (after the file meta)."""
    ts = p.pixels.transfer_syntax if p.pixels is not None else ExplicitVRLittleEndian
    sop = p.out[tag_of("SOPInstanceUID")].value.decode("ascii").rstrip("\x00 ")
    head = el.file_meta(p.sop_class, sop, str(ts), IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME)
    body = bytearray(head)
    pixel_tags = [t for t in NATIVE_PIXEL_TAGS if t in p.out]
    el.encode(p.out, body, skip=frozenset(pixel_tags))  # the pixel element is the last one
    p.pixel_offset = len(body)
    if not pixel_tags:
        return bytes(body), len(head)
    pixel = p.out[pixel_tags[0]]
    if pixel.fragments is not None:
        el.encode({pixel_tags[0]: pixel}, body)
        return bytes(body), len(head)
    # Native pixels are copied once, straight into the output (they are most of its bytes).
    el.header(body, pixel_tags[0], pixel.vr, len(pixel.value))
    return b"".join((body, pixel.value)), len(head)


def allowed_tags(p: Prepared) -> frozenset[int]:
    extra = {t for t in p.out if (t >> 16) & 1}
    return frozenset(rules()) | frozenset(extra) | {CODE_VALUE, CODING_SCHEME, CODE_MEANING}


def verify(p: Prepared, data: bytes, start: int) -> None:
    """No input identifier in the output, in any spelling; only allow-listed elements written."""
    pixel = p.out.get(PIXEL_DATA)
    bulk = pixel.fragments if pixel is not None and pixel.fragments is not None else []
    verify_parts(p, data[: p.pixel_offset] if p.pixel_offset else data, bulk, data, start)


def verify_parts(p: Prepared, header: bytes, bulk: list[bytes], body: Any, start: int) -> None:
    """`verify` on an output given in parts (the streaming path reads them from its file): the bytes before
    the pixel element, the compressed fragments, and the whole encoded object (bytes or a map of it)."""
    texts = [t for tag, t in el.iter_text({k: v for k, v in p.out.items() if k not in _GENERATED_TEXT},
                                          _SEARCHED_VRS)]
    check_secrets(p.builder.secrets, texts, header, bulk)
    check_structure(body, start, allowed_tags(p))


def _text_check(p: Prepared, data: bytes, flags: list[str], report: dict[str, Any]) -> bytes:
    ds_out, stack, regions, n_views, first = textcheck.check(data)
    flags.append("ocr_checked")
    if textcheck.near_uniform(ds_out, stack, first):
        flags.append("near_uniform")
    report["views_checked"] = n_views
    if not regions:
        return data
    redacted = textcheck.redact(stack, regions)
    frames = int(ds_out.get("NumberOfFrames", 1) or 1)
    textcheck.recheck(ds_out, redacted)
    arr: np.ndarray = redacted if frames > 1 else redacted[0]
    mark_redacted(p, ds_out, px.native_element(arr), regions, flags, report)
    out, _ = write(p)
    return out


def mark_redacted(p: Prepared, ds_out: Dataset, element: el.Element, regions: list[textcheck.Region],
                  flags: list[str], report: dict[str, Any]) -> None:
    """The header of an object whose pixels were redacted: stored native (`element`), colour as RGB."""
    p.out[PIXEL_DATA] = element
    pi = str(ds_out.get("PhotometricInterpretation", "")).strip()
    if pi.startswith("YBR") and int(ds_out.get("SamplesPerPixel", 1) or 1) == 3:
        pi = "RGB"  # decoding converted the colour space; the redacted pixels are stored as RGB
    p.out[tag_of("PhotometricInterpretation")] = el.text("CS", [pi])
    if int(ds_out.get("SamplesPerPixel", 1) or 1) > 1:
        p.out[tag_of("PlanarConfiguration")] = el.binary("US", (0).to_bytes(2, "little"))
    if p.pixels is not None:
        p.pixels.transfer_syntax = ExplicitVRLittleEndian
        p.pixels.element = p.out[PIXEL_DATA]
    report["text_regions_redacted"] = [[r.x0, r.y0, r.x1, r.y1] for r in regions]
    flags.append("burned_in_text_redacted")


def deidentify_dicom(data: bytes, key: CaseKey, ocr: bool) -> DeidResult:
    p = prepare(data, key)
    flags: list[str] = []
    report: dict[str, Any] = {"text_regions_redacted": []}
    out, start = write(p)
    if p.pixels is not None:
        if not ocr:
            raise Quarantine(OCR_UNAVAILABLE, "the text check is required for every image but disabled")
        out = _text_check(p, out, flags, report)
        out, start = write(p)
    verify(p, out, start)
    return result_of(p, out, flags, report)


def result_of(p: Prepared, out: bytes | None, flags: list[str], report: dict[str, Any]) -> DeidResult:
    """The ready result of a verified object (`out` None when it was written to a file)."""
    b = p.builder
    report.update({
        "kept": sorted(b.kept),
        "removed": sorted(f"{k}:{n}" if n > 1 else k for k, n in b.removed.items()),
        "rewritten": sorted(b.rewritten),
        "pixels": p.actions,
    })
    actions = [f"kept:{len(b.kept)}", f"removed:{sum(b.removed.values())}", f"rewritten:{len(b.rewritten)}",
               *p.actions]
    if b.private_kept:
        flags.append("private_retained")
    if b.dates_shifted:
        flags.append("dates_shifted")
    info = _info(p.out, actions, flags)
    info["report"] = report
    return DeidResult("ready", [], out, MEDIA_TYPE, info, sorted(b.secrets.text_ids))


def _text(out: el.Dataset, keyword: str) -> str | None:
    e = out.get(tag_of(keyword))
    return e.value.decode("ascii").rstrip(" \x00") if e is not None and e.items is None else None


def _int(out: el.Dataset, keyword: str) -> int | None:
    e = out.get(tag_of(keyword))
    if e is None:
        return None
    if e.vr == "US":
        return int.from_bytes(e.value[:2], "little")
    try:
        return int(float(e.value.decode("ascii").split("\\")[0].strip(" \x00")))
    except ValueError:
        return None


def _info(out: el.Dataset, actions: list[str], flags: list[str]) -> dict[str, Any]:
    return {
        "modality": _text(out, "Modality"),
        "study_uid": _text(out, "StudyInstanceUID"),
        "series_uid": _text(out, "SeriesInstanceUID"),
        "sop_instance_uid": _text(out, "SOPInstanceUID"),
        "series_number": _int(out, "SeriesNumber"),
        "series_description": _text(out, "SeriesDescription"),
        "instance_number": _int(out, "InstanceNumber"),
        "rows": _int(out, "Rows"),
        "columns": _int(out, "Columns"),
        "frames": _int(out, "NumberOfFrames") or (1 if PIXEL_DATA in out else 0),
        "actions": actions,
        "flags": flags,
    }


def header_pass(data: bytes, key: CaseKey) -> tuple[bytes, Prepared]:
    """Everything but the text check: build, rewrite pixels, write, verify.

    Used where the pixel text check is measured or tested on its own (benchmarks, corpus tests);
    raises Quarantine like the full path.
    """
    p = prepare(data, key)
    out, start = write(p)
    verify(p, out, start)
    return out, p
