"""`casebook upload` against an in-process server on httpx's MockTransport: what the HTTP layer is handed
(de-identified bytes only), one study per StudyInstanceUID, and resuming without sending a file twice after a
kill between the server's answer and the state write, a network outage, or a refusal."""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from uploader_files import IDENTIFIERS, identified_folder

from casebook_client import state as st
from casebook_client import upload
from casebook_client.api import Api, ApiError, NetworkError
from casebook_client.cli import exit_code
from casebook_client.ui import Ui

BASE = "http://casebook.test"


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the command catches it, so nothing runs after it."""


class FakeServer:
    """Just enough of the v1 API for the uploader, with faults to inject."""

    def __init__(self) -> None:
        self.cases: dict[str, dict[str, Any]] = {}
        self.images: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []  # every upload request body, as the HTTP layer sent it
        self.lose_answer_of: set[int] = set()  # upload numbers committed whose answer is lost (then Killed)
        self.down_from: int | None = None  # uploads from this number on fail to connect
        self.refuse: dict[int, tuple[int, str]] = {}
        self.token = "t0ken"
        self.uploads = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"error": {"code": "unauthenticated", "message": "no"}})
        path, method = request.url.path, request.method
        if method == "POST" and path == "/v1/cases":
            cid = f"c{len(self.cases) + 1}"
            self.cases[cid] = {"id": cid, **json.loads(request.content), "studies": []}
            return httpx.Response(201, json=self.cases[cid])
        m = re.fullmatch(r"/v1/cases/(\w+)(/.*)?", path)
        assert m, path
        case = self.cases.get(m[1])
        if case is None:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such case"}})
        rest = m[2] or ""
        if method == "GET" and rest == "":
            return httpx.Response(200, json=case)
        if method == "POST" and rest == "/studies":
            body = json.loads(request.content)
            study = {"id": f"s{sum(len(c['studies']) for c in self.cases.values()) + 1}", **body}
            case["studies"].append(study)
            return httpx.Response(201, json=study)
        if method == "GET" and rest == "/images":
            return httpx.Response(200, json=[i for i in self.images if i["case_id"] == case["id"]])
        um = re.fullmatch(r"/studies/(\w+)/uploads", rest)
        assert method == "POST" and um, (method, path)
        self.uploads += 1
        n = self.uploads
        if self.down_from is not None and n >= self.down_from:
            raise httpx.ConnectError("connection refused", request=request)
        if n in self.refuse:
            status, code = self.refuse[n]
            return httpx.Response(status, json={"error": {"code": code, "message": "refused"}})
        body = request.read()
        self.bodies.append(body)
        image = {"id": f"i{len(self.images) + 1}", "case_id": case["id"], "study_id": um[1], "status": "ready",
                 "reasons": []}
        self.images.append(image)
        if n in self.lose_answer_of:
            raise Killed
        return httpx.Response(202, json={"images": [{"id": image["id"], "status": "processing"}], "rejected": []})


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def _run(server: FakeServer, folder: Path, state: Path, **opts: Any) -> int:
    api = Api(BASE, opts.pop("token", server.token), transport=httpx.MockTransport(server),
              retries=opts.pop("retries", 2), backoff=0)
    with api, Ui(quiet=True) as ui:
        return upload.run(api, upload.Options(path=str(folder), state_path=state, settle_delay=0,
                                              title="Osteoid osteoma", **opts), ui)


def test_only_deidentified_bytes_reach_the_http_layer(server: FakeServer, tmp_path: Path) -> None:
    files = identified_folder(tmp_path, ct=2, mr=1, png=1)
    folder = files[0].parents[1]
    assert _run(server, folder, tmp_path / "state.json") == upload.EXIT_OK
    assert len(server.bodies) == len(files) == len(server.images)
    for body in server.bodies:
        for ident in IDENTIFIERS:  # not in the bytes, nor in the multipart headers (file names)
            assert ident.encode() not in body, ident
            assert ident.upper().encode() not in body, ident
    (case,) = server.cases.values()
    assert case["title"] == "Osteoid osteoma"
    # one study per StudyInstanceUID (CT_small and MR_small differ) with its modality; the PNG in its own
    assert sorted(s["modality"] for s in case["studies"]) == ["CT", "MR", "OT"]
    assert sorted(s["position"] for s in case["studies"]) == [1, 2, 3]
    per_study = {s["id"]: sum(i["study_id"] == s["id"] for i in server.images) for s in case["studies"]}
    assert sorted(per_study.values()) == [1, 1, 2]
    saved = st.load(tmp_path / "state.json")
    assert saved is not None and saved.case_id == case["id"] and saved.pending is None
    assert all(f.status == "sent" and len(f.images) == 1 for f in saved.files.values())
    assert len(saved.files) == len(files)


def test_parallel_de_identification_keeps_the_order_and_sends_each_file_once(server: FakeServer,
                                                                            tmp_path: Path) -> None:
    files = identified_folder(tmp_path, ct=3, mr=1, png=1, burned_in=1)
    folder = files[0].parents[1]
    assert _run(server, folder, tmp_path / "s.json", workers=2) == upload.EXIT_QUARANTINED
    assert server.uploads == len(server.images) == len(files) - 1
    for body in server.bodies:
        assert not any(ident.encode() in body for ident in IDENTIFIERS)


def test_a_rerun_of_a_finished_upload_sends_nothing(server: FakeServer, tmp_path: Path) -> None:
    folder = identified_folder(tmp_path, ct=2, mr=0, png=0)[0].parents[1]
    assert _run(server, folder, tmp_path / "s.json") == upload.EXIT_OK
    assert _run(server, folder, tmp_path / "s.json") == upload.EXIT_OK
    assert server.uploads == 2 and len(server.cases) == 1


def test_killed_after_the_server_took_a_file_but_before_it_was_recorded(server: FakeServer, tmp_path: Path) -> None:
    files = identified_folder(tmp_path, ct=3, mr=1, png=0)
    folder = files[0].parents[1]
    server.lose_answer_of = {2}
    with pytest.raises(Killed):
        _run(server, folder, tmp_path / "s.json")
    saved = st.load(tmp_path / "s.json")
    assert saved is not None and saved.pending is not None and len(saved.files) == 1
    assert _run(server, folder, tmp_path / "s.json") == upload.EXIT_OK
    # the lost answer's file was found on the server, not sent again: each file exactly once
    assert len(server.images) == len(files) == server.uploads
    saved = st.load(tmp_path / "s.json")
    assert saved is not None and saved.pending is None
    assert sorted(i for f in saved.files.values() for i in f.images) == sorted(i["id"] for i in server.images)


def test_network_outage_then_resume(server: FakeServer, tmp_path: Path) -> None:
    files = identified_folder(tmp_path, ct=3, mr=0, png=1)
    folder = files[0].parents[1]
    server.down_from = 2
    with pytest.raises(NetworkError):
        _run(server, folder, tmp_path / "s.json", retries=1)
    assert len(server.images) == 1
    server.down_from = None
    assert _run(server, folder, tmp_path / "s.json") == upload.EXIT_OK
    assert len(server.images) == len(files) and len(server.bodies) == len(files)


def test_a_file_quarantined_here_is_reported_and_never_sent(server: FakeServer, tmp_path: Path) -> None:
    files = identified_folder(tmp_path, ct=1, mr=0, png=0, burned_in=1)
    folder = files[0].parents[1]
    assert _run(server, folder, tmp_path / "s.json") == upload.EXIT_QUARANTINED
    assert server.uploads == 1
    saved = st.load(tmp_path / "s.json")
    assert saved is not None
    assert sorted(f.status for f in saved.files.values()) == ["quarantined", "sent"]
    assert [f.reasons for f in saved.files.values() if f.status == "quarantined"] == [["burned_in_text"]]


def test_an_unreadable_file_is_reported_and_tried_again_next_time(server: FakeServer, tmp_path: Path) -> None:
    from uploader_files import seeded_dicom

    members = {"a.dcm": seeded_dicom("CT_small.dcm", 1), "b.dcm": seeded_dicom("CT_small.dcm", 2)}
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    good = archive.read_bytes()
    damaged = bytearray(good)
    at = good.index(members["a.dcm"][2000:2016])
    damaged[at] ^= 0xFF  # a.dcm fails its CRC check
    archive.write_bytes(bytes(damaged))
    assert _run(server, archive, tmp_path / "s.json") == upload.EXIT_QUARANTINED  # not everything was sent
    assert server.uploads == 1
    archive.write_bytes(good)
    assert _run(server, archive, tmp_path / "s.json") == upload.EXIT_OK
    assert server.uploads == 2 and len(server.cases) == 1


def test_a_file_the_server_refuses_is_recorded_and_the_rest_go(server: FakeServer, tmp_path: Path) -> None:
    folder = identified_folder(tmp_path, ct=3, mr=0, png=0)[0].parents[1]
    server.refuse = {2: (415, "unsupported_media")}
    assert _run(server, folder, tmp_path / "s.json") == upload.EXIT_REFUSED
    assert len(server.images) == 2
    assert _run(server, folder, tmp_path / "s.json") == upload.EXIT_REFUSED  # recorded: not sent again
    assert server.uploads == 3


def test_refused_token_and_exit_codes(server: FakeServer, tmp_path: Path) -> None:
    folder = identified_folder(tmp_path, ct=1, mr=0, png=0)[0].parents[1]
    with pytest.raises(ApiError) as err:
        _run(server, folder, tmp_path / "s.json", token="not-the-token")
    assert err.value.status == 401 and err.value.code == "unauthenticated"
    codes = {s: exit_code(ApiError(s, "x", "")) for s in (401, 403, 404, 409, 413, 415, 422, 500)}
    assert codes == {401: 4, 403: 4, 404: 8, 409: 5, 413: 6, 415: 6, 422: 6, 500: 1}


def test_another_case_than_the_recorded_one_is_refused(server: FakeServer, tmp_path: Path) -> None:
    folder = identified_folder(tmp_path, ct=1, mr=0, png=0)[0].parents[1]
    assert _run(server, folder, tmp_path / "s.json") == upload.EXIT_OK
    with pytest.raises(upload.UsageError, match="uploaded to case c1"):
        _run(server, folder, tmp_path / "s.json", case="c9")


def test_two_uploads_of_one_source_at_once_are_refused(server: FakeServer, tmp_path: Path) -> None:
    folder = identified_folder(tmp_path, ct=1, mr=0, png=0)[0].parents[1]
    held = st.lock(tmp_path / "s.json")
    with pytest.raises(upload.UsageError, match="another casebook upload"):
        _run(server, folder, tmp_path / "s.json")
    held.close()
    assert _run(server, folder, tmp_path / "s.json") == upload.EXIT_OK and server.uploads == 1


def test_a_case_deleted_since_is_said_so(server: FakeServer, tmp_path: Path) -> None:
    folder = identified_folder(tmp_path, ct=1, mr=0, png=0)[0].parents[1]
    assert _run(server, folder, tmp_path / "s.json") == upload.EXIT_OK
    server.cases.clear()
    with pytest.raises(upload.UsageError, match="is gone"):
        _run(server, folder, tmp_path / "s.json")


# -- the state file on its own ----------------------------------------------------------------------------------

def test_state_is_saved_atomically_and_privately(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "s.json"
    s = st.UploadState.new("folder:/x", BASE)
    s.case_id = "c1"
    s.studies["2.25.1"] = st.StudyRecord("s1", "CT", 1)
    s.files["sha256:aa"] = st.FileRecord("sent", study="2.25.1", images=["i1"])
    s.pending = st.Pending("sha256:bb", "2.25.1")
    st.save(s, path)
    assert st.load(path) == s
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it holds the de-identification key
    s.files["sha256:cc"] = st.FileRecord("sent", images=[object()])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        st.save(s, path)
    loaded = st.load(path)  # the failed write left the last good version and no temporary file
    assert loaded is not None and "sha256:cc" not in loaded.files
    assert [p.name for p in path.parent.iterdir()] == ["s.json"]
    assert st.load(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError):
        st.load(tmp_path / "bad.json")


def test_state_path_is_keyed_by_source_and_server(tmp_path: Path) -> None:
    a = st.default_path("folder:/a", BASE, tmp_path)
    assert a == st.default_path("folder:/a", BASE + "/", tmp_path)
    assert a != st.default_path("folder:/b", BASE, tmp_path)
    assert a != st.default_path("folder:/a", "http://other", tmp_path)


def test_settle_pending_adopts_only_an_unowned_image_of_its_study() -> None:
    s = st.UploadState.new("src", BASE)
    s.studies = {"A": st.StudyRecord("s1", "CT", 1), "B": st.StudyRecord("s2", "MR", 2)}
    s.files = {"d1": st.FileRecord("sent", study="A", images=["i1"])}
    s.pending = st.Pending("d2", "A")
    images = [{"id": "i1", "study_id": "s1"}, {"id": "i9", "study_id": "s2"}]
    assert st.settle_pending(s, images) is None and s.pending is None  # not arrived: send again
    s.pending = st.Pending("d2", "A")
    assert st.settle_pending(s, [*images, {"id": "i3", "study_id": "s1"}]) == ["i3"]
    assert s.files["d2"] == st.FileRecord("sent", study="A", images=["i3"]) and s.pending is None


def test_settle_pending_study_by_position() -> None:
    s = st.UploadState.new("src", BASE)
    s.studies = {"A": st.StudyRecord("s1", "CT", 1)}
    s.pending_study = st.PendingStudy("B", "MR", 2)
    assert st.settle_pending_study(s, [{"id": "s1", "position": 1}]) is None and s.pending_study is None
    s.pending_study = st.PendingStudy("B", "MR", 2)
    found = st.settle_pending_study(s, [{"id": "s1", "position": 1}, {"id": "s7", "position": 2}])
    assert found == st.StudyRecord("s7", "MR", 2) and s.studies["B"] == found


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "png"])
def test_the_server_takes_what_the_contributors_side_de_identified(name: str) -> None:
    """The server runs the same core again on what `casebook upload` sent (another key): still ready."""
    from uploader_files import seeded_dicom, seeded_png

    from casebook_anonymiser.deid import CaseKey, deidentify_bytes

    here = CaseKey(secret=b"contributor-secret-0123456789", key_id=upload.KEY_ID, case_id="local")
    there = CaseKey(secret=b"server-secret-0123456789abcdef", key_id="k1", case_id="c_1")
    first = deidentify_bytes(seeded_png(1) if name == "png" else seeded_dicom(name, 1), key=here)
    assert first.status == "ready" and first.data is not None
    second = deidentify_bytes(first.data, key=there)
    assert second.status == "ready", second.reasons
