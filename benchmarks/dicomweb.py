"""DICOMweb figures: a whole study over WADO-RS against reading the same objects straight from S3, the gateway's
memory while it streams, QIDO and rendered latency, and Orthanc's DICOMweb plugin serving the same study.

    python benchmarks/dicomweb.py [--images 100] [--no-orthanc] [--json PATH]

The stack runs on the `bench` ports, or on `CASEBOOK_BENCH_PROFILE`'s (so it can run beside another run).

The study is `--images` CT images of 512 x 512 x 16 bits (about 0.5 MB each), uploaded as one zip by its owner
and read back by the owner (who sees an unpublished case: no moderation needed).
"""

from __future__ import annotations

import io
import statistics
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from minio import Minio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, bench_stack, emit, rss_mb, token, unique_copies

from casebook_platform.rendering import Window, render_dicom_frame


def _template() -> bytes:
    """CT_small's header with a 512 x 512 body-like phantom (smooth, no text) as its pixels."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    y, x = np.mgrid[-256:256, -256:256]
    body = ((x / 220.0) ** 2 + (y / 160.0) ** 2 < 1).astype(np.int16)
    pixels = (body * (1000 + (40 * np.sin(x / 9.0) * np.cos(y / 11.0)).astype(np.int16))).astype(np.int16)
    ds.Rows, ds.Columns = 512, 512
    ds.PixelData = pixels.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def _sample_rss(pid: int, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        out.append(rss_mb(pid))
        time.sleep(0.05)


def _wado_study(http: httpx.Client, study: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = 0
    with http.stream("GET", f"/dicomweb/studies/{study}",
                     headers={"Accept": 'multipart/related; type="application/dicom"'}) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes(256 * 1024):
            n += len(chunk)
    return n, time.perf_counter() - t0


def main(argv: list[str]) -> int:
    n = int(argv[argv.index("--images") + 1]) if "--images" in argv else (40 if "--quick" in argv else 100)
    blobs = unique_copies([_template()], n)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i, b in enumerate(blobs):
            z.writestr(f"{i:04d}.dcm", b)
    label = f"dicomweb study of {n} CT 512x512"
    results: list[Result] = []
    with bench_stack(("gateway", "anonymiser")) as (stack, procs):
        base = procs["gateway"].url
        http = httpx.Client(base_url=base, timeout=600,
                            headers={"Authorization": f"Bearer {token(stack, 'dw-bench', 'contributor')}"})
        cid = http.post("/v1/cases", json={"title": "DICOMweb bench", "diagnostic_certainty": "certain"}).json()["id"]
        sid = http.post(f"/v1/cases/{cid}/studies", json={"modality": "CT"}).json()["id"]
        r = http.post(f"/v1/cases/{cid}/studies/{sid}/uploads",
                      files={"file": ("s.zip", buf.getvalue(), "application/zip")})
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 1800
        studies: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            studies = http.get("/dicomweb/studies", params={"case_id": cid}).json()
            if studies and studies[0]["00201208"]["Value"][0] >= n:
                break
            time.sleep(1)
        study = studies[0]["0020000D"]["Value"][0]
        instances = http.get(f"/dicomweb/studies/{study}/instances").json()
        assert len(instances) == n, len(instances)

        # Baseline: the same objects read straight from the store, one after another.
        images = [i for i in http.get(f"/v1/cases/{cid}/images").json() if i["status"] == "ready"]
        keys = [f"{cid}/{i['id']}" for i in images]
        env = stack.service_env("gateway")
        client = Minio(env["CASEBOOK_S3_ENDPOINT"], access_key=env["CASEBOOK_S3_ACCESS_KEY"],
                       secret_key=env["CASEBOOK_S3_SECRET_KEY"], secure=False)
        bucket = "casebook-images"
        t0 = time.perf_counter()
        direct = 0
        for key in keys:
            resp = client.get_object(bucket, key)
            direct += len(resp.read())
            resp.close()
            resp.release_conn()
        direct_s = time.perf_counter() - t0

        pid = procs["gateway"].proc.pid  # type: ignore[union-attr]
        idle = rss_mb(pid)
        samples: list[float] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(pid, stop, samples), daemon=True)
        sampler.start()
        got, wado_s = _wado_study(http, study)
        stop.set()
        sampler.join()
        assert got > direct, (got, direct)  # every object plus the multipart framing

        qido = []
        for _ in range(20):
            t = time.perf_counter()
            http.get(f"/dicomweb/studies/{study}/instances").raise_for_status()
            qido.append(time.perf_counter() - t)
        first = instances[0]
        inst = (f"/dicomweb/studies/{study}/series/{first['0020000E']['Value'][0]}"
                f"/instances/{first['00080018']['Value'][0]}")
        rendered = []
        for _ in range(20):
            t = time.perf_counter()
            http.get(f"{inst}/rendered", params={"window": "40,400,linear"}).raise_for_status()
            rendered.append(time.perf_counter() - t)
        one = blobs[0]
        core = []
        for _ in range(20):
            t = time.perf_counter()
            render_dicom_frame(io.BytesIO(one), 0, fmt="jpeg", voi=Window(40, 400))
            core.append(time.perf_counter() - t)
        mb = direct / 1024**2
        results += [
            Result(label, "WADO-RS whole study (owner)", mb / wado_s, "MB/s", "S3 GET of the same objects",
                   mb / direct_s),
            Result(label, "gateway RSS while streaming (peak)", max(samples or [idle]), "MB", "gateway RSS before",
                   idle),
            Result(label, "study size", mb, "MB"),
            Result(label, "QIDO instances of the study p50", statistics.median(qido) * 1000, "ms"),
            Result(label, "rendered JPEG (window) p50", statistics.median(rendered) * 1000, "ms",
                   "rendering core alone", statistics.median(core) * 1000),
        ]
        http.close()
    if "--no-orthanc" not in argv:
        from orthanc import Orthanc

        with Orthanc(dicomweb=True) as peer:
            answers = peer.upload(blobs)
            study_uid = peer.http.get(f"/studies/{answers[0]['ParentStudy']}").json()["MainDicomTags"][
                "StudyInstanceUID"]
            orth = httpx.Client(base_url=peer.url, timeout=600)
            got, orth_s = 0, 0.0
            t0 = time.perf_counter()
            with orth.stream("GET", f"/dicom-web/studies/{study_uid}",
                             headers={"Accept": 'multipart/related; type="application/dicom"'}) as r:
                r.raise_for_status()
                for chunk in r.iter_bytes(256 * 1024):
                    got += len(chunk)
            orth_s = time.perf_counter() - t0
            orth.close()
        wado = next(r for r in results if r.metric.startswith("WADO-RS"))
        results.append(Result(label, "WADO-RS whole study (owner)", wado.value, "MB/s",
                              "Orthanc DICOMweb plugin, same study", got / 1024**2 / orth_s))
    emit(results, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
