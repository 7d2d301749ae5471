"""`casebook upload` and `casebook export` as a contributor runs them: the real command as a subprocess against
the running platform, through a recording proxy that keeps every request body the gateway received.

A folder of real DICOM and a PNG with identifiers planted (headers, sequences, private tags, PNG text, folder
and file names) is de-identified on this side: no upload body carries an identifier, a file the core
quarantines is reported and not sent, and the images come out ready. The command is SIGKILLed mid-upload and
run again: every file is on the server exactly once. A zip goes to an existing case and comes back as an
originals export; a study is pulled from Orthanc (the test PACS) over DICOMweb.
"""

from __future__ import annotations

import importlib.util
import io
import os
import signal
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from client import with_fresh_uids
from uploader_files import IDENTIFIERS, identified_folder, seeded_dicom, seeded_png

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


class RecordingProxy:
    """Forwards every request to the gateway and keeps (method, path, body) of what it forwarded."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.requests: list[tuple[str, str, bytes]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _forward(self) -> None:
                body = self._body()
                proxy.requests.append((self.command, self.path, body))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "transfer-encoding", "connection")}
                r = httpx.request(self.command, proxy.target + self.path, headers=headers, content=body,
                                  timeout=120)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def uploads(self) -> list[bytes]:
        return [b for m, p, b in self.requests if m == "POST" and p.endswith("/uploads")]

    def __enter__(self) -> RecordingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(platform: Any) -> Iterator[RecordingProxy]:
    with RecordingProxy(platform["gateway"].url) as p:
        yield p


def _env(url: str, token: str, cache: Path) -> dict[str, str]:
    return {**os.environ, "CASEBOOK_URL": url, "CASEBOOK_TOKEN": token, "XDG_CACHE_HOME": str(cache),
            "PYTHONUNBUFFERED": "1"}


def casebook(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The installed command's entry point (`casebook` = casebook_platform.cli:main), as a contributor runs it."""
    return subprocess.run([sys.executable, "-m", "casebook_platform.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _assert_no_identifier(blobs: list[bytes]) -> None:
    assert blobs
    for blob in blobs:
        for ident in IDENTIFIERS:
            assert ident.encode() not in blob and ident.upper().encode() not in blob, ident


def _lines(out: str, prefix: str) -> int:
    return sum(line.startswith(prefix) for line in out.splitlines())


def _served(user: Any, images: list[dict[str, Any]]) -> list[bytes]:
    return [user.get(i["url"]).content for i in images if i["status"] == "ready"]


def test_folder_upload_deidentified_here_survives_sigkill_and_sends_each_file_once(
        users: Any, proxy: RecordingProxy, tmp_path: Path) -> None:
    alice = users()
    files = identified_folder(tmp_path / "src", ct=5, mr=1, png=1, burned_in=1)
    folder = files[0].parents[1]
    sendable = len(files) - 1  # the burned-in one is quarantined here and never sent
    env = _env(proxy.url, alice.http.headers["authorization"].split()[1], tmp_path / "cache")
    cmd = [sys.executable, "-m", "casebook_platform.cli", "upload", str(folder), "--title", "Osteoid osteoma",
           "--workers", "1", "--quiet"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sent_lines = []
    assert first.stdout is not None
    for line in first.stdout:
        if line.startswith("sent "):
            sent_lines.append(line)
            if len(sent_lines) == 3:
                os.kill(first.pid, signal.SIGKILL)  # mid-upload: the next file is being prepared or sent
                break
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, first.stderr.read() if first.stderr else ""
    assert len(sent_lines) == 3

    again = casebook("upload", str(folder), "--title", "Osteoid osteoma", "--workers", "1", "--quiet", "--wait",
                     env=env)
    out = again.stdout
    assert again.returncode == 3, (out, again.stderr)  # 3: a file was quarantined (here)
    assert "resuming" in out and out.count("already sent ") >= 3, out
    assert out.count("quarantined here, not sent ") == 1 and "burned_in_text" in out, out
    assert _lines(out, "ready ") == sendable, out

    mine = alice.get("/v1/cases", params={"mine": "true"}).json()["items"]
    assert len(mine) == 1, mine  # the rerun used the same case
    cid = mine[0]["id"]
    images = alice.get(f"/v1/cases/{cid}/images").json()
    # every file exactly once: as many images as files sent, no two alike, all ready
    assert len(images) == sendable, images
    assert len({i["id"] for i in images}) == sendable and all(i["status"] == "ready" for i in images), images
    served = _served(alice, images)
    sops = [pydicom.dcmread(io.BytesIO(b)).SOPInstanceUID for b in served if b[128:132] == b"DICM"]
    assert len(sops) == len(set(sops)) == sendable - 1  # the PNG is the other one
    case = alice.get(f"/v1/cases/{cid}").json()
    assert case["title"] == "Osteoid osteoma"
    assert sorted(s["modality"] for s in case["studies"]) == ["CT", "MR", "OT"]
    # what the server received and what it serves: no identifier anywhere, not even in the file names
    uploads = proxy.uploads()
    assert sendable <= len(uploads) <= sendable + 1  # at most the one the kill cut off was sent again
    _assert_no_identifier(uploads)
    _assert_no_identifier(served)


def test_zip_into_an_existing_case_then_originals_export(users: Any, proxy: RecordingProxy, tmp_path: Path) -> None:
    alice = users()
    cid = alice.create_case()["id"]
    archive = tmp_path / "Hartigan_Rosalind.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Hartigan/0001.dcm", seeded_dicom("CT_small.dcm", 1))
        z.writestr("Hartigan/0002.dcm", seeded_dicom("CT_small.dcm", 2))
        z.writestr("Rosalind.png", seeded_png(3))
    env = _env(proxy.url, alice.http.headers["authorization"].split()[1], tmp_path / "cache")
    done = casebook("upload", str(archive), "--case", cid, "--wait", "--workers", "1", "--quiet", env=env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert _lines(done.stdout, "ready ") == 3 and "created case" not in done.stdout, done.stdout
    _assert_no_identifier(proxy.uploads())
    assert len(alice.get(f"/v1/cases/{cid}/images").json()) == 3

    out = tmp_path / "originals.zip"
    got = casebook("export", "--case", cid, "--kind", "originals", "--wait", "--out", str(out), "--quiet",
                   env=env)
    assert got.returncode == 0, (got.stdout, got.stderr)
    assert "requested export x" in got.stdout and f"saved {out}" in got.stdout, got.stdout
    names = zipfile.ZipFile(out).namelist()
    assert "case.txt" in names and sum(n.endswith((".dcm", ".png")) for n in names) == 3, names
    # the id alone follows the same export again
    export_id = got.stdout.split("requested export ")[1].split()[0]
    again = casebook("export", export_id, "--wait", "--out", str(tmp_path / "again.zip"), "--quiet", env=env)
    assert again.returncode == 0 and (tmp_path / "again.zip").read_bytes() == out.read_bytes(), again.stderr


def test_errors_have_their_exit_codes(users: Any, platform: Any, tmp_path: Path) -> None:
    folder = identified_folder(tmp_path / "src", ct=1, mr=0, png=0)[0].parents[1]
    env = _env(platform["gateway"].url, "not-a-token", tmp_path / "cache")
    r = casebook("upload", str(folder), "--quiet", env=env)
    assert r.returncode == 4 and "401 unauthenticated" in r.stderr, (r.stdout, r.stderr)
    alice, bob = users(), users()
    cid = bob.create_case()["id"]
    env = _env(platform["gateway"].url, alice.http.headers["authorization"].split()[1], tmp_path / "cache2")
    r = casebook("upload", str(folder), "--case", cid, "--quiet", env=env)
    assert r.returncode == 8 and "404 not_found" in r.stderr, (r.stdout, r.stderr)  # bob's draft: not visible
    r = casebook("upload", "--quiet", env=env)
    assert r.returncode == 2, r.stderr
    for _ in range(10):
        alice.create_case()
    r = casebook("upload", str(folder), "--quiet", env=env)  # an 11th draft
    assert r.returncode == 5 and "409 draft_limit_reached" in r.stderr, (r.stdout, r.stderr)
    env = _env("http://127.0.0.1:9", "t", tmp_path / "cache3")
    r = casebook("upload", str(folder), "--quiet", env=env)
    assert r.returncode == 7 and "run the same command again" in r.stderr, r.stderr


def _orthanc() -> Any:
    spec = importlib.util.spec_from_file_location("casebook_bench_orthanc", ROOT / "benchmarks" / "orthanc.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Orthanc


def test_study_pulled_from_a_pacs_over_dicomweb(users: Any, proxy: RecordingProxy, tmp_path: Path) -> None:
    alice = users()
    blobs = [seeded_dicom("CT_small.dcm", i) for i in (1, 2, 3)]
    blobs.append(seeded_dicom("MR_small.dcm", 1))  # another study on the PACS: not pulled
    study_uid = pydicom.dcmread(io.BytesIO(blobs[0])).StudyInstanceUID
    with _orthanc()(dicomweb=True) as pacs:
        pacs.upload(blobs)
        env = _env(proxy.url, alice.http.headers["authorization"].split()[1], tmp_path / "cache")
        done = casebook("upload", "--dicomweb", pacs.dicomweb_url, "--study", study_uid, "--title", "From the PACS",
                        "--wait", "--workers", "1", "--quiet", env=env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert _lines(done.stdout, "ready ") == 3, done.stdout
    cid = alice.get("/v1/cases", params={"mine": "true"}).json()["items"][0]["id"]
    images = alice.get(f"/v1/cases/{cid}/images").json()
    assert len(images) == 3 and all(i["status"] == "ready" for i in images), images
    served = _served(alice, images)
    assert {pydicom.dcmread(io.BytesIO(b)).Modality for b in served} == {"CT"}
    _assert_no_identifier(proxy.uploads())
    _assert_no_identifier(served)


def test_a_pacs_that_asks_for_a_token_casebooks_own_dicomweb(users: Any, proxy: RecordingProxy,
                                                             tmp_path: Path) -> None:
    """The gateway's /dicomweb serves a contributor's draft to its owner's token only: pulled without the
    token the study is not there (usage error), with `--dicomweb-token` it is copied into a new case."""
    alice = users()
    token = alice.http.headers["authorization"].split()[1]
    cid = alice.create_case()["id"]
    sid = alice.add_study(cid)
    for data in with_fresh_uids([seeded_dicom("CT_small.dcm", i) for i in (1, 2)]):  # a study of its own
        assert alice.upload(cid, sid, data, "a.dcm").status_code == 202
    images = alice.wait_images(cid, 2)
    study_uid = pydicom.dcmread(io.BytesIO(alice.get(images[0]["url"]).content)).StudyInstanceUID
    pacs = proxy.target + "/dicomweb"
    env = _env(proxy.url, token, tmp_path / "cache")
    env.pop("CASEBOOK_DICOMWEB_TOKEN", None)
    refused = casebook("upload", "--dicomweb", pacs, "--study", study_uid, "--quiet", env=env)
    assert refused.returncode == 2 and "no instances" in refused.stderr, (refused.stdout, refused.stderr)
    done = casebook("upload", "--dicomweb", pacs, "--study", study_uid, "--dicomweb-token", token, "--title",
                    "A copy", "--wait", "--workers", "1", "--quiet", env=env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert _lines(done.stdout, "ready ") == 2, done.stdout
    mine = {c["id"] for c in alice.get("/v1/cases", params={"mine": "true"}).json()["items"]}
    (copy,) = mine - {cid}
    assert [i["status"] for i in alice.get(f"/v1/cases/{copy}/images").json()] == ["ready", "ready"]
