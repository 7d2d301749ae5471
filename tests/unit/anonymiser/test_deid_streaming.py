"""Large DICOM objects are de-identified file to file (`deid.stream`) with the in-memory path's rules.

Parity: every readable file of pydicom's corpus and a multi-frame object with burned-in text give the
same decision and byte-identical output on both paths (the hard cases run through both paths too, in
test_deid_hard_cases.py and test_deid_burned_in.py). Memory: a multi-frame object many times larger
than the streaming path's working set is de-identified in a child process whose peak memory grows by
a fraction of the object's size (the in-memory path holds several copies of it).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from deid_parity import NAME, both_paths, multiframe, streamed
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset

from casebook_anonymiser.deid import CaseKey, deidentify_to_path


def _save(ds: Dataset, path: Path) -> bytes:
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


@pytest.mark.slow
def test_whole_pydicom_corpus_gives_the_same_result_on_both_paths(key: CaseKey) -> None:
    checked = ready = 0
    for name in sorted(get_testdata_files("*")):
        if os.path.isdir(name):
            continue
        data = Path(name).read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = both_paths(data, key)
        checked += 1
        ready += result.status == "ready"
    assert checked >= 80 and ready >= 50, (checked, ready)  # the corpus really ran through both paths


def test_a_cine_with_text_on_one_frame_is_redacted_identically(key: CaseKey, tmp_path: Path) -> None:
    data = _save(multiframe(12, text_on=5), tmp_path / "cine.dcm")
    result = both_paths(data, key)
    assert result.status == "ready", result.reasons
    assert "burned_in_text_redacted" in result.info["flags"]
    assert "unused_bits_zeroed" in result.info["actions"]
    assert result.data is not None and b"Quillfeather" not in result.data


def test_a_streamed_object_is_valid_dicom_with_every_frame(key: CaseKey, tmp_path: Path) -> None:
    ds = multiframe(40)
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    _save(ds, src)
    result = deidentify_to_path(src, dst, key=key, stream_min=0)
    assert result.status == "ready" and result.data is None
    out = pydicom.dcmread(dst)
    assert out.PatientName != NAME and "Quillfeather" not in str(out.get("StudyDescription", ""))
    want = np.frombuffer(ds.PixelData, np.uint16).reshape(40, 256, 256) & 0x0FFF
    assert np.array_equal(out.pixel_array, want)  # every frame, high bits zeroed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.dcm", "out.dcm"]


def test_a_deferred_value_that_runs_past_the_end_is_truncation(key: CaseKey, tmp_path: Path) -> None:
    data = _save(multiframe(40), tmp_path / "in.dcm")
    result, out = streamed(data[: len(data) - 4096], key)
    assert result.reasons == ["invalid_dicom"] and out is None


def test_a_huge_non_pixel_value_is_refused(key: CaseKey, tmp_path: Path) -> None:
    ds = multiframe(2)
    ds.add_new(0x00091010, "OB", b"\x00" * (17 * 1024 * 1024))  # a private blob larger than any header needs
    data = _save(ds, tmp_path / "in.dcm")
    result, out = streamed(data, key)
    assert result.reasons == ["invalid_dicom"] and out is None


def test_a_quarantined_streamed_object_leaves_no_output(key: CaseKey, tmp_path: Path) -> None:
    ds = multiframe(4)
    ds.BurnedInAnnotation = "YES"
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    _save(ds, src)
    result = deidentify_to_path(src, dst, key=key, stream_min=0)
    assert result.reasons == ["burned_in_text"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.dcm"]


_PEAK = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from casebook_anonymiser.deid import CaseKey, deidentify_to_path
    key = CaseKey(secret=b"test-secret-0123456789abcdef", key_id="k", case_id="c")
    import pydicom, numpy, PIL.Image  # the libraries' own memory is the baseline
    from casebook_anonymiser.deid import ocr; ocr.get_engine()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = deidentify_to_path(Path(sys.argv[1]), Path(sys.argv[2]), key=key, stream_min=int(sys.argv[3]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(r.status, (peak - base) * 1024)
""")


@pytest.mark.slow
def test_streaming_memory_does_not_grow_with_the_object(tmp_path: Path) -> None:
    # 1,600 frames of 256×256×16 bit = 210 MB; the streaming path works a frame or 8 MiB at a time.
    ds = multiframe(1600)
    src = tmp_path / "big.dcm"
    _save(ds, src)
    del ds
    size = src.stat().st_size
    run = subprocess.run([sys.executable, "-c", _PEAK, str(src), str(tmp_path / "out.dcm"), "0"],
                         capture_output=True, text=True, timeout=600, check=True)
    status, grew = run.stdout.split()
    assert status == "ready", run.stderr[-2000:]
    assert int(grew) < size // 3, (int(grew), size)  # the in-memory path needs several times `size`
    with open(tmp_path / "out.dcm", "rb") as out:
        assert out.read(132)[128:] == b"DICM"
    assert (tmp_path / "out.dcm").stat().st_size > size * 0.9


def test_large_values_inside_sequences_give_the_same_result(key: CaseKey) -> None:
    from pydicom.sequence import Sequence

    ds = multiframe(3)
    item = Dataset()
    item.add_new(0x00091010, "LO", "CREATOR")
    item.add_new(0x00091011, "OB", b"Quillfeather" * 200_000)  # 2.4 MB inside a kept sequence: read, not deferred
    item.CodeMeaning = "Quillfeather"
    ds.ReferencedImageSequence = Sequence([item])
    dropped = Dataset()
    dropped.PatientName = "Other^Person"
    dropped.add_new(0x00091011, "OB", b"x" * 3_000_000)
    ds.RequestAttributesSequence = Sequence([dropped])
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    result = both_paths(buf.getvalue(), key)
    assert result.status == "ready", result.reasons
    assert result.data is not None and b"Quillfeather" not in result.data and b"Other" not in result.data
