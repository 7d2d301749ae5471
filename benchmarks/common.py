"""Shared pieces of the benchmarks: a private embedded stack on the `bench` ports, results, memory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from harness import ServiceProcess, Stack, embedded  # noqa: E402


@dataclass
class Result:
    """One figure next to its baseline measured in the same run."""

    benchmark: str
    metric: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    target: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline_value in (None, 0):
            return None
        return self.value / self.baseline_value


def table(results: list[Result]) -> str:
    rows = ["| benchmark | figure | value | baseline (same run) | ratio | target |", "|---|---|---|---|---|---|"]
    for r in results:
        base = f"{r.baseline}: {r.baseline_value:.1f} {r.unit}" if r.baseline_value is not None else ""
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else ""
        rows.append(f"| {r.benchmark} | {r.metric} | {r.value:.1f} {r.unit} | {base} | {ratio} | {r.target} |")
    return "\n".join(rows)


def emit(results: list[Result], argv: list[str]) -> None:
    """Print the table; with `--json PATH` also write the figures for `make bench`."""
    print(table(results))
    if "--json" in argv:
        path = Path(argv[argv.index("--json") + 1])
        path.write_text(json.dumps([asdict(r) for r in results], indent=2))


@contextlib.contextmanager
def bench_stack(services: tuple[str, ...], env: dict[str, dict[str, str]] | None = None
                ) -> Iterator[tuple[Any, dict[str, ServiceProcess]]]:
    """A fresh embedded stack with the given services running, on the bench ports (or `CASEBOOK_BENCH_PROFILE`)."""
    data = Path(tempfile.mkdtemp(prefix="casebook-bench-"))
    stack = Stack(data, os.environ.get("CASEBOOK_BENCH_PROFILE", "bench"))
    procs: dict[str, ServiceProcess] = {}
    try:
        stack.start_infra()
        for s in services:
            procs[s] = ServiceProcess(stack, s, env=(env or {}).get(s)).start(wait=False)
        for p in procs.values():
            p.wait_ready()
        yield stack, procs
    finally:
        for p in procs.values():
            p.stop()
        stack.stop()
        shutil.rmtree(data, ignore_errors=True)


def token(stack: Any, user: str, roles: str) -> str:
    return str(embedded.make_token(stack.secrets["auth_secret"], user, roles.split(",")))


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process: its peak resident memory so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_info() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB"


_copies_made = 0  # copies made by this process so far: each one is marked with its own number
_copies_lock = threading.Lock()


def _mark_pixels(ds: Any, i: int) -> None:
    """Make copy `i`'s pixels its own, as a viewer shows them: 20 values in the middle of the image are moved
    by an eighth of its range where bit k of `i` is set (the middle: redacting burned-in text at the edges
    must not make two copies alike again). Real slices differ everywhere; without this every copy of one
    template would show the text check the very same picture, which it reads once."""
    import numpy as np

    if "PixelData" not in ds or ds.file_meta.TransferSyntaxUID.is_compressed:
        return
    bits = int(ds.get("BitsAllocated", 8))
    if bits not in (8, 16):
        return
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    arr = np.frombuffer(ds.PixelData, dtype=f"<{'i' if signed else 'u'}{bits // 8}").copy()
    lo, hi = int(arr.min()), int(arr.max())
    delta = max(1, (hi - lo) // 8)
    middle = arr.size // 2
    for bit in range(min(20, arr.size - middle)):
        if (i >> bit) & 1:
            v = int(arr[middle + bit])
            arr[middle + bit] = v + delta if v + delta <= hi else max(lo, v - delta)
    ds.PixelData = arr.tobytes()


def unique_copies(templates: list[bytes], n: int, per_study: int = 0) -> list[bytes]:
    """`n` files cycling over `templates`, each with its own SOPInstanceUID (`per_study` files share a
    study and series; 0 = one study for all), so neither Casebook nor a PACS peer sees duplicates, and
    pixels of its own (`_mark_pixels`), so every copy costs the text check a real read."""
    from io import BytesIO

    import pydicom
    from pydicom.uid import generate_uid

    global _copies_made
    parsed = [pydicom.dcmread(BytesIO(t)) for t in templates]
    out: list[bytes] = []
    with _copies_lock:
        first, _copies_made = _copies_made, _copies_made + n
    study = series = patient = ""
    for i in range(n):
        if (per_study == 0 and i == 0) or (per_study and i % per_study == 0):
            study, series = generate_uid(), generate_uid()
            patient = f"BENCH-{study[-8:]}"
        ds = parsed[i % len(parsed)]
        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.StudyInstanceUID = study
        ds.PatientID = patient  # one patient per study, as a PACS files them
        ds.SeriesInstanceUID = series
        ds.InstanceNumber = i + 1
        original = ds.PixelData if "PixelData" in ds else None
        _mark_pixels(ds, first + i)
        buf = BytesIO()
        ds.save_as(buf)
        if original is not None:
            ds.PixelData = original
        out.append(buf.getvalue())
    return out


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each component and everything it started (PostgreSQL's backends, pool workers)."""
    import psutil

    out = {}
    for name, pid in pids.items():
        total = 0.0
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = p.cpu_times()
                    total += t.user + t.system
        out[name] = total
    return out


def stack_pids(stack: Any, procs: dict[str, Any]) -> dict[str, int]:
    """The infrastructure's and the services' process ids (for `cpu_seconds`)."""
    pids = {n: int(stack.pid(n)) for n in ("broker", "s3", "postgres")}
    pids.update({s: p.proc.pid for s, p in procs.items() if p.proc is not None})
    return pids
