"""De-identification through the running platform: a seeded DICOM zip comes out `ready` without any
identifier, and an image flagged with burned-in annotation is quarantined with its reason."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pydicom
import pytest
from uploader_files import IDENTIFIERS, SEEDS, seeded_dicom

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_seeded_zip_is_deidentified_and_burned_in_is_quarantined(users: Any) -> None:
    alice = users()
    cid = alice.create_case()["id"]
    sid = alice.add_study(cid)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ct/0001.dcm", seeded_dicom("CT_small.dcm", 1))
        z.writestr("ct/0002.dcm", seeded_dicom("CT_small.dcm", 2))
        z.writestr("mr/0001.dcm", seeded_dicom("MR_small.dcm", 1))
        z.writestr("burned.dcm", seeded_dicom("CT_small.dcm", 9, burned_in=True))
    r = alice.upload(cid, sid, buf.getvalue(), "study.zip", "application/zip")
    assert r.status_code == 202 and len(r.json()["images"]) == 4
    images = alice.wait_images(cid, 4)
    ready = [i for i in images if i["status"] == "ready"]
    quarantined = [i for i in images if i["status"] == "quarantined"]
    assert len(ready) == 3 and len(quarantined) == 1, images
    assert quarantined[0]["reasons"] == ["burned_in_text"] and quarantined[0]["url"] is None
    for image in ready:
        data = alice.get(image["url"]).content
        for value in IDENTIFIERS:
            assert value.encode() not in data, value
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.SOPInstanceUID.startswith("2.25.")
    ct = [i for i in ready if i["series"]["modality"] == "CT"]
    assert len(ct) == 2 and ct[0]["series"]["uid"] == ct[1]["series"]["uid"]  # one series stays one series
    # The owner and editors see what was done to each image, by keyword only; others do not.
    bob, editor = users(), users("editor")
    for image in images:
        path = f"/v1/images/{image['id']}/deid-report"
        report = alice.get(path)
        assert report.status_code == 200, report.text
        doc = report.json()
        assert doc["image_id"] == image["id"] and doc["status"] == image["status"]
        if image["status"] == "ready":
            assert "PixelData" not in doc["removed"] and "Rows" in doc["kept"]
            assert "PatientBirthDate" in doc["removed"] and "InstitutionName" in doc["removed"]
            assert "StudyInstanceUID" in doc["rewritten"] and doc["views_checked"] >= 2
        else:
            assert doc["quarantine_reasons"] == ["burned_in_text"]
        assert not any(v.split("^")[0] in report.text for v in SEEDS.values())
        # A draft is its owner's alone: editors see cases once submitted, other users never see drafts.
        assert editor.get(path).status_code == 404
        assert bob.get(path).status_code == 404
