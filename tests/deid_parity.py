"""Both de-identification paths on one input: in memory and streamed file to file must agree exactly.

The streaming path (`deid.stream`, taken by large DICOM uploads) applies the in-memory path's rules
piece by piece; a test that runs an input through `both_paths` holds the two to the same decision,
the same reasons, the same report and byte-identical output.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

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
