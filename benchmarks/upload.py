"""Upload throughput through the gateway next to a direct S3 put of the same bytes, and the gateway's memory.

    python benchmarks/upload.py [--size-mb 1024] [--rounds 3] [--quick] [--json out.json]

A synthetic multi-frame DICOM of the given size is posted to the running gateway (which spools it, writes
it to the incoming bucket while it arrives, checks it, then completes the object); the same file is then
put straight into S3 with the minio client (16 MiB parts, 3 at a time). A first direct put, not counted,
warms the store and the page cache; then each round does both, in alternating order, so a busy machine
weighs on both alike; the round with the median ratio is reported. The gateway's peak resident
memory (VmHWM) over all rounds is read from /proc.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
from common import Result, bench_stack, cpu_seconds, emit, peak_rss_mb, rss_mb, stack_pids, token
from minio import Minio

CHUNK = 8 * 1024 * 1024


def big_dicom(path: Path, size_mb: int, *, sop_uid: str | None = None) -> int:
    """CT_small's header with `size_mb` of pixel frames appended as one explicit-length OW element."""
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    frame = int(ds.Rows) * int(ds.Columns) * 2
    frames = max(1, size_mb * 1024 * 1024 // frame)
    del ds.PixelData
    ds.NumberOfFrames = frames
    if sop_uid is not None:
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    pixel_len = frames * frame
    with open(path, "wb") as f:
        f.write(buf.getvalue())
        f.write(b"\xe0\x7f\x10\x00OW\x00\x00" + pixel_len.to_bytes(4, "little"))
        block = os.urandom(CHUNK)
        left = pixel_len
        while left:
            n = min(left, CHUNK)
            f.write(block[:n])
            left -= n
    return path.stat().st_size


def main(argv: list[str]) -> None:
    size_mb = 128 if "--quick" in argv else int(argv[argv.index("--size-mb") + 1]) if "--size-mb" in argv else 1024
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 1 if "--quick" in argv else 3
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp, bench_stack(("gateway",)) as (stack, procs):
        path = Path(tmp) / "big.dcm"
        size = big_dicom(path, size_mb)
        mb = size / 1024 / 1024
        gw = procs["gateway"]
        assert gw.proc is not None
        idle = rss_mb(gw.proc.pid)
        auth = {"Authorization": f"Bearer {token(stack, 'bench', 'contributor')}"}
        s3 = Minio(f"127.0.0.1:{stack.ports.s3}", stack.secrets["s3_access_key"], stack.secrets["s3_secret_key"],
                   secure=False)
        gateway_rates: list[float] = []
        direct_rates: list[float] = []
        pids = stack_pids(stack, procs)
        cpu = {"gateway": {"gateway": 0.0, "s3": 0.0, "client": 0.0}, "direct": {"s3": 0.0, "client": 0.0}}

        @contextlib.contextmanager
        def counted(side: str) -> Iterator[None]:
            """Adds the CPU seconds each process spends on one transfer to `cpu[side]`."""
            before, mine = cpu_seconds(pids), os.times()
            yield
            after, now = cpu_seconds(pids), os.times()
            for name in cpu[side]:
                cpu[side][name] += (now.user + now.system - mine.user - mine.system if name == "client"
                                    else after[name] - before[name])
        with httpx.Client(base_url=gw.url, headers=auth, timeout=600) as c:
            cid = c.post("/v1/cases", json={"title": "bench"}).json()["id"]
            sid = c.post(f"/v1/cases/{cid}/studies", json={"modality": "CT"}).json()["id"]

            def through_gateway() -> None:
                with open(path, "rb") as f, counted("gateway"):
                    t0 = time.perf_counter()
                    r = c.post(f"/v1/cases/{cid}/studies/{sid}/uploads", files={"file": ("big.dcm", f)})
                    gateway_rates.append(mb / (time.perf_counter() - t0))
                assert r.status_code == 202, r.text
                stored = s3.stat_object("casebook-incoming", f"{cid}/{r.json()['images'][0]['id']}")
                assert stored.size == size, (stored.size, size)

            def direct(n: int, rates: list[float]) -> None:
                with open(path, "rb") as f, counted("direct") if rates is direct_rates else contextlib.nullcontext():
                    t0 = time.perf_counter()
                    s3.put_object("casebook-incoming", f"bench/direct-{n}", f, size, part_size=16 * 1024 * 1024)
                    rates.append(mb / (time.perf_counter() - t0))

            direct(-1, [])  # not counted: the store's first volumes are made, the file is in the page cache
            for n in range(rounds):  # the order alternates, so neither side always runs first
                if n % 2:
                    direct(n, direct_rates)
                    through_gateway()
                else:
                    through_gateway()
                    direct(n, direct_rates)
                print(f"round {n + 1}: gateway {gateway_rates[-1]:.1f} MB/s, direct {direct_rates[-1]:.1f} MB/s, "
                      f"{gateway_rates[-1] / direct_rates[-1]:.2f}x", file=sys.stderr)
        peak = peak_rss_mb(gw.proc.pid)
    gib = mb * rounds / 1024
    for side, spent in cpu.items():
        print(f"CPU s per GiB, {side}: " + ", ".join(f"{n} {v / gib:.1f}" for n, v in spent.items()), file=sys.stderr)
    # The round whose ratio is the median: each ratio pairs two transfers a moment apart, which a shared
    # machine's load swings less than it swings either figure from one round to the next.
    ratios = [g / d for g, d in zip(gateway_rates, direct_rates, strict=True)]
    middle = ratios.index(statistics.median_low(ratios))
    label = f"upload {mb:.0f} MB DICOM"
    results.append(Result(label, f"through the gateway (median round of {rounds})", gateway_rates[middle],
                          "MB/s", "direct S3 put", direct_rates[middle], "≥ 0.8×"))
    results.append(Result(label, "CPU per GiB, all processes, through the gateway", sum(cpu["gateway"].values()) / gib,
                          "s", "direct S3 put", sum(cpu["direct"].values()) / gib, ""))
    results.append(Result(label, "gateway process CPU per GiB", cpu["gateway"]["gateway"] / gib, "s",
                          "store CPU per GiB through the gateway", cpu["gateway"]["s3"] / gib, ""))
    results.append(Result(label, "gateway peak RSS", peak, "MB", "gateway idle RSS", idle, "< 200 MB"))
    emit(results, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
