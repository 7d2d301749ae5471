"""Load: K concurrent contributors uploading studies through the whole pipeline on the embedded stack.

    python benchmarks/load.py [--contributors 4] [--studies 3] [--files 10] [--quick] [--json out.json]

Prints images/min from upload to `ready`, the p50/p99 of that latency, and the ceiling measured in the same
run: the de-identification core alone on the same files with every core, so the ratio shows what the
platform (HTTP, object store, broker, databases) costs on top.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import threading
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial

import httpx
from common import Result, bench_stack, emit, token


def _arg(argv: list[str], name: str, default: int) -> int:
    return int(argv[argv.index(name) + 1]) if name in argv else default


def _files() -> list[bytes]:
    from pydicom.data import get_testdata_file

    return [open(str(get_testdata_file(n)), "rb").read() for n in ("CT_small.dcm", "MR_small.dcm")]


def _zip(files: list[bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i, data in enumerate(files):
            z.writestr(f"{i:04d}.dcm", data)
    return buf.getvalue()


def _deid(data: bytes, case_id: str) -> str:
    from casebook_anonymiser.deid import CaseKey, deidentify_bytes

    key = CaseKey(secret=b"benchmark-secret-0123456789", key_id="b", case_id=case_id)
    return deidentify_bytes(data, key=key).status


def ceiling(files: list[bytes], n: int) -> float:
    """Images/min of the de-identification core alone, all cores, same files."""
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(partial(_deid, case_id="warm"), files * workers))  # start-up is not throughput
        t0 = time.perf_counter()
        statuses = list(pool.map(partial(_deid, case_id="c1"), [files[i % len(files)] for i in range(n)]))
        elapsed = time.perf_counter() - t0
    assert all(s == "ready" for s in statuses), statuses[:5]
    return n / elapsed * 60


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    k = _arg(argv, "--contributors", 2 if quick else 4)
    studies = _arg(argv, "--studies", 2 if quick else 3)
    per = _arg(argv, "--files", 5 if quick else 10)
    files = _files()
    sent: dict[str, float] = {}
    ready: dict[str, float] = {}
    cases: list[tuple[httpx.Client, str]] = []
    lock = threading.Lock()
    with bench_stack(("gateway", "anonymiser")) as (stack, procs):
        base = procs["gateway"].url

        def contributor(i: int) -> None:
            c = httpx.Client(base_url=base, timeout=300,
                             headers={"Authorization": f"Bearer {token(stack, f'load{i}', 'contributor')}"})
            cid = c.post("/v1/cases", json={"title": f"load {i}"}).json()["id"]
            with lock:
                cases.append((c, cid))
            for s in range(studies):
                sid = c.post(f"/v1/cases/{cid}/studies", json={"modality": "CT"}).json()["id"]
                body = _zip([files[(s + j) % len(files)] for j in range(per)])
                r = c.post(f"/v1/cases/{cid}/studies/{sid}/uploads", files={"file": ("study.zip", body)})
                now = time.perf_counter()
                assert r.status_code == 202, r.text
                with lock:
                    for im in r.json()["images"]:
                        sent[im["id"]] = now

        total = k * studies * per
        t_start = time.perf_counter()
        with ThreadPoolExecutor(k) as pool:
            futures = [pool.submit(contributor, i) for i in range(k)]
            deadline = time.monotonic() + 900
            while len(ready) < total and time.monotonic() < deadline:
                with lock:
                    current = list(cases)
                for c, cid in current:
                    for im in c.get(f"/v1/cases/{cid}/images").json():
                        if im["status"] != "processing" and im["id"] not in ready:
                            ready[im["id"]] = time.perf_counter()
                time.sleep(0.1)
            for f in futures:
                f.result()
        t_end = max(ready.values())
        assert len(ready) == total, f"{len(ready)}/{total} images finished"
    latencies = sorted(ready[i] - sent[i] for i in sent)
    per_min = total / (t_end - t_start) * 60
    top = ceiling(files, max(100, total))
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    label = f"load {k}×{studies}×{per} images"
    emit([
        Result(label, "pipeline upload→ready", per_min, "img/min", "de-identification core alone", top),
        Result(label, "latency p50", statistics.median(latencies) * 1000, "ms"),
        Result(label, "latency p99", p99 * 1000, "ms"),
    ], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
