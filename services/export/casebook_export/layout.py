"""Names and text of an export: portable file names, the originals layout and `case.txt`."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from casebook_events import credit
from casebook_export.model import (
    MEDIA_DICOM,
    MEDIA_JPEG,
    MEDIA_PNG,
    ExportCase,
    ExportImage,
    ExportSeries,
    ExportStudy,
)

# Bytes, not characters: ext4/APFS cap a component at 255 UTF-8 bytes, and a
# short cap keeps the whole path under Windows' 260-character MAX_PATH even
# when the zip is unpacked a few folders deep.
MAX_COMPONENT_BYTES = 64

_EXTENSIONS = {MEDIA_DICOM: "dcm", MEDIA_PNG: "png", MEDIA_JPEG: "jpg"}

# Windows refuses these stems whatever the extension ("nul.txt" too), in any case,
# and also with superscript digits.
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", "conin$", "conout$"} | {
    f"{prefix}{digit}" for prefix in ("com", "lpt") for digit in "0123456789¹²³"
}

# Anything outside letters, digits and a few punctuation marks becomes a
# separator: this drops the Windows set <>:"/\|?*, control and format
# characters (bidi overrides hide real extensions), and shell-hostile symbols.
_UNSAFE = re.compile(r"[^\w.+\-]+")
_SEPARATOR_RUNS = re.compile(r"-{2,}")


class UnsupportedMediaType(ValueError):
    """An image's media type is not DICOM, PNG or JPEG."""


def safe_name(text: str, *, max_bytes: int = MAX_COMPONENT_BYTES, fallback: str = "untitled") -> str:
    """Return `text` as one path component valid on Windows, macOS and Linux.

    NFKC-normalised (composed, full-width folded), unsafe characters replaced by
    `-`, no leading or trailing dots, dashes or spaces, never a Windows reserved
    name, at most `max_bytes` UTF-8 bytes; `fallback` when nothing is left.
    """
    name = unicodedata.normalize("NFKC", text)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("-", name)
    name = _SEPARATOR_RUNS.sub("-", name).strip(".- _")
    name = _truncate_utf8(name, max_bytes).rstrip(".- _")
    if not name:
        name = fallback
    if name.split(".", 1)[0].lower() in _WINDOWS_RESERVED:
        name = _truncate_utf8(f"_{name}", max_bytes)
    return name


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    # Dropping a partial multi-byte sequence keeps the name valid UTF-8.
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def extension_for(media_type: str) -> str:
    """File extension for an image media type.

    Raises UnsupportedMediaType for anything but DICOM, PNG and JPEG.
    """
    base = media_type.split(";", 1)[0].strip().lower()
    try:
        return _EXTENSIONS[base]
    except KeyError:
        raise UnsupportedMediaType(f"unsupported image media type {media_type!r}") from None


def study_dir(number: int, modality: str) -> str:
    """`study-<n>-<modality>`."""
    return f"study-{number}-{safe_name(modality, max_bytes=16, fallback='unknown')}"


def series_dir(number: int, description: str) -> str:
    """`series-<n>-<description>`."""
    return f"series-{number}-{safe_name(description, max_bytes=48, fallback='untitled')}"


def image_name(number: int, media_type: str) -> str:
    """`<nnnn>.<ext>`, zero-padded so that a plain sort keeps the acquisition order."""
    return f"{number:04d}.{extension_for(media_type)}"


@dataclass(frozen=True)
class ImageEntry:
    """Where one image goes in the originals zip."""

    path: str
    image: ExportImage


def ordered_studies(case: ExportCase) -> list[ExportStudy]:
    """Studies by position; the folder number is the rank, so gaps or duplicates cannot collide."""
    return sorted(case.studies, key=lambda s: s.position)


def ordered_series(study: ExportStudy) -> list[ExportSeries]:
    """Series by position within their study."""
    return sorted(study.series, key=lambda s: s.position)


def originals_entries(case: ExportCase) -> Iterator[ImageEntry]:
    """The images of the originals zip in order, each with its path.

    Raises UnsupportedMediaType before anything is yielded for a bad image.
    """
    for image in case.images():
        extension_for(image.media_type)
    for s_no, study in enumerate(ordered_studies(case), start=1):
        s_dir = study_dir(s_no, study.modality)
        for r_no, series in enumerate(ordered_series(study), start=1):
            r_dir = series_dir(r_no, series.description)
            for i_no, image in enumerate(series.images, start=1):
                yield ImageEntry(f"{s_dir}/{r_dir}/{image_name(i_no, image.media_type)}", image)


def export_filename(case_title: str, suffix: str) -> str:
    """Download name for an export, e.g. `casebook-acute-appendicitis.zip`."""
    return f"casebook-{safe_name(case_title, max_bytes=80, fallback='case')}{suffix}"


def licence_of(case: ExportCase) -> str:
    """The case's licence, CC BY-NC-SA 4.0 unless the case says otherwise."""
    return case.licence.strip() or credit.LICENCE


def licence_line(case: ExportCase) -> str:
    """The licence with its deed address when it is the standard one."""
    return credit.licence_line(licence_of(case))


def attribution_of(case: ExportCase) -> str:
    """The credit line shown with every copy of the case."""
    if case.attribution.strip():
        return clean_text(case.attribution)
    return credit.attribution(clean_text(case.author_name), case.case_id)


def patient_line(case: ExportCase) -> str:
    """`45 years, female`, or what is known of it."""
    parts = []
    if case.patient_age is not None:
        parts.append(f"{case.patient_age} years")
    if case.patient_sex.strip():
        parts.append(clean_text(case.patient_sex))
    return ", ".join(parts) or "not given"


def certainty_label(value: str) -> str:
    """`almost_certain` -> `almost certain`."""
    return clean_text(value).replace("_", " ")


def clean_text(text: str) -> str:
    """Normalised text with one kind of line break and no control characters but tab and newline."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()


def _section(title: str, body: str) -> str:
    return f"{title}\n{'-' * len(title)}\n{clean_text(body) or '(none)'}\n"


def case_text(case: ExportCase) -> str:
    """The `case.txt` of the originals zip: every text field, each study's findings, licence and credit."""
    title = clean_text(case.title) or "Untitled case"
    lines = [
        title,
        "=" * min(len(title), 80),
        "",
        f"Case: {case.case_id}",
        f"Patient: {patient_line(case)}",
        f"Systems: {', '.join(clean_text(s) for s in case.systems) or '(none)'}",
        f"Tags: {', '.join(clean_text(t) for t in case.tags) or '(none)'}",
        f"Diagnosis: {clean_text(case.diagnosis) or '(none)'}",
        f"Diagnostic certainty: {certainty_label(case.diagnostic_certainty) or '(none)'}",
        "",
        _section("Presentation", case.presentation),
    ]
    for s_no, study in enumerate(ordered_studies(case), start=1):
        lines.append(_section(f"Study {s_no}: {clean_text(study.modality) or 'unknown modality'}", study.findings))
        for r_no, series in enumerate(ordered_series(study), start=1):
            count = len(series.images)
            noun = "image" if count == 1 else "images"
            description = clean_text(series.description) or "untitled"
            lines.append(
                f"  Series {r_no}: {description} ({count} {noun}) in {study_dir(s_no, study.modality)}/"
                f"{series_dir(r_no, series.description)}/"
            )
        lines.append("")
    lines += [
        _section("Discussion", case.discussion),
        f"Licence: {licence_line(case)}",
        f"Attribution: {attribution_of(case)}",
        "",
    ]
    return "\n".join(lines)
