"""DICOMweb through the running platform, read with `dicomweb-client`: a case published and approved with
real DICOM files is searched (QIDO-RS), retrieved, its metadata, frames and rendered images read (WADO-RS);
before approval it is 404 to a reader and visible to its owner. Then Orthanc's DICOMweb plugin, a second
and independent implementation, pulls the published study as a client: both agree on the instances and
their bytes."""

from __future__ import annotations

import importlib.util
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from client import User, error_code, eventually, sample_file, with_fresh_uids
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom import dcmread

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

FILES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm")  # the last: 2 frames, RLE, RGB


def _client(user: User) -> DICOMwebClient:
    auth = user.http.headers.get("Authorization")
    return DICOMwebClient(url=str(user.http.base_url).rstrip("/") + "/dicomweb",
                          headers={"Authorization": auth} if auth else None)


def _value(obj: dict[str, Any], tag: str) -> Any:
    return obj[tag]["Value"][0] if obj.get(tag, {}).get("Value") else None


def _studies(user: User, case_id: str) -> list[dict[str, Any]]:
    r = user.get("/dicomweb/studies", params={"case_id": case_id})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/dicom+json"), r.text
    return list(r.json())


@pytest.fixture(scope="module")
def published(platform: Any, tokens: Any) -> Any:
    """A case with CT_small and MR_small, published and approved; the owner's and a reader's clients."""
    base = platform["gateway"].url
    owner, editor = User(base, tokens("dw-owner", "contributor")), User(base, tokens("dw-editor", "editor"))
    reader = User(base, tokens("dw-reader", "contributor"))
    cid = owner.create_case(title="Glioma, DICOMweb")["id"]
    sid = owner.add_study(cid, "MR")
    for name, data in zip(FILES, with_fresh_uids([sample_file(n) for n in FILES]), strict=True):
        assert owner.upload(cid, sid, data, name).status_code == 202
    images = owner.wait_images(cid, len(FILES))
    assert all(i["status"] == "ready" for i in images), images
    # Not yet published: the owner sees the studies (once their headers are indexed), a reader nothing.
    eventually(lambda: sum(_value(s, "00201208") or 0 for s in _studies(owner, cid)) == len(FILES), 60,
               "the owner's instances indexed")
    study_uid = _value(_studies(owner, cid)[0], "0020000D")
    assert _studies(reader, cid) == [] and _studies(User(base, None), cid) == []
    assert reader.get(f"/dicomweb/studies/{study_uid}").status_code == 404
    assert reader.get(f"/dicomweb/studies/{study_uid}/metadata").status_code == 404
    assert owner.get(f"/dicomweb/studies/{study_uid}/metadata").status_code == 200

    assert owner.post(f"/v1/cases/{cid}/publish").status_code == 202
    eventually(lambda: editor.post(f"/v1/moderation/{cid}/claim").status_code == 200, 60, "the case in the queue")
    assert editor.post(f"/v1/moderation/{cid}/approve").status_code == 200
    owner.wait_status(cid, "approved")
    originals = {i["id"]: owner.get(i["url"]).content for i in images}
    yield {"case_id": cid, "owner": owner, "reader": reader, "anonymous": User(base, None), "originals": originals}
    for u in (owner, editor, reader):
        u.http.close()


