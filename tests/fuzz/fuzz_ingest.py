"""Coverage-guided fuzzing of the DICOM ingest and de-identification path (atheris).

    python tests/fuzz/fuzz_ingest.py CORPUS_DIR -atheris_runs=2000     # a short run (CI)
    make fuzz                                                           # a longer run

Properties: the gateway's recogniser either accepts or raises its own ApiError (never anything else);
de-identification never raises and answers `ready` or `quarantined`; a `ready` DICOM parses again.
A crash is written by libFuzzer as `crash-*`; copy it into `tests/fuzz/regressions/` to keep it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import pydicom

    from casebook_anonymiser.deid import CaseKey, deidentify_bytes
    from casebook_anonymiser.deid import dicom as deid_dicom
    from casebook_anonymiser.deid.result import Quarantine
    from casebook_gateway import ingest
    from casebook_platform import media
    from casebook_platform.errors import ApiError

KEY = CaseKey(secret=b"fuzzing-secret-0123456789", key_id="fuzz", case_id="c_fuzz")
_TMP = Path(tempfile.mkdtemp(prefix="fuzz-"))


def check(data: bytes) -> None:
    path = _TMP / "input"
    path.write_bytes(data)
    kind = media.sniff(data[:media.HEAD_BYTES])
    if kind == "dicom":
        try:
            ingest.validate_dicom(path)
        except ApiError as exc:
            assert exc.code == "invalid_dicom", exc.code
    result = deidentify_bytes(data, key=KEY, ocr=False)
    assert result.status in ("ready", "quarantined"), result.status
    if result.status == "ready":
        assert result.data is not None
        if result.media_type == "application/dicom":
            from io import BytesIO

            pydicom.dcmread(BytesIO(result.data), force=False)
    else:
        assert result.reasons, "a quarantine needs a reason"
    if kind == "dicom":
        # The whole header and pixel path (build, rewrite, write, verify) on every input: without the
        # text check the front door quarantines images before verification runs.
        try:
            out, _ = deid_dicom.header_pass(data, KEY)
        except Quarantine:
            return
        from io import BytesIO

        pydicom.dcmread(BytesIO(out), force=False)


def main() -> None:
    os.environ.setdefault("PYDICOM_NO_DOWNLOAD", "1")
    atheris.Setup(sys.argv, lambda data: check(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
