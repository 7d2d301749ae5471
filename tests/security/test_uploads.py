"""Bad uploads: each answers a clear 4xx with its code, and the gateway keeps serving."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from client import error_code, sample_file

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def target(users: Any) -> tuple[Any, str, str]:
    alice = users()
    cid = alice.create_case()["id"]
    return alice, cid, alice.add_study(cid)


def _zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _still_serving(alice: Any, cid: str) -> None:
    assert alice.get(f"/v1/cases/{cid}").status_code == 200
    assert alice.get("/readyz").status_code == 200


def test_truncated_dicom(target: Any) -> None:
    alice, cid, sid = target
    data = sample_file("CT_small.dcm")
    for cut in (140, 400, len(data) // 2):
        r = alice.upload(cid, sid, data[:cut], "ct.dcm")
        assert r.status_code == 422 and error_code(r) == "invalid_dicom", (cut, r.text)
    _still_serving(alice, cid)


def test_non_dicom_named_dcm_and_mislabelled(target: Any) -> None:
    alice, cid, sid = target
    r = alice.upload(cid, sid, b"hello, I am text" * 20, "scan.dcm", "application/dicom")
    assert r.status_code == 422 and error_code(r) == "invalid_dicom"
    r = alice.upload(cid, sid, b"%PDF-1.7 not an image" * 10, "report.pdf")
    assert r.status_code == 415 and error_code(r) == "unsupported_media"
    r = alice.upload(cid, sid, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "fake.png", "image/png")
    assert r.status_code == 422
    # a real DICOM named .png is recognised by content and accepted
    r = alice.upload(cid, sid, sample_file("MR_small.dcm"), "picture.png", "image/png")
    assert r.status_code == 202
    _still_serving(alice, cid)


def test_zip_bomb_and_ratio(target: Any) -> None:
    alice, cid, sid = target
    bomb = _zip({"a.dcm": b"\x00" * (50 * 1024 * 1024)})  # 50 MB of zeros compresses ~1000:1
    assert len(bomb) < 200_000
    r = alice.upload(cid, sid, bomb, "bomb.zip", "application/zip")
    assert r.status_code == 422 and error_code(r) == "unsafe_archive"
    _still_serving(alice, cid)


def test_path_traversal_and_absolute_names(target: Any) -> None:
    alice, cid, sid = target
    for name in ("../../etc/passwd.dcm", "/abs/evil.dcm", "ok/../../evil.dcm", "C:/windows/evil.dcm"):
        r = alice.upload(cid, sid, _zip({name: sample_file("CT_small.dcm")}), "evil.zip")
        assert r.status_code == 422 and error_code(r) == "unsafe_archive", name
    _still_serving(alice, cid)


def test_ten_thousand_entry_zip(target: Any) -> None:
    alice, cid, sid = target
    r = alice.upload(cid, sid, _zip({f"f{i}.dcm": b"x" for i in range(10_000)}, zipfile.ZIP_STORED), "many.zip")
    assert r.status_code == 422 and error_code(r) == "unsafe_archive"
    _still_serving(alice, cid)


def test_polyglot_preamble_is_zeroed(target: Any) -> None:
    alice, cid, sid = target
    data = bytearray(sample_file("CT_small.dcm"))
    data[:128] = (b"MZ\x90\x00" + b"This program cannot be run in DOS mode." ).ljust(128, b"\x00")
    r = alice.upload(cid, sid, bytes(data), "poly.dcm")
    assert r.status_code == 202
    image = alice.wait_images(cid, 1)[0]
    assert image["status"] == "ready"
    served = alice.get(image["url"]).content
    assert served[:128] == b"\x00" * 128 and b"This program" not in served


@pytest.fixture(scope="module")
def small_gateway(stack: Any, platform: Any) -> Any:
    """A second gateway with a 1 MB upload cap (its own consumer group; effects stay idempotent)."""
    import uuid

    from harness import ServiceProcess

    gw = ServiceProcess(stack, "gateway", port=18186, env={
        "CASEBOOK_MAX_UPLOAD_BYTES": str(1024 * 1024), "CASEBOOK_CONSUMER_GROUP": f"small-{uuid.uuid4().hex[:6]}"})
    gw.start()
    yield gw
    gw.stop()


def test_oversized_upload_is_cut_off_while_streaming(target: Any, small_gateway: Any) -> None:
    from client import User

    alice, cid, sid = target
    same_alice = User(small_gateway.url, alice.http.headers["Authorization"].split(" ", 1)[1])
    r = same_alice.upload(cid, sid, b"\0" * (3 * 1024 * 1024), "big.dcm")
    assert r.status_code == 413 and error_code(r) == "upload_too_large"
    r = same_alice.upload(cid, sid, sample_file("CT_small.dcm"), "small.dcm")
    assert r.status_code == 202
    _still_serving(alice, cid)
    assert same_alice.get("/readyz").status_code == 200


def test_malformed_json_and_multipart(target: Any) -> None:
    alice, cid, sid = target
    r = alice.http.post("/v1/cases", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and error_code(r) == "invalid_request"
    r = alice.http.post(f"/v1/cases/{cid}/studies/{sid}/uploads", content=b"--b\r\nbroken",
                        headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 422
    r = alice.http.post(f"/v1/cases/{cid}/studies/{sid}/uploads", content=b"raw",
                        headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and error_code(r) == "unsupported_media"
    _still_serving(alice, cid)


def test_hostile_text(target: Any) -> None:
    alice, cid, _ = target
    r = alice.post("/v1/cases", json={"title": "x" * 301})
    assert r.status_code == 422
    r = alice.post("/v1/cases", json={"title": "bell\x07"})
    assert r.status_code == 422 and error_code(r) == "invalid_request"
    r = alice.http.patch(f"/v1/cases/{cid}", json={"discussion": "<script>alert(1)</script>"})
    assert r.status_code == 200 and r.json()["discussion"] == "<script>alert(1)</script>"  # stored as text
    assert r.headers["content-type"].startswith("application/json")


def test_deeply_nested_sequences_and_enormous_lengths(target: Any) -> None:
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    alice, cid, sid = target
    ds = pydicom.dcmread(io.BytesIO(sample_file("CT_small.dcm")))
    leaf = Dataset()
    leaf.PatientName = "Deep^Nest"
    for _ in range(60):
        outer = Dataset()
        outer.ReferencedStudySequence = Sequence([leaf])
        leaf = outer
    ds.ReferencedStudySequence = Sequence([leaf])
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    r = alice.upload(cid, sid, buf.getvalue(), "deep.dcm")
    assert r.status_code == 422 and error_code(r) == "invalid_dicom", r.text

    # an element that claims ~2 GB of data the file does not have
    huge = sample_file("CT_small.dcm") + b"\xe1\x7f\x10\x10UN\x00\x00" + (0x7FFFFFF0).to_bytes(4, "little") + b"abc"
    r = alice.upload(cid, sid, huge, "huge.dcm")
    assert r.status_code == 422 and error_code(r) == "invalid_dicom", r.text
    _still_serving(alice, cid)
