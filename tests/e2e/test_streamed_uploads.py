"""A single-file upload is written to the incoming bucket while it arrives, and kept only once checked: a good
upload's object is the bytes sent (its preamble zeroed), and an upload refused after its bytes went to the store,
a client gone mid-body and a gateway killed mid-body leave neither an object nor a pending multipart upload.

The gateway here has a database and buckets of its own (its consumer group too), so the platform's anonymiser
never takes its raw objects away before they are looked at, and its replay of the topics touches nothing else.
"""

from __future__ import annotations

import io
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from client import error_code, sample_file
from harness import ServiceProcess, fresh_database, wait_for
from minio import Minio

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MiB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def setup(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    env = {"CASEBOOK_DATABASE_URL": fresh_database(stack, "gw_streamed"),
           "CASEBOOK_CONSUMER_GROUP": f"streamed-{suffix}",
           "CASEBOOK_S3_BUCKET_INCOMING": f"streamed-incoming-{suffix}",
           "CASEBOOK_S3_BUCKET_IMAGES": f"streamed-images-{suffix}",
           "CASEBOOK_S3_BUCKET_EXPORTS": f"streamed-exports-{suffix}",
           "CASEBOOK_TMP_DIR": str(tmp_path_factory.mktemp("spool")),
           "CASEBOOK_UPLOAD_STREAM_MIN_BYTES": str(MiB),
           "CASEBOOK_MAX_IMAGES_PER_CASE": "1"}
    return {"env": env, "bucket": env["CASEBOOK_S3_BUCKET_INCOMING"], "spool": Path(env["CASEBOOK_TMP_DIR"])}


def _spooled(spool: Path) -> list[Path]:
    """The upload files under the spool setting: the gateway spools in a directory of its own there
    (`casebook_platform.spool.private_dir`), beside the lock that marks it as in use."""
    return [p for p in spool.rglob("*") if p.is_file() and p.name != ".lock"]


@pytest.fixture(scope="module")
def gateway(stack: Any, setup: dict[str, Any]) -> Iterator[ServiceProcess]:
    p = ServiceProcess(stack, "gateway", env=setup["env"], port=_free_port())
    p.start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def s3(stack: Any) -> Minio:
    return Minio(f"127.0.0.1:{stack.ports.s3}", stack.secrets["s3_access_key"], stack.secrets["s3_secret_key"],
                 secure=False)


@pytest.fixture
def owner(gateway: ServiceProcess, tokens: Any) -> Iterator[httpx.Client]:
    c = httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {tokens(f'u{uuid.uuid4().hex[:8]}')}"},
                     timeout=120)
    yield c
    c.close()


def _study(c: httpx.Client) -> tuple[str, str]:
    cid = c.post("/v1/cases", json={"title": "Streamed upload"}).json()["id"]
    r = c.post(f"/v1/cases/{cid}/studies", json={"modality": "CT"})
    assert r.status_code == 201, r.text
    return cid, r.json()["id"]