def test_search_retrieve_metadata_frames_rendered(published: Any) -> None:
    cid, client = published["case_id"], _client(published["anonymous"])
    originals = {dcmread(io.BytesIO(b)).SOPInstanceUID: b for b in published["originals"].values()}

    studies = client.search_for_studies(additional_params={"case_id": cid})
    assert len(studies) == len({dcmread(io.BytesIO(b)).StudyInstanceUID for b in originals.values()})
    total = sum(_value(s, "00201208") for s in studies)
    assert total == len(FILES)
    for s in studies:
        assert _value(s, "00081190").endswith(f"/dicomweb/studies/{_value(s, '0020000D')}")
        assert _value(s, "00201206") >= 1 and _value(s, "00080061")

    seen: dict[str, bytes] = {}
    for s in studies:
        study_uid = _value(s, "0020000D")
        series = client.search_for_series(study_uid)
        for se in series:
            series_uid = _value(se, "0020000E")
            found = client.search_for_instances(study_uid, series_uid)
            assert _value(se, "00201209") == len(found)
            for inst in found:
                sop = _value(inst, "00080018")
                assert sop in originals and _value(inst, "00081190").endswith(f"/instances/{sop}")
        # WADO-RS: the study's instances are the de-identified objects Casebook stores, element for element.
        for ds in client.retrieve_study(study_uid):
            stored = dcmread(io.BytesIO(originals[ds.SOPInstanceUID]))
            assert ds == stored and ds.file_meta.TransferSyntaxUID == stored.file_meta.TransferSyntaxUID
            seen[ds.SOPInstanceUID] = ds.PixelData
        meta = client.retrieve_study_metadata(study_uid)
        assert {m["00080018"]["Value"][0] for m in meta} <= set(originals)
        assert all("7FE00010" not in m and "00083002" in m for m in meta)
    assert set(seen) == set(originals)

    for sop, data in originals.items():
        ds = dcmread(io.BytesIO(data))
        study_uid, series_uid = ds.StudyInstanceUID, ds.SeriesInstanceUID
        one = client.retrieve_instance(study_uid, series_uid, sop)
        assert one == ds
        n = int(ds.get("NumberOfFrames", 1))
        frames = client.retrieve_instance_frames(study_uid, series_uid, sop, frame_numbers=list(range(1, n + 1)))
        pixels = ds.pixel_array if n > 1 else ds.pixel_array[None]
        assert frames == [pixels[i].tobytes() for i in range(n)]
        if n > 1:  # each frame renders on its own
            second = client.retrieve_instance_frames_rendered(study_uid, series_uid, sop, frame_numbers=[n],
                                                              media_types=("image/png",))
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(second))), pixels[n - 1])
        png = client.retrieve_instance_rendered(study_uid, series_uid, sop, media_types=("image/png",),
                                                params={"window": "40,400,linear"})
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size == (ds.Columns, ds.Rows)
        jpeg = client.retrieve_instance_frames_rendered(study_uid, series_uid, sop, frame_numbers=[1],
                                                        media_types=("image/jpeg",),
                                                        params={"viewport": "64,64"})
        small = Image.open(io.BytesIO(jpeg))
        assert small.format == "JPEG" and max(small.size) == 64
        wide = np.asarray(Image.open(io.BytesIO(client.retrieve_instance_rendered(
            study_uid, series_uid, sop, media_types=("image/png",), params={"window": "40,4000,linear"}))))
        grey = str(ds.PhotometricInterpretation).startswith("MONOCHROME")
        assert np.array_equal(np.asarray(image), wide) is not grey, "a window changes grey levels, not colour"


