"""The pure DICOMweb rules: the header index, QIDO matching and results, multipart framing, parameters."""

from __future__ import annotations

import email.parser
import email.policy
import re
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from casebook_gateway import dicomweb
from casebook_platform.errors import ApiError
from casebook_platform.rendering import Viewport, Window


def _header(name: str) -> dicomweb.HeaderIndex:
    return dicomweb.index_header(dcmread(str(get_testdata_file(name)), stop_before_pixels=True))


def _instance(h: dicomweb.HeaderIndex, seq: int, *, sop: str | None = None, series: str | None = None,
              case: str = "c1") -> dicomweb.Instance:
    attrs = dict(h.attrs)
    if series:
        attrs["0020000E"] = {"vr": "UI", "Value": [series]}
    if sop:
        attrs["00080018"] = {"vr": "UI", "Value": [sop]}
    return dicomweb.Instance(image_id=f"i{seq}", case_id=case, study_uid=h.study_uid, series_uid=series or h.series_uid,
                             sop_uid=sop or h.sop_uid, sop_class_uid=h.sop_class_uid,
                             transfer_syntax_uid=h.transfer_syntax_uid, attrs=attrs, seq=seq)


def test_index_keeps_uids_qido_attributes_and_the_header_without_bulk_data() -> None:
    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    h = _header("CT_small.dcm")
    assert (h.study_uid, h.series_uid, h.sop_uid, h.sop_class_uid) == (
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.SOPClassUID)
    assert h.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID
    assert h.attrs["00080060"] == {"vr": "CS", "Value": ["CT"]}
    assert h.attrs["00280010"]["Value"] == [ds.Rows]
    assert "7FE00010" not in h.meta and h.meta["00083002"]["Value"] == [ds.file_meta.TransferSyntaxUID]
    assert not any(k.startswith("0002") for k in h.meta), "file meta is not part of the dataset's metadata"
    assert all("InlineBinary" not in e or len(e["InlineBinary"]) <= 4 * 1024 for e in h.meta.values())


def test_index_refuses_a_header_without_uids() -> None:
    ds = dcmread(str(get_testdata_file("CT_small.dcm")), stop_before_pixels=True)
    del ds.SOPInstanceUID
    with pytest.raises(ValueError, match="SOPInstanceUID"):
        dicomweb.index_header(ds)
    ds.SOPInstanceUID = "1.2.x"
    with pytest.raises(ValueError):
        dicomweb.index_header(ds)


def test_parse_query_keys_paging_and_includefield() -> None:
    q = dicomweb.parse_query([("PatientID", "CB*"), ("00080060", "CT"), ("limit", "5"), ("offset", "2"),
                              ("includefield", "StudyDescription,00081030,all"), ("case_id", "c1"),
                              ("SliceThickness", "1")], "series")
    assert q.matches == {"00100020": "CB*", "00080060": "CT"}
    assert (q.limit, q.offset, q.include_all) == (5, 2, True)
    assert q.include == ("00081030", "00081030") and q.ignored == ("SliceThickness",)
    assert dicomweb.warning(["SliceThickness", "\u00e9\"x"]) == '299 casebook "ignored: SliceThickness, ?"'

    for bad in ([("limit", "0")], [("limit", "x")], [("offset", "-1")], [("NoSuchKeyword", "1")]):
        with pytest.raises(ApiError) as err:
            dicomweb.parse_query(bad, "study")
        assert err.value.status == 400 and err.value.code == "invalid_request"


@pytest.mark.parametrize(("tag", "wanted", "values", "expected"), [
    ("0020000D", "", ["1.2"], True),
    ("0020000D", "1.2,1.3", ["1.3"], True),
    ("0020000D", "1.2\\1.3", ["1.4"], False),
    ("00100020", "CB*", ["CB12AB"], True),
    ("00100020", "cb?2*", ["CB12AB"], True),
    ("00100020", "CB", ["CB12AB"], False),
    ("00080020", "20200101-20201231", ["20200615"], True),
    ("00080020", "-20191231", ["20200615"], False),
    ("00080020", "20200615", ["20200615"], True),
    ("00080060", "MR,CT", ["CT"], True),
    ("00100010", "casebook^*", ["CASEBOOK^ABC"], True),
])
def test_matching(tag: str, wanted: str, values: list[str], expected: bool) -> None:
    assert dicomweb.matches_value(tag, wanted, values) is expected


def test_unique_keeps_the_earliest_of_a_sop_uid_and_orders_by_series_and_instance_number() -> None:
    h = _header("CT_small.dcm")
    a, dup, b = _instance(h, 3, sop="1.1"), _instance(h, 7, sop="1.1", case="c2"), _instance(h, 5, sop="1.2")
    out = dicomweb.unique([dup, b, a])
    assert [(i.sop_uid, i.seq) for i in out] == [("1.1", 3), ("1.2", 5)]


