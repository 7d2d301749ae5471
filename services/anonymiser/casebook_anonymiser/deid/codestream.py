"""Lossless rebuild of compressed frames: the marker stream is rewritten, never re-encoded.

JPEG (baseline, extended, lossless) and JPEG-LS frames keep only the segments a decoder needs
(tables, frame and scan headers, restart intervals, the entropy-coded data); application segments
(APPn: JFIF, EXIF, XMP, ICC, IPTC), comments and anything after EOI are dropped. The Adobe APP14
segment is rebuilt with nothing but its colour-transform byte, because decoders need it to know
the colour space. JPEG 2000 codestreams lose their COM segments (main and tile-part headers, with
Psot corrected) and anything after EOC; a JP2 file is reduced to its codestream.
"""

from __future__ import annotations

import re
import struct


class CodestreamError(ValueError):
    """The frame cannot be rebuilt safely (the caller decodes it or quarantines the object)."""


# Markers without a length field.
_STANDALONE = frozenset({0xD8, 0xD9, 0x01, *range(0xD0, 0xD8)})
# Segments a JPEG/JPEG-LS decoder needs.
_KEEP = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF,
                   0xC4, 0xCC, 0xDB, 0xDD, 0xDC, 0xF7, 0xF8, 0xDE, 0xDF})
_ADOBE = 0xEE


def rewrite_jpeg(frame: bytes) -> bytes:
    """SOI, the decoding segments, each scan's entropy-coded data, EOI: nothing else."""
    if frame[:2] != b"\xff\xd8":
        raise CodestreamError("no SOI")
    out = bytearray(b"\xff\xd8")
    pos, n = 2, len(frame)
    while pos < n:
        if frame[pos] != 0xFF:
            raise CodestreamError("expected a marker")
        while pos < n and frame[pos] == 0xFF:
            pos += 1  # fill bytes
        if pos >= n:
            raise CodestreamError("truncated marker")
        marker = frame[pos]
        pos += 1
        if marker == 0xD9:
            out += b"\xff\xd9"
            return bytes(out)  # anything after EOI is dropped
        if marker in _STANDALONE:
            continue
        if pos + 2 > n:
            raise CodestreamError("truncated segment")
        (length,) = struct.unpack_from(">H", frame, pos)
        if length < 2 or pos + length > n:
            raise CodestreamError("segment runs past the end")
        segment = frame[pos + 2 : pos + length]
        end = pos + length
        if marker == 0xDA:  # SOS: header, then entropy-coded data up to the next real marker
            out += b"\xff\xda" + frame[pos:end]
            scan_end = _entropy_end(frame, end, jpeg_ls=False)
            out += frame[end:scan_end]
            pos = scan_end
            continue
        if marker in _KEEP:
            out += bytes((0xFF, marker)) + frame[pos:end]
        elif marker == _ADOBE and segment[:5] == b"Adobe" and len(segment) >= 12:
            out += b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00" + segment[11:12]
        elif not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            raise CodestreamError(f"unexpected marker FF{marker:02X}")
        pos = end
    raise CodestreamError("no EOI")


# The first marker after entropy-coded data: FF followed by a marker code. FF00 (JPEG byte stuffing),
# FF with a byte below 0x80 (JPEG-LS bit stuffing), RSTn (FFD0-FFD7) and fill bytes (FFFF) are data.
_MARKER_AFTER_SCAN = re.compile(rb"\xff[\x80-\xcf\xd8-\xfe]")


def _entropy_end(frame: bytes, pos: int, jpeg_ls: bool) -> int:
    """Index of the first marker after the entropy-coded data that starts at ``pos``."""
    m = _MARKER_AFTER_SCAN.search(frame, pos)
    if m is None:
        raise CodestreamError("scan without end")
    return m.start()


_J2K_SOC, _J2K_SOT, _J2K_SOD, _J2K_EOC, _J2K_COM = 0xFF4F, 0xFF90, 0xFF93, 0xFFD9, 0xFF64
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