def test_bad_frames_uids_and_parameters(published: Any) -> None:
    anonymous = published["anonymous"]
    ds = dcmread(io.BytesIO(next(iter(published["originals"].values()))))
    inst = f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    for path, status in ((f"{inst}/frames/0", 400), (f"{inst}/frames/1,x", 400), (f"{inst}/frames/2", 404),
                         (f"{inst}/frames/999999999999", 404), (f"{inst}/frames/1/rendered?window=40,0,linear", 422),
                         (f"{inst}/rendered?viewport=0,10", 422), ("/dicomweb/studies/1.2.3.4", 404),
                         ("/dicomweb/studies/not-a-uid/series/x/instances/y/frames/1", 404),
                         ("/dicomweb/studies?NoSuchAttribute=1", 400)):
        r = anonymous.get(path)
        assert r.status_code == status, (path, r.status_code, r.text)
        assert error_code(r), path
    r = anonymous.get(f"{inst}/rendered", headers={"Accept": "image/gif"})
    assert r.status_code == 406 and error_code(r) == "not_acceptable"
    r = anonymous.get(f"{inst}/rendered?window=40,400,linear", headers={"Accept": "image/png,image/*;q=0.8"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert anonymous.get("/dicomweb/studies", params={"StudyInstanceUID": "\x00"}).status_code == 422


def test_unpublished_edit_stays_with_the_owner(published: Any) -> None:
    """Readers see the published revision only: an image uploaded after approval is the owner's alone."""
    owner, reader, cid = published["owner"], published["reader"], published["case_id"]
    sid = owner.get(f"/v1/cases/{cid}").json()["studies"][0]["id"]
    assert owner.upload(cid, sid, sample_file("rtdose_1frame.dcm"), "dose.dcm").status_code == 202
    owner.wait_images(cid, len(FILES) + 1)

    def owner_count() -> int:
        return sum(_value(s, "00201208") or 0 for s in _studies(owner, cid))

    ready = [i for i in owner.get(f"/v1/cases/{cid}/images").json() if i["status"] == "ready"]
    eventually(lambda: owner_count() == len(ready), 60, "the new image indexed")
    assert sum(_value(s, "00201208") for s in _studies(reader, cid)) == len(FILES)
    assert sum(_value(s, "00201208") for s in _studies(published["anonymous"], cid)) == len(FILES)
    # Through its UIDs too: the new image's study is the owner's alone.
    seen = {_value(s, "0020000D") for s in _studies(reader, cid)}
    extra = {_value(s, "0020000D") for s in _studies(owner, cid)} - seen
    assert extra, "the new image is a study of its own"
    for uid in extra:
        assert owner.get(f"/dicomweb/studies/{uid}/metadata").status_code == 200
        assert reader.get(f"/dicomweb/studies/{uid}/metadata").status_code == 404
        assert published["anonymous"].get(f"/dicomweb/studies/{uid}").status_code == 404
        assert reader.get(f"/dicomweb/studies/{uid}/series").json() == []


def _orthanc_class() -> Any:
    """`benchmarks/orthanc.py`'s Orthanc (which installs Debian's orthanc and orthanc-dicomweb when missing)."""
    spec = importlib.util.spec_from_file_location("casebook_bench_orthanc", ROOT / "benchmarks" / "orthanc.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Orthanc


def test_orthanc_pulls_the_published_study_and_agrees(published: Any) -> None:
    anonymous = published["anonymous"]
    client = _client(anonymous)
    base = str(anonymous.http.base_url).rstrip("/")
    stored = {dcmread(io.BytesIO(b)).SOPInstanceUID: b for b in published["originals"].values()}
    studies = [_value(s, "0020000D") for s in client.search_for_studies(additional_params={"case_id":
                                                                                           published["case_id"]})]
    # What dicomweb-client reads from Casebook (WADO-RS), by SOP Instance UID.
    from_casebook = {ds.SOPInstanceUID: ds for uid in studies for ds in client.retrieve_study(uid)}
    with _orthanc_class()(dicomweb_servers={"casebook": f"{base}/dicomweb"}) as orthanc:
        assert orthanc.http.get("/dicom-web/servers").json() == ["casebook"]
        for uid in studies:
            r = orthanc.http.post("/dicom-web/servers/casebook/retrieve",
                                  json={"Resources": [{"Study": uid}], "Synchronous": True})
            assert r.status_code == 200, r.text
        deadline = time.monotonic() + 60
        while len(orthanc.http.get("/instances").json()) < len(stored) and time.monotonic() < deadline:
            time.sleep(0.5)
        pulled: dict[str, bytes] = {}
        for oid in orthanc.http.get("/instances").json():
            data = orthanc.http.get(f"/instances/{oid}/file").content
            pulled[dcmread(io.BytesIO(data)).SOPInstanceUID] = data
        # Orthanc's own DICOMweb server now serves the same study back: its QIDO finds the same instances.
        for uid in studies:
            qido = orthanc.http.get(f"/dicom-web/studies/{uid}/instances").json()
            assert {_value(i, "00080018") for i in qido} == {s for s in stored
                                                            if dcmread(io.BytesIO(stored[s])).StudyInstanceUID == uid}
    assert set(pulled) == set(stored) == set(from_casebook)
    for sop, data in pulled.items():
        # Orthanc stores what Casebook sent, byte for byte: the de-identified object as Casebook keeps it ...
        assert data == stored[sop], f"{sop}: Orthanc's copy differs from Casebook's object"
        # ... and what dicomweb-client parsed from the same WADO-RS answer is that object, element for element.
        assert from_casebook[sop] == dcmread(io.BytesIO(data))
