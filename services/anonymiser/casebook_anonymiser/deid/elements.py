"""The output model and its writer: elements built by the de-identifier, encoded Explicit VR Little Endian.

An output dataset is a plain ``dict`` of tag -> ``Element``. Values are bytes already in their
final encoding (text padded, numbers little endian), sequences are lists of such dicts, and
encapsulated pixel data is a list of fragments. Nothing from the input reaches the writer unless
a rule built it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pydicom.datadict import tag_for_keyword

LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
TEXT_PAD = {"UI": b"\x00", "OB": b"\x00", "UN": b"\x00"}


@dataclass
class Element:
    """One output element: ``value`` bytes, ``items`` for SQ, ``fragments`` for encapsulated pixels."""

    vr: str
    value: bytes = b""
    items: list[dict[int, Element]] | None = None
    fragments: list[bytes] | None = None
    offsets: list[int] = field(default_factory=list)


Dataset = dict[int, Element]


def text(vr: str, values: list[str]) -> Element:
    """A text element from ASCII values (multi-valued with backslashes), padded to even length."""
    data = "\\".join(values).encode("ascii")
    if len(data) % 2:
        data += TEXT_PAD.get(vr, b" ")
    return Element(vr, data)


def binary(vr: str, data: bytes) -> Element:
    if len(data) % 2:
        data += b"\x00"
    return Element(vr, data)


def delimiter(tag: int, length: int) -> bytes:
    """An item or delimiter header (ITEM, ITEM_END, SEQUENCE_END): tag and 32-bit length, no VR."""
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, length)


def header(out: bytearray, tag: int, vr: str, length: int) -> None:
    out += struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if vr in LONG_LENGTH_VRS:
        out += vr.encode("ascii") + b"\x00\x00" + struct.pack("<L", length)
    else:
        out += vr.encode("ascii") + struct.pack("<H", length)


def encode(ds: Dataset, out: bytearray, *, skip: frozenset[int] = frozenset()) -> None:
    """Append ``ds`` (tags ascending) to ``out``; sequences and pixel fragments use undefined lengths."""
    for tag in sorted(ds):
        if tag in skip:
            continue
        el = ds[tag]
        if el.items is not None:
            header(out, tag, "SQ", UNDEFINED)
            for item in el.items:
                out += delimiter(ITEM, UNDEFINED)
                encode(item, out)
                out += delimiter(ITEM_END, 0)
            out += delimiter(SEQUENCE_END, 0)
        elif el.fragments is not None:
            header(out, tag, "OB", UNDEFINED)
            table = b"".join(struct.pack("<L", o) for o in el.offsets)
            out += delimiter(ITEM, len(table)) + table
            for frag in el.fragments:
                out += delimiter(ITEM, len(frag)) + frag
            out += delimiter(SEQUENCE_END, 0)
        else:
            header(out, tag, el.vr, len(el.value))
            out += el.value


def _meta_tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - keywords above are the standard's
        raise KeyError(keyword)
    return int(tag)


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str, impl_uid: str, impl_name: str) -> bytes:
    """Preamble, prefix and File Meta Information (always Explicit VR Little Endian, PS3.10 7.1)."""
    tag = _meta_tag
    meta: Dataset = {
        tag("FileMetaInformationVersion"): Element("OB", b"\x00\x01"),
        tag("MediaStorageSOPClassUID"): text("UI", [sop_class]),
        tag("MediaStorageSOPInstanceUID"): text("UI", [sop_instance]),
        tag("TransferSyntaxUID"): text("UI", [transfer_syntax]),
        tag("ImplementationClassUID"): text("UI", [impl_uid]),
        tag("ImplementationVersionName"): text("SH", [impl_name]),
    }
    body = bytearray()
    encode(meta, body)
    length = bytearray()
    header(length, tag("FileMetaInformationGroupLength"), "UL", 4)
    length += struct.pack("<L", len(body))
    return b"\x00" * 128 + b"DICM" + bytes(length) + bytes(body)


def iter_text(ds: Dataset, text_vrs: frozenset[str]) -> list[tuple[int, str]]:
    """Every (tag, text) of the given VRs at every depth (for verification)."""
    out: list[tuple[int, str]] = []
    for tag, el in ds.items():
        if el.items is not None:
            for item in el.items:
                out.extend(iter_text(item, text_vrs))
        elif el.vr in text_vrs:
            out.append((tag, el.value.decode("ascii", "replace").rstrip(" \x00")))
    return out
