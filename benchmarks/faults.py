"""Recovery under faults: N images through the pipeline while components are SIGKILLed, next to the same
upload without faults in the same run; then the object store, the database and the broker each stalled
(SIGSTOP 30 s) and each killed and restarted while 300 images are uploaded and 20 cases published and
decided, one line each.

    python benchmarks/faults.py [--images 1000] [--quick] [--json out.json]

Prints images/min upload→terminal with and without faults, how many kills, and checks on the way that
every accepted image ends `ready` exactly once (the fault suite's promises at a larger N); for each outage,
whether every image is terminal once, every decision arrived, no DLQ message and no raw object is left.
`--quick` runs the outages at the fault suite's size (20 images, 2 cases, 8 s stalls).
"""

from __future__ import annotations

import io
import sys
import time
import zipfile
from pathlib import Path

import httpx
from common import Result, bench_stack, emit, token
from harness import SERVICES, Chaos

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "faults"))
from outages import COMPONENTS, FAULTS, run_outage

PER_ZIP = 10


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(PER_ZIP):
            z.writestr(f"{i:04d}.dcm", data)
    return buf.getvalue()


def run(stack: object, procs: dict, n: int, label: str, chaos: Chaos | None) -> tuple[float, int]:
    from pydicom.data import get_testdata_file

    payload = _zip(Path(str(get_testdata_file("CT_small.dcm"))).read_bytes())
    c = httpx.Client(base_url=procs["gateway"].url, timeout=120,
                     headers={"Authorization": f"Bearer {token(stack, label, 'contributor')}"})

    def retry(call):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 300
        while True:
            try:
                r = call()
                if r.status_code < 500:
                    return r
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the platform did not come back"
            time.sleep(0.5)

    cid = retry(lambda: c.post("/v1/cases", json={"title": label})).json()["id"]
    sid = retry(lambda: c.post(f"/v1/cases/{cid}/studies", json={"modality": "CT"})).json()["id"]
    accepted: set[str] = set()
    t0 = time.perf_counter()
    if chaos:
        chaos.__enter__()
    try:
        for _ in range(n // PER_ZIP):
            r = retry(lambda: c.post(f"/v1/cases/{cid}/studies/{sid}/uploads", files={"file": ("s.zip", payload)}))
            assert r.status_code == 202, r.text
            accepted.update(i["id"] for i in r.json()["images"])
    finally:
        if chaos:
            chaos.__exit__(None, None, None)
    deadline = time.monotonic() + 1200
    while True:
        images = retry(lambda: c.get(f"/v1/cases/{cid}/images")).json()
        done = [i for i in images if i["status"] != "processing"]
        if len(done) >= len(accepted) and accepted <= {i["id"] for i in done}:
            break
        assert time.monotonic() < deadline, f"{len(done)}/{len(accepted)} images finished"
        time.sleep(1)
    elapsed = time.perf_counter() - t0
    ids = [i["id"] for i in images]
    assert len(ids) == len(set(ids)), "an image is listed twice"
    assert all(i["status"] == "ready" for i in images), "an image did not end ready"
    return len(accepted) / elapsed * 60, len(chaos.kills) if chaos else 0


def outages(quick: bool) -> list[Result]:
    """Each dependency stalled and killed while images are uploaded and cases decided; a line for each."""
    images, cases, stall = (20, 2, 8.0) if quick else (300, 20, 30.0)
    results = []
    with bench_stack(SERVICES, env={"gateway": {"CASEBOOK_STALE_UPLOAD_S": "30",
                                                "CASEBOOK_UPLOAD_SWEEP_INTERVAL_S": "3"},
                                    "anonymiser": {"CASEBOOK_SWEEP_INTERVAL_S": "3"}}) as (stack, procs):
        def tokens(user: str, roles: str) -> str:
            return token(stack, user, roles)

        for component in COMPONENTS:
            for fault in FAULTS:
                o = run_outage(stack, procs["gateway"].url, tokens, component=component, fault=fault,
                               images=images, cases=cases, stall_s=stall)
                print(o.line(), flush=True)
                what = f"SIGSTOP {stall:.0f} s" if fault == "stall" else "SIGKILL + restart"
                results.append(Result(f"outage {component} {fault}", f"{images} images + {cases} decisions, {what}",
                                      o.seconds, "s", target="all terminal once, decisions arrive, no DLQ, no raw "
                                      + ("(ok)" if all(o.checks.values()) else f"(FAILED {o.checks})")))
    return results


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    n = 200 if quick else int(argv[argv.index("--images") + 1]) if "--images" in argv else 1000
    with bench_stack(("gateway", "anonymiser"),
                     env={"gateway": {"CASEBOOK_STALE_UPLOAD_S": "30", "CASEBOOK_UPLOAD_SWEEP_INTERVAL_S": "3"},
                          "anonymiser": {"CASEBOOK_SWEEP_INTERVAL_S": "3"}}) as (stack, procs):
        calm, _ = run(stack, procs, n, "calm", None)
        chaos = Chaos(stack, procs, ["broker", "anonymiser", "gateway", "s3"], seed=n)
        stormy, kills = run(stack, procs, n, "stormy", chaos)
    emit([
        Result(f"faults {n} images", f"upload→ready under {kills} SIGKILLs", stormy, "img/min",
               "same upload without faults", calm, "every image ready once"),
        *outages(quick),
    ], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
