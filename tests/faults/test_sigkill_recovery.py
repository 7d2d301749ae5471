"""Faults: uploads and decisions keep their promises while the broker, the anonymiser, the gateway (and its
outbox relay), the S3 server, moderation and achievements are SIGKILLed at random moments and restarted."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import httpx
import pytest
from client import User, sample_file
from harness import Chaos

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N_CASES = 5
UPLOADS_PER_CASE = 6
FILES_PER_UPLOAD = 10  # 5 × 6 × 10 = 300 images


def _zip_of(data: bytes, n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(n):
            z.writestr(f"series/{i:04d}.dcm", data)
    return buf.getvalue()


def _retrying(call: Any, timeout: float = 180) -> httpx.Response:
    """Call until the platform answers with something other than an outage."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = call()
            if r.status_code < 500:
                return r
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the platform did not come back")
        time.sleep(0.5)


def test_uploads_survive_sigkills(stack: Any, platform: Any, users: Any) -> None:
    owners = [users("contributor") for _ in range(N_CASES)]
    cases = []
    for u in owners:
        cid = u.create_case()["id"]
        cases.append((u, cid, u.add_study(cid)))
    payload = _zip_of(sample_file("CT_small.dcm"), FILES_PER_UPLOAD)
    accepted: dict[str, set[str]] = {cid: set() for _, cid, _ in cases}
    uncertain = 0
    with Chaos(stack, platform, ["broker", "anonymiser", "gateway", "s3"], seed=20261125) as chaos:
        for round_ in range(UPLOADS_PER_CASE):
            for u, cid, sid in cases:
                deadline = time.monotonic() + 180
                while True:
                    try:
                        r = u.upload(cid, sid, payload, f"round{round_}.zip", "application/zip")
                        if r.status_code == 202:
                            accepted[cid].update(i["id"] for i in r.json()["images"])
                            break
                        assert r.status_code >= 500, r.text  # only outages may interrupt an upload
                    except httpx.HTTPError:
                        uncertain += 1  # the gateway may have stored it before dying
                    assert time.monotonic() < deadline, "uploads never got through"
                    time.sleep(0.5)
    assert chaos.kills, "nothing was killed"
    total = sum(len(v) for v in accepted.values())
    assert total == N_CASES * UPLOADS_PER_CASE * FILES_PER_UPLOAD

    # every image ends in exactly one terminal state; nothing accepted is lost
    for u, cid, _ in cases:
        images = u.wait_images(cid, len(accepted[cid]), timeout=600)
        ids = [i["id"] for i in images]
        assert len(ids) == len(set(ids)), "an image is listed twice"
        assert accepted[cid] <= set(ids), "an accepted image was lost"
        assert len(ids) <= len(accepted[cid]) + uncertain * FILES_PER_UPLOAD
        bad = [i for i in images if i["status"] != "ready"]
        assert not bad, f"images not ready after recovery: {bad[:3]}"

    # raw uploads are gone from the incoming bucket once de-identified (the sweeper finishes interrupted deletes)
    client = platform["gateway"]
    from minio import Minio

    s3 = Minio(f"127.0.0.1:{stack.ports.s3}", stack.secrets["s3_access_key"], stack.secrets["s3_secret_key"],
               secure=False)

    def leftovers() -> list[str]:
        return [o.object_name for _, cid, _ in cases
                for o in s3.list_objects("casebook-incoming", prefix=f"{cid}/", recursive=True)]

    deadline = time.monotonic() + 150
    while leftovers() and time.monotonic() < deadline:
        time.sleep(2)
    assert leftovers() == [], "raw uploads survived de-identification"
    assert client.proc is not None


def test_decisions_and_counts_survive_sigkills(stack: Any, platform: Any, users: Any) -> None:
    editor = users("editor")
    owner = users("contributor")
    payload = sample_file("MR_small.dcm")
    cids = []
    for _ in range(6):
        cid = owner.create_case()["id"]
        sid = owner.add_study(cid, "MR")
        owner.upload(cid, sid, payload, "mr.dcm")
        cids.append(cid)
    for cid in cids:
        owner.wait_images(cid, 1)
        assert owner.post(f"/v1/cases/{cid}/publish").status_code == 202
    with Chaos(stack, platform, ["moderation", "achievements", "gateway", "broker"], seed=7):
        for cid in cids:
            def approve(cid: str = cid) -> httpx.Response:
                r = editor.post(f"/v1/moderation/{cid}/approve")
                return httpx.Response(503) if r.status_code == 404 else r  # not queued yet: retry

            r = _retrying(approve)
            assert r.status_code == 200, r.text
    for cid in cids:
        owner.wait_status(cid, "approved", timeout=300)

    def count() -> int:
        r = _retrying(lambda: User(platform["gateway"].url, None).get(f"/v1/users/{owner.id}/achievements"))
        return int(r.json()["collector"]["count"])

    deadline = time.monotonic() + 120
    while count() != len(cids) and time.monotonic() < deadline:
        time.sleep(1)
    assert count() == len(cids), "an approval was lost or counted twice"
    history = owner.get(f"/v1/cases/{cids[0]}/history").json()
    assert [h["action"] for h in history].count("approved") == 1
