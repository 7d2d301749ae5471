"""casebook-deid CLI: folder in, outputs named from pseudonymised ids, a line per file, exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from casebook_anonymiser.cli import main

SECRET_ENV = "CASEBOOK_TEST_DEID_SECRET"


@pytest.fixture()
def case_dir(tmp_path: Path) -> Path:
    # Folder and file names carry the patient's name and an original UID, as exports often do.
    root = tmp_path / "case-42"
    (root / "SMITHERS_JOHN").mkdir(parents=True)
    (root / "series2").mkdir()
    ct = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    shutil.copy(str(get_testdata_file("CT_small.dcm")), root / "SMITHERS_JOHN" / f"{ct.SOPInstanceUID}.dcm")
    shutil.copy(str(get_testdata_file("MR_small.dcm")), root / "series2" / "b.dcm")
    return root


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_mirrors_layout_and_reports(
    case_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], workers: str
) -> None:
    monkeypatch.setenv(SECRET_ENV, "cli-secret-0123456789abcdef")
    (case_dir / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    code = main([str(case_dir), str(out), "--secret-env", SECRET_ENV, "--workers", workers])
    printed = capsys.readouterr().out
    assert code == 3
    assert "ok: 2" in printed and "quarantined: 1" in printed
    assert "notes.txt: unsupported_media" in printed
    assert printed.count("  ready ") == 2 and "kept " in printed and "removed " in printed
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(written) == 2
    ct_uid = str(pydicom.dcmread(str(get_testdata_file("CT_small.dcm"))).SOPInstanceUID)
    for p in written:
        rel = str(p.relative_to(out))
        assert "SMITHERS" not in rel and ct_uid not in rel and "series2" not in rel and "b.dcm" not in rel
        ds = pydicom.dcmread(p)
        assert rel == f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
    a, b = (pydicom.dcmread(p) for p in written)
    assert a.PatientName == b.PatientName  # one case key for the folder
    assert not (out / "notes.txt").exists()


def test_cli_all_ok_exit_zero(case_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "cli-secret-0123456789abcdef")
    assert main([str(case_dir), str(tmp_path / "o"), "--secret-env", SECRET_ENV, "--case-id", "c1"]) == 0
    # Without the text check nothing may leave.
    assert main([str(case_dir), str(tmp_path / "p"), "--secret-env", SECRET_ENV, "--no-ocr"]) == 3


def test_cli_usage_errors(case_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    assert main([str(case_dir), str(tmp_path / "o"), "--secret-env", SECRET_ENV]) == 2
    monkeypatch.setenv(SECRET_ENV, "cli-secret-0123456789abcdef")
    assert main([str(tmp_path / "missing"), str(tmp_path / "o"), "--secret-env", SECRET_ENV]) == 2
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
