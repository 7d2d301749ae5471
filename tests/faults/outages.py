"""One dependency outage while images are uploaded and cases published and decided, and what must hold after.

Shared by the fault suite (a bounded size) and `benchmarks/faults.py` (the full size: 300 images, 20 cases,
30 s stalls). A component is either stalled (SIGSTOP for `stall_s`, then SIGCONT: the process is there but
silent, the worst case for timeouts) or killed and started again. Afterwards: every image is terminal
exactly once, every decision has arrived, no message went to any DLQ, and no raw upload is left.
"""

from __future__ import annotations

import asyncio
import io
import signal
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

import httpx
from client import sample_file

from casebook_platform.dlq import DeadLetters

PER_ZIP = 10
COMPONENTS = ("s3", "postgres", "broker")
FAULTS = ("stall", "kill")


@dataclass
class Outcome:
    component: str
    fault: str
    images: int
    cases: int
    seconds: float
    uncertain: int
    checks: dict[str, bool] = field(default_factory=dict)

    def line(self) -> str:
        ok = "ok" if all(self.checks.values()) else "FAILED " + ",".join(k for k, v in self.checks.items() if not v)
        return (f"{self.component:8} {self.fault:5}: {self.images} images terminal once, {self.cases} decisions "
                f"arrived, no DLQ message, no raw object left, in {self.seconds:.0f} s ({ok})")


def _retry(call: Any, timeout: float = 300) -> httpx.Response:
    """Call until the platform answers with something other than an outage (5xx or no answer)."""
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


class _Fault(threading.Thread):
    """Applies the fault to each component in turn (one at a time, a second apart)."""

    def __init__(self, stack: Any, components: tuple[str, ...], fault: str, stall_s: float, down_s: float) -> None:
        super().__init__(daemon=True)
        self.stack, self.components, self.fault = stack, components, fault
        self.stall_s, self.down_s = stall_s, down_s
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for component in self.components:
                time.sleep(1.0)
                if self.fault == "stall":
                    self.stack.signal(component, signal.SIGSTOP)
                    try:
                        time.sleep(self.stall_s)
                    finally:
                        self.stack.signal(component, signal.SIGCONT)
                else:
                    self.stack.kill(component)
                    time.sleep(self.down_s)
                    self.stack.restart(component)
        except BaseException as exc:  # reported by the caller
            self.error = exc


def _zip(n: int) -> bytes:
    data = sample_file("CT_small.dcm")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(n):
            z.writestr(f"series/{i:04d}.dcm", data)
    return buf.getvalue()


def _letters(stack: Any) -> set[str]:
    return {x.id for x in asyncio.run(DeadLetters(f"127.0.0.1:{stack.ports.kafka}", idle_s=1.5).read())}


def _raw_left(stack: Any, case_ids: list[str]) -> int:
    from minio import Minio

    client = Minio(f"127.0.0.1:{stack.ports.s3}", stack.secrets["s3_access_key"], stack.secrets["s3_secret_key"],
                   secure=False)
    return sum(1 for cid in case_ids for _ in client.list_objects("casebook-incoming", prefix=f"{cid}/",
                                                                  recursive=True))