def rewrite_j2k(frame: bytes) -> bytes:
    """A JPEG 2000 codestream without COM segments and without bytes after EOC."""
    if frame.startswith(_JP2_SIGNATURE):
        frame = _jp2_codestream(frame)
    if frame[:2] != b"\xff\x4f":
        raise CodestreamError("no SOC")
    out = bytearray(b"\xff\x4f")
    pos, n = 2, len(frame)
    # Main header: marker segments until the first SOT.
    while True:
        if pos + 4 > n:
            raise CodestreamError("truncated main header")
        (marker, length) = struct.unpack_from(">HH", frame, pos)
        if marker == _J2K_SOT:
            break
        if marker >> 8 != 0xFF or length < 2 or pos + 2 + length > n:
            raise CodestreamError("bad main header segment")
        if marker != _J2K_COM:
            out += frame[pos : pos + 2 + length]
        pos += 2 + length
    # Tile-parts.
    while True:
        if pos + 2 > n:
            raise CodestreamError("truncated tile-part")
        (marker,) = struct.unpack_from(">H", frame, pos)
        if marker == _J2K_EOC:
            out += b"\xff\xd9"
            return bytes(out)
        if marker != _J2K_SOT or pos + 12 > n:
            raise CodestreamError("expected SOT")
        (lsot, isot, psot, tpsot, tnsot) = struct.unpack_from(">HHLBB", frame, pos + 2)
        start = pos
        tile_end = pos + psot if psot else _find_eoc(frame, pos)
        if tile_end > n:
            raise CodestreamError("tile-part runs past the end")
        header = bytearray()
        q = pos + 2 + lsot
        while True:
            if q + 2 > tile_end:
                raise CodestreamError("tile-part without SOD")
            (m,) = struct.unpack_from(">H", frame, q)
            if m == _J2K_SOD:
                break
            (length,) = struct.unpack_from(">H", frame, q + 2)
            if m >> 8 != 0xFF or length < 2 or q + 2 + length > tile_end:
                raise CodestreamError("bad tile-part header segment")
            if m != _J2K_COM:
                header += frame[q : q + 2 + length]
            q += 2 + length
        body = frame[q:tile_end]  # SOD and the tile data
        new_psot = 12 + len(header) + len(body) if psot else 0
        sot = struct.pack(">HHHLBB", _J2K_SOT, lsot, isot, new_psot, tpsot, tnsot)
        out += sot + frame[start + 12 : start + 2 + lsot]
        out += header + body
        pos = tile_end
        if not psot:
            out += b"\xff\xd9"
            return bytes(out)


def _find_eoc(frame: bytes, pos: int) -> int:
    i = frame.rfind(b"\xff\xd9")
    if i < pos:
        raise CodestreamError("no EOC")
    return i


def jp2_header_walk_ends(codestream: bytes) -> bool:
    """Whether pydicom's walk over a JP2 header's boxes (`get_j2k_parameters`, 3.0) comes to an end.

    It steps from box to box by each box's length until the codestream box; a box of length 0 (which means "to the
    end" in the JP2 format) or a length read from fewer than four bytes past the end keeps it in place for ever.
    """
    if not codestream.startswith(_JP2_SIGNATURE[:8]):
        return True
    offset, total = 12, len(codestream)
    while offset < total:
        if codestream[offset + 4 : offset + 8] == b"jp2c":
            return True
        length = int.from_bytes(codestream[offset : offset + 4], "big")
        if length == 0:
            return False
        offset += length
    return True


def _jp2_codestream(data: bytes) -> bytes:
    pos = 0
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">L", data, pos)
        box = data[pos + 4 : pos + 8]
        header = 8
        if length == 1:
            (length,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif length == 0:
            length = len(data) - pos
        if box == b"jp2c":
            return data[pos + header : pos + length]
        if length < header:
            break
        pos += length
    raise CodestreamError("JP2 file without a codestream")
