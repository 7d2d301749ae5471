"""Four 2 GB DICOM uploads at once: the anonymiser's memory against its Kubernetes limit, and the time to ready.

    python benchmarks/large_uploads.py [--size-mb 2000] [--uploads 4] [--quick] [--json out.json]

Four multi-frame DICOM objects of `--size-mb` each (distinct instances, noise pixels) are posted to the
gateway at once; the anonymiser (its service process and every pool worker) is sampled from /proc every
0.2 s until all four are ready or quarantined. Reported: the peak of the anonymiser's summed resident
memory (and of its anonymous part: file pages of the memory-mapped input are reclaimable) beside the
2 Gi limit of `deploy/k8s/base/services/anonymiser.yaml`; the time from the first byte sent to the last
image terminal. Baseline in the same run: one object of the same size through the in-memory path alone
(`deidentify_to_path` with streaming off, in a child process), its peak resident memory.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx
import psutil
from common import Result, bench_stack, emit, token
from pydicom.uid import generate_uid
from upload import big_dicom

LIMIT_MB = 2048  # the anonymiser's memory limit in deploy/k8s/base/services/anonymiser.yaml (2Gi)
GATEWAY_LIMIT_MB = 1024  # the gateway's (deploy/k8s/base/services/gateway.yaml)


class Sampler(threading.Thread):
    """Peak summed RSS (and anonymous RSS) of a process and its descendants."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak_rss = self.peak_anon = 0.0
        self.peak_processes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rss = anon = 0.0
            procs = [self.root, *self.root.children(recursive=True)]
            for p in procs:
                try:
                    full = p.memory_full_info()
                    rss += full.rss
                    anon += full.rss - full.shared
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss / 2**20)
            self.peak_anon = max(self.peak_anon, anon / 2**20)
            self.peak_processes = max(self.peak_processes, len(procs))
            time.sleep(0.2)


_IN_MEMORY = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from casebook_anonymiser.deid import CaseKey, deidentify_to_path
    key = CaseKey(secret=b"bench-secret-0123456789abcdef", key_id="k", case_id="c")
    r = deidentify_to_path(Path(sys.argv[1]), Path(sys.argv[2]), key=key, stream_min=int(sys.argv[3]))
    print(r.status, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def alone(src: Path, dst: Path, stream_min: int) -> tuple[str, float, float]:
    """One object in a child process: its status, peak RSS (MB) and seconds."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _IN_MEMORY, str(src), str(dst), str(stream_min)],
                         capture_output=True, text=True, timeout=3600, check=True).stdout.split()
    dst.unlink(missing_ok=True)
    return out[0], int(out[1]) / 1024, time.perf_counter() - t0


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    size_mb = int(argv[argv.index("--size-mb") + 1]) if "--size-mb" in argv else (256 if quick else 2000)
    n = int(argv[argv.index("--uploads") + 1]) if "--uploads" in argv else 4
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="casebook-large-") as tmp:
        paths = [Path(tmp) / f"large-{i}.dcm" for i in range(n)]
        for p in paths:
            big_dicom(p, size_mb, sop_uid=generate_uid())
        mb = paths[0].stat().st_size / 2**20
        status, mem_peak, mem_s = alone(paths[0], Path(tmp) / "out-memory.dcm", stream_min=1 << 62)
        status_s, stream_peak, stream_s = alone(paths[0], Path(tmp) / "out-stream.dcm", stream_min=0)
        print(f"one {mb:.0f} MB object alone: in memory {status} {mem_peak:.0f} MB {mem_s:.1f} s; "
              f"streamed {status_s} {stream_peak:.0f} MB {stream_s:.1f} s", flush=True)
        with bench_stack(("gateway", "anonymiser")) as (stack, procs):
            anonymiser = procs["anonymiser"]
            assert anonymiser.proc is not None
            sampler = Sampler(anonymiser.proc.pid)
            gateway = Sampler(procs["gateway"].proc.pid)  # type: ignore[union-attr]
            sampler.start()
            gateway.start()
            auth = {"Authorization": f"Bearer {token(stack, 'bench', 'contributor')}"}
            with httpx.Client(base_url=procs["gateway"].url, headers=auth, timeout=3600) as c:
                cid = c.post("/v1/cases", json={"title": "large uploads"}).json()["id"]
                sid = c.post(f"/v1/cases/{cid}/studies", json={"modality": "CT"}).json()["id"]
                codes: list[int] = []

                def send(path: Path) -> None:
                    with httpx.Client(base_url=procs["gateway"].url, headers=auth, timeout=3600) as own, \
                            open(path, "rb") as f:
                        r = own.post(f"/v1/cases/{cid}/studies/{sid}/uploads", files={"file": (path.name, f)})
                        codes.append(r.status_code)

                t0 = time.perf_counter()
                senders = [threading.Thread(target=send, args=(p,)) for p in paths]
                for s in senders:
                    s.start()
                for s in senders:
                    s.join()
                sent_s = time.perf_counter() - t0
                assert codes == [202] * n, codes
                images: list[dict[str, object]] = []
                while time.perf_counter() - t0 < 3600:
                    images = c.get(f"/v1/cases/{cid}/images").json()
                    if len(images) >= n and all(i["status"] in ("ready", "quarantined") for i in images):
                        break
                    time.sleep(0.5)
                total_s = time.perf_counter() - t0
            for s in (sampler, gateway):
                s.stop.set()
                s.join()
        statuses = sorted(str(i["status"]) for i in images)
    print(f"{n} × {mb:.0f} MB: sent in {sent_s:.1f} s, all terminal in {total_s:.1f} s: {statuses}; anonymiser "
          f"peak {sampler.peak_rss:.0f} MB RSS ({sampler.peak_anon:.0f} MB anonymous) over "
          f"{sampler.peak_processes} processes; gateway peak {gateway.peak_rss:.0f} MB", flush=True)
    label = f"{n} × {mb:.0f} MB DICOM uploads at once"
    results.append(Result(label, "anonymiser peak RSS (service + workers)", sampler.peak_rss, "MB",
                          "memory limit", LIMIT_MB, f"< {LIMIT_MB} MB"))
    results.append(Result(label, "anonymiser peak anonymous RSS", sampler.peak_anon, "MB", "memory limit", LIMIT_MB))
    results.append(Result(label, "gateway peak RSS", gateway.peak_rss, "MB", "its memory limit", GATEWAY_LIMIT_MB))
    results.append(Result(label, "upload → all terminal", n * mb / total_s, "MB/s"))
    results.append(Result(f"one {mb:.0f} MB object, core alone", "streamed: peak RSS", stream_peak, "MB",
                          "in memory: peak RSS", mem_peak))
    results.append(Result(f"one {mb:.0f} MB object, core alone", "streamed: seconds", stream_s, "s",
                          "in memory: seconds", mem_s))
    if statuses != ["ready"] * n:
        print(f"warning: not every upload became ready: {statuses}", file=sys.stderr)
    emit(results, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