def _dicom(mb: int) -> bytes:
    """CT_small with `mb` MiB of frames and a preamble that carries something (a polyglot)."""
    ds = pydicom.dcmread(io.BytesIO(sample_file("CT_small.dcm")))
    frame = int(ds.Rows) * int(ds.Columns) * 2
    ds.NumberOfFrames = mb * MiB // frame
    ds.PixelData = bytes(range(256)) * (int(ds.NumberOfFrames) * frame // 256)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = bytearray(buf.getvalue())
    data[:128] = b"MZ\x90\x00 a program hides here".ljust(128, b"\x00")
    return bytes(data)


def _truncated(mb: int) -> bytes:
    """DICOM whose last element claims more bytes than follow it: refused only once all of it has arrived."""
    filler = bytes(mb * MiB)
    claim = (len(filler) + 1).to_bytes(4, "little")
    return sample_file("CT_small.dcm") + b"\xe1\x7f\x10\x10UN\x00\x00" + claim + filler


def _left(s3: Minio, bucket: str) -> tuple[list[str], list[Any]]:
    """The objects and the pending multipart uploads of the gateway's incoming bucket."""
    return ([str(o.object_name) for o in s3.list_objects(bucket, recursive=True)],
            s3._list_multipart_uploads(bucket).uploads)


def _upload_path(cid: str, sid: str) -> str:
    return f"/v1/cases/{cid}/studies/{sid}/uploads"


def test_a_good_upload_is_stored_as_the_bytes_sent_with_its_preamble_zeroed(
        owner: httpx.Client, s3: Minio, setup: dict[str, Any]) -> None:
    cid, sid = _study(owner)
    data = _dicom(6)
    r = owner.post(_upload_path(cid, sid), files={"file": ("big.dcm", data)})
    assert r.status_code == 202, r.text
    [image] = r.json()["images"]
    stored = s3.get_object(setup["bucket"], f"{cid}/{image['id']}")
    try:
        assert stored.read() == bytes(128) + data[128:]
    finally:
        stored.close()
        stored.release_conn()
    assert _left(s3, setup["bucket"])[1] == []
    assert _spooled(setup["spool"]) == []


def test_an_upload_refused_after_its_bytes_were_sent_leaves_nothing(
        owner: httpx.Client, s3: Minio, setup: dict[str, Any]) -> None:
    cid, sid = _study(owner)

    def of_case() -> tuple[list[str], list[Any]]:
        objects, uploads = _left(s3, setup["bucket"])
        return [o for o in objects if o.startswith(f"{cid}/")], uploads

    r = owner.post(_upload_path(cid, sid), files={"file": ("cut.dcm", _truncated(4))})
    assert r.status_code == 422 and error_code(r) == "invalid_dicom", r.text
    assert of_case() == ([], [])

    # the image limit (1 here) is checked after the checks, when the bytes are already in the store
    r = owner.post(_upload_path(cid, sid), files={"file": ("one.dcm", _dicom(2))})
    assert r.status_code == 202, r.text
    kept = [f"{cid}/{r.json()['images'][0]['id']}"]
    assert of_case() == (kept, [])
    r = owner.post(_upload_path(cid, sid), files={"file": ("two.dcm", _dicom(2))})
    assert r.status_code == 409 and error_code(r) == "image_limit_reached", r.text
    assert of_case() == (kept, [])
    assert _spooled(setup["spool"]) == []


def _send_part_of(port: int, token: str, path: str, data: bytes, fraction: float) -> socket.socket:
    """Start an upload of `data` with its whole length declared, and send only `fraction` of the body."""
    request = httpx.Request("POST", f"http://127.0.0.1:{port}{path}", files={"file": ("big.dcm", data)})
    body = request.read()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {request.headers['content-type']}\r\nContent-Length: {len(body)}\r\n\r\n")
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode() + body[:int(len(body) * fraction)])
    return sock


def test_a_client_gone_mid_body_leaves_nothing(gateway: ServiceProcess, tokens: Any, s3: Minio,
                                               setup: dict[str, Any]) -> None:
    token = tokens(f"u{uuid.uuid4().hex[:8]}")
    c = httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    cid, sid = _study(c)
    before = _left(s3, setup["bucket"])[0]
    sock = _send_part_of(gateway.port, token, _upload_path(cid, sid), _dicom(8), 0.7)
    wait_for(lambda: _spooled(setup["spool"]), what="the upload being spooled")
    time.sleep(0.5)  # the part sent reaches the store meanwhile
    sock.close()
    wait_for(lambda: _spooled(setup["spool"]) == [], what="the spool file removed")
    time.sleep(1)
    assert _left(s3, setup["bucket"]) == (before, [])
    assert c.get("/readyz").status_code == 200
    # the gateway goes on taking uploads
    assert c.post(_upload_path(cid, sid), files={"file": ("ok.dcm", _dicom(2))}).status_code == 202
    c.close()


def test_a_gateway_killed_mid_body_leaves_nothing_in_the_store(stack: Any, tokens: Any, s3: Minio,
                                                               setup: dict[str, Any], gateway: ServiceProcess,
                                                               tmp_path: Path) -> None:
    victim = ServiceProcess(stack, "gateway", env={**setup["env"], "CASEBOOK_TMP_DIR": str(tmp_path)},
                            port=_free_port())
    victim.start()
    try:
        token = tokens(f"u{uuid.uuid4().hex[:8]}")
        with httpx.Client(base_url=victim.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            cid, sid = _study(c)
        before = _left(s3, setup["bucket"])[0]
        sock = _send_part_of(victim.port, token, _upload_path(cid, sid), _dicom(8), 0.9)
        wait_for(lambda: _spooled(tmp_path), what="the upload being spooled")
        time.sleep(0.5)
        victim.kill()
        sock.close()
    finally:
        victim.stop()
    time.sleep(2)  # the store sees its connection end short of the declared length
    assert _left(s3, setup["bucket"]) == (before, [])
    # The killed gateway could not remove its spool file (raw patient data); the next one to start does.
    assert _spooled(tmp_path)
    successor = ServiceProcess(stack, "gateway", env={**setup["env"], "CASEBOOK_TMP_DIR": str(tmp_path)},
                               port=_free_port())
    successor.start()
    try:
        assert _spooled(tmp_path) == []
    finally:
        successor.stop()