def test_search_counts_modalities_retrieve_urls_and_paging() -> None:
    ct, mr = _header("CT_small.dcm"), _header("MR_small.dcm")
    found = dicomweb.unique([_instance(ct, 1), _instance(ct, 2, sop="9.1", series="9.2"), _instance(mr, 3)])
    base = "http://x/dicomweb"
    studies = dicomweb.search(found, "study", dicomweb.parse_query([], "study"), base)
    assert len(studies) == 2
    first = studies[0]
    assert first["0020000D"]["Value"] == [ct.study_uid]
    assert first["00201206"]["Value"] == [2] and first["00201208"]["Value"] == [2]
    assert first["00080061"]["Value"] == ["CT"] and first["00081190"]["Value"] == [f"{base}/studies/{ct.study_uid}"]
    assert "00080060" not in first, "a study result has no series attributes unless asked"
    only_mr = dicomweb.search(found, "study", dicomweb.parse_query([("ModalitiesInStudy", "MR")], "study"), base)
    assert [s["0020000D"]["Value"] for s in only_mr] == [[mr.study_uid]]
    paged = dicomweb.search(found, "study", dicomweb.parse_query([("limit", "1"), ("offset", "1")], "study"), base)
    assert [s["0020000D"]["Value"] for s in paged] == [[mr.study_uid]]
    series = dicomweb.search([i for i in found if i.study_uid == ct.study_uid], "series",
                             dicomweb.parse_query([], "series"), base)
    assert [s["00201209"]["Value"] for s in series] == [[1], [1]]
    assert series[1]["00081190"]["Value"] == [f"{base}/studies/{ct.study_uid}/series/9.2"]
    inst = dicomweb.search(found, "instance", dicomweb.parse_query([("SOPInstanceUID", "9.1")], "instance"), base)
    assert len(inst) == 1 and inst[0]["00081190"]["Value"][0].endswith("/series/9.2/instances/9.1")
    assert inst[0]["00080056"]["Value"] == ["ONLINE"]
    # /instances names no study or series: the result carries theirs; under a series only the UIDs above.
    assert inst[0]["0020000E"]["Value"] == ["9.2"] and inst[0]["00080060"]["Value"] == ["CT"]
    assert inst[0]["00100020"] == ct.attrs["00100020"]
    under = dicomweb.search(found[:1], "instance", dicomweb.parse_query([], "instance"), base, path_uids=2)[0]
    assert "0020000D" in under and "0020000E" in under and "00080060" not in under and "00100020" not in under


def test_includefield_beyond_the_index_reads_the_whole_header() -> None:
    ct = _header("CT_small.dcm")
    found = [_instance(ct, 1)]
    q = dicomweb.parse_query([("includefield", "KVP")], "instance")
    assert dicomweb.needs_meta(q, "instance")
    out = dicomweb.search(found, "instance", q, "b", {"i1": ct.meta})
    assert out[0]["00180060"] == ct.meta["00180060"]


def test_multipart_framing_parses_back() -> None:
    b = dicomweb.boundary()
    body = b"".join(dicomweb.multipart(b, [("application/octet-stream", b"\r\n--x"), ("application/dicom", b"abc")]))
    head = f"Content-Type: {dicomweb.multipart_type('application/octet-stream', b)}\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts = [p.get_payload(decode=True) for p in msg.iter_parts()]
    assert parts == [b"\r\n--x", b"abc"]


def test_frames_parameter() -> None:
    assert dicomweb.parse_frames("1") == [0] and dicomweb.parse_frames("3,1,2") == [2, 0, 1]
    for bad in ("", "0", "1,0", "a", "1,,2", "-1", "1" * 13, ",".join(["1"] * 1001)):
        with pytest.raises(ApiError) as err:
            dicomweb.parse_frames(bad)
        assert err.value.status == 400
    dicomweb.check_frames([0, 1], 2)
    with pytest.raises(ApiError) as err:
        dicomweb.check_frames([0, 999_999_999_998], 2)
    assert err.value.status == 404


def test_window_and_viewport_parameters_match_their_documented_patterns() -> None:
    assert dicomweb.parse_window("40,400,linear") == Window(40, 400, "LINEAR")
    assert dicomweb.parse_window("-600.5,1500") == Window(-600.5, 1500, "LINEAR")
    assert dicomweb.parse_window("40,80,sigmoid") == Window(40, 80, "SIGMOID")
    assert dicomweb.parse_viewport("512,256") == Viewport(512, 256)
    assert dicomweb.parse_viewport("99999,10,1,2,3,4") == Viewport(4096, 10, (1, 2, 3, 4))
    for bad in ("40", "40,0,linear", "40,400,cubic", "a,b", "40,400,linear,1"):
        assert not re.fullmatch(dicomweb.WINDOW_PATTERN, bad)
        with pytest.raises(ApiError):
            dicomweb.parse_window(bad)
    for bad in ("0,10", "10", "10,10,1", "10,10,0,0,0,5"):
        assert not re.fullmatch(dicomweb.VIEWPORT_PATTERN, bad)
        with pytest.raises(ApiError):
            dicomweb.parse_viewport(bad)


@pytest.mark.parametrize(("accept", "param", "expected"), [
    (None, None, "jpeg"), ("*/*", None, "jpeg"), ("image/png", None, "png"),
    ("image/png,image/*;q=0.8", None, "png"), ("image/jpeg;q=0.5, image/png;q=0.9", None, "png"),
    ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", None, "jpeg"), ("image/gif", "image/png", "png"),
])
def test_rendered_media_type(accept: str | None, param: str | None, expected: str) -> None:
    assert dicomweb.choose_rendered_type(accept, param) == expected


def test_rendered_media_type_not_acceptable() -> None:
    with pytest.raises(ApiError) as err:
        dicomweb.choose_rendered_type("image/gif, application/json")
    assert (err.value.status, err.value.code) == (406, "not_acceptable")


def test_every_pydicom_test_file_indexes_or_is_refused_cleanly() -> None:
    """The index never fails with anything but ValueError on whatever header it is handed."""
    root = Path(str(get_testdata_file("CT_small.dcm"))).parent
    indexed = 0
    for path in sorted(root.glob("*.dcm")):
        try:
            ds = dcmread(path, stop_before_pixels=True, force=True)
        except Exception:  # unreadable test files are not the index's concern
            continue
        try:
            h: Any = dicomweb.index_header(ds)
        except ValueError:
            continue
        indexed += 1
        assert dicomweb.is_uid(h.sop_uid) and "7FE00010" not in h.meta
    assert indexed > 50