def run_outage(stack: Any, gateway_url: str, tokens: Any, *, component: str | tuple[str, ...], fault: str,
               images: int, cases: int, stall_s: float, down_s: float = 3.0, settle_s: float = 600) -> Outcome:
    """Upload `images` images and publish and approve `cases` cases while `component` (or each of several
    components, one after another) suffers `fault`."""
    components = (component,) if isinstance(component, str) else component
    tag = uuid.uuid4().hex[:6]

    def client(user: str, roles: str) -> httpx.Client:
        return httpx.Client(base_url=gateway_url, timeout=60,
                            headers={"Authorization": f"Bearer {tokens(user, roles)}"})

    owner = client(f"owner-{tag}", "contributor")  # owns the case the uploads go to
    editor = client(f"editor-{tag}", "editor")
    authors = [client(f"author-{tag}-{i}", "contributor") for i in range(cases)]  # drafts are limited per user
    case_body = {"title": "Osteoid osteoma of the femur", "patient_age": 15, "patient_sex": "male",
                 "systems": ["musculoskeletal"], "diagnostic_certainty": "certain", "diagnosis": "Osteoid osteoma",
                 "presentation": "Night pain relieved by aspirin.", "discussion": "A classic nidus."}
    single = sample_file("CT_small.dcm")

    # Before the fault: the cases to publish, each with one image, ready; and the case the uploads go to.
    def new_case(who: httpx.Client) -> tuple[str, str]:
        r = _retry(lambda: who.post("/v1/cases", json=case_body))
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        sid = _retry(lambda: who.post(f"/v1/cases/{cid}/studies",
                                      json={"modality": "CT", "findings": "Lucent cortical nidus."})).json()["id"]
        return cid, sid

    to_publish = [new_case(a) for a in authors]
    for a, (cid, sid) in zip(authors, to_publish, strict=True):
        r = _retry(lambda a=a, c=cid, s=sid: a.post(f"/v1/cases/{c}/studies/{s}/uploads",
                                                   files={"file": ("ct.dcm", single)}))
        assert r.status_code == 202, r.text
    for a, (cid, _) in zip(authors, to_publish, strict=True):
        _wait(lambda a=a, c=cid: _terminal(a, c, 1), 300, f"the image of {cid}")
    author_of = {cid: a for a, (cid, _) in zip(authors, to_publish, strict=True)}
    upload_cid, upload_sid = new_case(owner)
    before = _letters(stack)

    payload = _zip(PER_ZIP)
    accepted: set[str] = set()
    uncertain = 0
    started = time.monotonic()
    chaos = _Fault(stack, components, fault, stall_s, down_s)
    chaos.start()
    published: list[str] = []
    rounds = max(images // PER_ZIP, cases)
    # Spread the work over the whole fault window, so each component's fault meets work in flight.
    window = len(components) * (1.0 + (stall_s if fault == "stall" else down_s + 5.0))
    for i in range(rounds):
        time.sleep(max(0.0, started + i * window / rounds - time.monotonic()))
        if i < images // PER_ZIP:
            deadline = time.monotonic() + 300
            while True:
                try:
                    r = owner.post(f"/v1/cases/{upload_cid}/studies/{upload_sid}/uploads",
                                   files={"file": (f"part{i}.zip", payload)})
                    if r.status_code == 202:
                        accepted.update(im["id"] for im in r.json()["images"])
                        break
                    assert r.status_code >= 500, r.text  # only an outage may interrupt an upload
                except httpx.HTTPError:
                    uncertain += 1  # it may have been stored before the answer was lost
                assert time.monotonic() < deadline, "uploads never got through"
                time.sleep(0.5)
        if i < cases:
            cid = to_publish[i][0]
            r = _retry(lambda c=cid: author_of[c].post(f"/v1/cases/{c}/publish"))
            assert r.status_code in (202, 409), r.text  # 409: a retried publish after a lost answer
            published.append(cid)
    for cid in published:
        _decide(editor, author_of[cid], cid, settle_s)
    chaos.join(timeout=(stall_s + 60) * len(components) + 60)
    assert chaos.error is None, f"the fault could not be applied: {chaos.error!r}"

    listed = _wait(lambda: _terminal(owner, upload_cid, len(accepted)), settle_s, "every image terminal")
    ids = [im["id"] for im in listed]
    approved = [cid for cid in published
                if _retry(lambda c=cid: author_of[c].get(f"/v1/cases/{c}")).json().get("status") == "approved"]
    all_cases = [upload_cid, *published]
    raw = _wait(lambda: _raw_left(stack, all_cases) == 0 or None, 120, "raw uploads to be deleted", default=False)
    new_letters = _letters(stack) - before
    seconds = time.monotonic() - started
    for c in (owner, editor, *authors):
        c.close()
    return Outcome("+".join(components), fault, len(ids), len(approved), seconds, uncertain, checks={
        "images_unique": len(ids) == len(set(ids)),
        "accepted_kept": accepted <= set(ids),
        "no_phantoms": len(ids) <= len(accepted) + uncertain * PER_ZIP,
        "all_ready": all(im["status"] == "ready" for im in listed),
        "decisions_arrived": len(approved) == len(published),
        "no_dlq_message": not new_letters,
        "no_raw_left": raw is True,
    })


def _terminal(owner: httpx.Client, cid: str, n: int) -> list[dict[str, Any]] | None:
    r = _retry(lambda: owner.get(f"/v1/cases/{cid}/images"))
    images: list[dict[str, Any]] = r.json()
    if len(images) >= n and all(i["status"] in ("ready", "quarantined") for i in images):
        return images
    return None


def _wait(pred: Any, timeout: float, what: str, default: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(1.0)
    if default is not None:
        return default
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _decide(editor: httpx.Client, owner: httpx.Client, cid: str, timeout: float) -> None:
    """Claim and approve once the case is in the queue; retried through the outage until it is approved."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _retry(lambda: owner.get(f"/v1/cases/{cid}")).json().get("status")
        if status == "approved":
            return
        items = _retry(lambda: editor.get("/v1/moderation/queue", params={"limit": 100})).json().get("items", [])
        if any(it["case_id"] == cid for it in items):
            _retry(lambda: editor.post(f"/v1/moderation/{cid}/claim"))
            _retry(lambda: editor.post(f"/v1/moderation/{cid}/approve"))
        time.sleep(1.0)
    raise AssertionError(f"the decision on {cid} never arrived")
