"""Both de-identification paths on one input: in memory and streamed file to file must agree exactly.

The streaming path (`deid.stream`, taken by large DICOM uploads) applies the in-memory path's rules
piece by piece; a test that runs an input through `both_paths` holds the two to the same decision,
the same reasons, the same report and byte-identical output.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MultiFrameGrayscaleWordSecondaryCaptureImageStorage, generate_uid

from casebook_anonymiser.deid import CaseKey, DeidResult, deidentify_bytes, deidentify_to_path


def streamed(data: bytes, key: CaseKey, *, ocr: bool = True) -> tuple[DeidResult, bytes | None]:
    """The streaming path's result and output bytes (None when nothing was written)."""
    with tempfile.TemporaryDirectory(prefix="deid-parity-") as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.write_bytes(data)
        result = deidentify_to_path(src, dst, key=key, ocr=ocr, stream_min=0)
        out = dst.read_bytes() if dst.exists() else None
        left = sorted(p.name for p in Path(tmp).iterdir() if p.name not in ("in", "out"))
        assert not left, f"the streaming path left work files behind: {left}"
    return result, out


def both_paths(data: bytes, key: CaseKey, *, ocr: bool = True) -> DeidResult:
    """The in-memory result, after checking that the streaming path gives the same one."""
    memory = deidentify_bytes(data, key=key, ocr=ocr)
    result, out = streamed(data, key, ocr=ocr)
    assert (result.status, result.reasons) == (memory.status, memory.reasons)
    assert out == memory.data, "streamed output differs from the in-memory output"
    assert result.info == memory.info
    assert result.identifiers == memory.identifiers
    return memory


NAME = "Quillfeather^Zebedee"


def multiframe(frames: int, rows: int = 256, cols: int = 256, *, text_on: int | None = None) -> Dataset:
    """A 16-bit (12 stored) multi-frame object with a patient name in its header and optionally on a frame."""
    rng = np.random.default_rng(7)
    stack = (rng.integers(0, 400, size=(frames, rows, cols), dtype=np.uint16) + 1000)
    stack[::2] |= np.uint16(0xF000)  # junk above BitsStored on every other frame
    if text_on is not None:
        img = Image.new("L", (cols, rows), 0)
        ImageDraw.Draw(img).text((10, 10), "JOHN SMITH 1234567", fill=255, font=ImageFont.load_default(size=22))
        stack[text_on] = np.where(np.asarray(img) > 100, np.uint16(4000), stack[text_on] & 0x0FFF)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    ds.SOPClassUID = MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = NAME, "PID98765432", "OT"
    ds.StudyDescription = "Quillfeather follow-up"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 1200, 800
    ds.PixelData = stack.tobytes()
    return ds
