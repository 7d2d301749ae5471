"""Display frames for the offline presentation: DICOM pixel data or PNG/JPEG as small 8-bit images.

The display pipeline itself (modality LUT, VOI window, palette, multi-frame) is the platform's
`casebook_platform.rendering`, shared with the gateway's DICOMweb `rendered` resources; this module reads
a stored object and picks the pipeline by its media type.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, BinaryIO, cast

from casebook_export.layout import extension_for
from casebook_platform.rendering import (
    DEFAULT_MAX_EDGE,
    Frame,
    FrameFormat,
    Readable,
    RenderError,
    encode_frame,
    render_dicom,
    render_raster,
    to_display,
)

__all__ = ["DEFAULT_MAX_EDGE", "SPOOL_MEMORY_LIMIT", "Frame", "FrameFormat", "Readable", "RenderError",
           "encode_frame", "render_dicom", "render_image", "render_raster", "to_display"]

# Objects up to this size are decoded from memory; larger ones spill to a
# temporary file so that a multi-gigabyte multi-frame object never sits in RAM.
SPOOL_MEMORY_LIMIT = 32 * 1024 * 1024
_COPY_CHUNK = 1024 * 1024


def render_image(
    stream: Readable,
    media_type: str,
    *,
    max_edge: int = DEFAULT_MAX_EDGE,
    fmt: FrameFormat = "jpeg",
) -> Iterator[Frame]:
    """Yield the display frames of one stored image, one at a time.

    A DICOM object yields one frame per DICOM frame (a multi-frame object is a
    stack); a PNG or JPEG yields one frame, re-encoded so that no embedded
    metadata (EXIF, text chunks) is carried over. At most one decoded frame is
    held in memory.

    Raises RenderError if the object cannot be decoded, UnsupportedMediaType
    for a media type other than DICOM, PNG or JPEG.
    """
    ext = extension_for(media_type)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_LIMIT) as spool:
        _copy(stream, spool)
        spool.seek(0)
        fp = cast(BinaryIO, spool)
        if ext == "dcm":
            yield from render_dicom(fp, max_edge=max_edge, fmt=fmt)
        else:
            yield render_raster(fp, max_edge=max_edge, fmt=fmt)


def _copy(stream: Readable, target: IO[bytes]) -> None:
    while chunk := stream.read(_COPY_CHUNK):
        target.write(chunk)
