"""A small HTTP client for end-to-end tests: one user talking to the running gateway."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx


class User:
    """A caller with a bearer token (or none)."""

    def __init__(self, base: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base, headers=headers, timeout=60)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(path, json=json, **kw)

    def create_case(self, **fields: Any) -> dict[str, Any]:
        body = {"title": "Osteoid osteoma of the femur", "patient_age": 15, "patient_sex": "male",
                "systems": ["musculoskeletal"], "diagnostic_certainty": "certain",
                "diagnosis": "Osteoid osteoma", "presentation": "Night pain relieved by aspirin.", **fields}
        r = self.post("/v1/cases", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def add_study(self, case_id: str, modality: str = "CT", findings: str = "Lucent cortical nidus.") -> str:
        r = self.post(f"/v1/cases/{case_id}/studies", json={"modality": modality, "findings": findings})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def upload(self, case_id: str, study_id: str, data: bytes, filename: str,
               ctype: str = "application/octet-stream") -> httpx.Response:
        return self.http.post(f"/v1/cases/{case_id}/studies/{study_id}/uploads",
                              files={"file": (filename, io.BytesIO(data), ctype)})

    def wait_images(self, case_id: str, n: int, timeout: float = 120) -> list[dict[str, Any]]:
        """Wait until `n` images of the case reached a terminal state (ready or quarantined)."""
        deadline = time.monotonic() + timeout
        images: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            images = self.get(f"/v1/cases/{case_id}/images").json()
            if len(images) >= n and all(i["status"] in ("ready", "quarantined") for i in images):
                return images
            time.sleep(0.3)
        raise AssertionError(f"images of {case_id} not terminal in {timeout}s: {images}")

    def wait_status(self, case_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        case: dict[str, Any] = {}
        while time.monotonic() < deadline:
            case = self.get(f"/v1/cases/{case_id}").json()
            if case.get("status") == status:
                return case
            time.sleep(0.3)
        raise AssertionError(f"case {case_id} did not become {status}: {case.get('status')}")


def error_code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


def plain_png(seed: int = 0, size: int = 64) -> bytes:
    """A small PNG without any text in it."""
    from PIL import Image

    im = Image.new("L", (size, size))
    im.putdata([(x * 4 + y * 2 + seed) % 256 for y in range(size) for x in range(size)])
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def sample_file(name: str) -> bytes:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    assert path is not None, name
    with open(str(path), "rb") as f:
        return f.read()


def with_fresh_uids(blobs: list[bytes]) -> list[bytes]:
    """The files with new Study, Series and SOP Instance UIDs (files that shared a study or series still do).

    De-identified UIDs are keyed on the original ones, so two tests uploading the same pydicom file to one
    stack would share a study: a test that reasons about one study's visibility gives its files their own.
    """
    import pydicom
    from pydicom.uid import generate_uid

    mapping: dict[str, str] = {}
    out = []
    for data in blobs:
        ds = pydicom.dcmread(io.BytesIO(data))
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
            old = str(getattr(ds, keyword, "")) or keyword
            setattr(ds, keyword, mapping.setdefault(old, generate_uid()))
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        buf = io.BytesIO()
        ds.save_as(buf)
        out.append(buf.getvalue())
    return out


def eventually(check: Any, timeout: float = 60, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
