"""Export throughput against a plain S3 read, and the export worker's peak memory, on SeaweedFS."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from minio import Minio
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services" / "export"))

from casebook_export.archive import (  # noqa: E402
    MinioSource,
    build_originals,
    build_presentation,
    upload_stream,
)
from casebook_export.model import ExportCase, ExportImage, ExportSeries, ExportStudy  # noqa: E402

ACCESS_KEY, SECRET_KEY = "x", "y"
IMAGES_BUCKET, EXPORTS_BUCKET = "bench-images", "bench-exports"
MB = 1024 * 1024


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def seaweedfs() -> Iterator[str]:
    """Run a private `weed mini` on free ports (never the defaults) and yield its S3 endpoint."""
    weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    names = [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
        "webdav.port",
        "admin.port",
        "admin.port.grpc",
    ]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    with tempfile.TemporaryDirectory(prefix="bench-weed-") as data_dir:
        args = [
            weed,
            "mini",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
        ]
        args += [f"-{name}={port}" for name, port in ports.items()]
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        log = open(Path(data_dir) / "weed.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        endpoint = f"127.0.0.1:{ports['s3.port']}"
        try:
            _wait_ready(endpoint, proc, Path(data_dir) / "weed.log")
            yield endpoint
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _wait_ready(endpoint: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    client = _client(endpoint)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(Exception):
            client.make_bucket("bench-ready")
            return
        time.sleep(0.3)
    raise RuntimeError(f"SeaweedFS not ready after {timeout}s:\n{log.read_text()[-2000:]}")


def _client(endpoint: str) -> Minio:
    return Minio(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)


def _synthetic_dicom(seed: int, edge: int) -> bytes:
    """A CT-like 16-bit DICOM of about edge*edge*2 bytes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:edge, 0:edge]
    body = ((x - edge / 2) ** 2 + (y - edge / 2) ** 2 < (edge * 0.4) ** 2) * 1040
    pixels = (body + rng.integers(0, 60, (edge, edge))).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns = edge, edge
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def seed_case(client: Minio, name: str, count: int, edge: int) -> dict[str, Any]:
    """Upload `count` synthetic DICOM images and return the case description as JSON data."""
    blobs = [_synthetic_dicom(seed, edge) for seed in range(4)]
    keys = [f"{name}/{i:05d}" for i in range(count)]

    def put(i: int) -> None:
        blob = blobs[i % len(blobs)]
        client.put_object(IMAGES_BUCKET, keys[i], io.BytesIO(blob), len(blob), content_type="application/dicom")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))
    images = [
        {"image_id": f"{i}", "object_key": keys[i], "media_type": "application/dicom", "size": len(blobs[i % 4])}
        for i in range(count)
    ]
    return {"case_id": name, "images": images}


def _case_from(data: dict[str, Any]) -> ExportCase:
    images = [ExportImage(**image) for image in data["images"]]
    series = ExportSeries(1, "axial 1 mm", images)
    return ExportCase(
        case_id=data["case_id"],
        title="Benchmark case",
        presentation="Synthetic.",
        patient_age=50,
        patient_sex="female",
        systems=["Chest"],
        tags=["benchmark"],
        diagnosis="None",
        diagnostic_certainty="certain",
        discussion="",
        author_name="Bench",
        attribution="",
        licence="",
        studies=[ExportStudy(1, "CT", "None.", [series])],
    )


def plain_read(client: Minio, data: dict[str, Any]) -> tuple[int, float]:
    """Read every object of the case sequentially, as the export does; bytes and seconds."""
    total = 0
    start = time.perf_counter()
    for image in data["images"]:
        response = client.get_object(IMAGES_BUCKET, image["object_key"])
        try:
            while chunk := response.read(MB):
                total += len(chunk)
        finally:
            response.close()
            response.release_conn()
    return total, time.perf_counter() - start


def plain_copy(client: Minio, data: dict[str, Any], key: str, parallel: int = 2) -> tuple[int, float]:
    """Read every object and write the bytes back as one multipart object, without a zip, `parallel` parts
    uploading at once."""

    def chunks() -> Iterator[bytes]:
        for image in data["images"]:
            response = client.get_object(IMAGES_BUCKET, image["object_key"])
            try:
                while chunk := response.read(MB):
                    yield chunk
            finally:
                response.close()
                response.release_conn()

    start = time.perf_counter()
    result = upload_stream(client, EXPORTS_BUCKET, key, chunks(), parallel_parts=parallel)
    return result.size, time.perf_counter() - start


def build_only(client: Minio, data: dict[str, Any]) -> tuple[int, float]:
    """Build the originals zip and discard it: the read + zip part of an export."""
    start = time.perf_counter()
    total = sum(len(chunk) for chunk in build_originals(_case_from(data), source=MinioSource(client, IMAGES_BUCKET)))
    return total, time.perf_counter() - start


def _peak_rss_mb() -> float:
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(endpoint: str, kind: str, case_file: str, parallel: int = 2) -> None:
    """Run one export in this process and print its figures as JSON."""
    client = _client(endpoint)
    case = _case_from(json.loads(Path(case_file).read_text()))
    source = MinioSource(client, IMAGES_BUCKET)
    start = time.perf_counter()
    if kind == "originals":
        chunks = build_originals(case, source=source)
        content_type = "application/zip"
    else:
        chunks = build_presentation([case], source=source)
        content_type = "text/html; charset=utf-8"
    result = upload_stream(client, EXPORTS_BUCKET, f"{case.case_id}/{kind}-{parallel}", chunks,
                           content_type=content_type, parallel_parts=parallel)
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "bytes": result.size, "peak_rss_mb": _peak_rss_mb()}))


def run_child(endpoint: str, kind: str, data: dict[str, Any], workdir: Path, parallel: int = 2) -> dict[str, float]:
    case_file = workdir / f"{data['case_id']}.json"
    case_file.write_text(json.dumps(data))
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--s3-endpoint", endpoint, "--case-file", str(case_file),
         "--parallel", str(parallel)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


PARALLEL = (2, 4)  # parts uploading at once: the export's default (archive.upload_stream) and twice that


def benchmark(endpoint: str, quick: bool) -> list[tuple[Any, ...]]:
    """Seed the cases, measure, and print the table.

    For each parallelism in PARALLEL the export and the plain copy of the same bytes run at that
    parallelism (alternating, best of two each), so every export figure has the copy beside it that used
    the same number of parallel part uploads; the fastest copy of all is reported too."""
    client = _client(endpoint)
    for bucket in (IMAGES_BUCKET, EXPORTS_BUCKET):
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
    edge = 1448  # 1448^2 * 2 bytes ~ 4 MiB per image
    sizes = [("small", 10), ("large", 25)] if quick else [("250MB", 62), ("1GB", 250)]
    presentation_count = 5 if quick else 25
    run = f"run{int(time.time())}"
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        workdir = Path(tmp)
        for label, count in sizes:
            data = seed_case(client, f"{run}-{label}", count, edge)
            plain_read(client, data)  # warm the store's caches for every contender alike
            nbytes, read_s = plain_read(client, data)
            zip_bytes, build_s = build_only(client, data)
            # Writes are noisy on a small store (volume growth, flushes): alternate
            # the two writers and keep the best of two runs of each.
            for parallel in PARALLEL:
                copy_s, export = float("inf"), {"seconds": float("inf"), "peak_rss_mb": 0.0}
                for attempt in range(2):
                    trial = run_child(endpoint, "originals", data, workdir, parallel)
                    peak = max(export["peak_rss_mb"], trial["peak_rss_mb"])
                    if trial["seconds"] < export["seconds"]:
                        export = trial
                    export["peak_rss_mb"] = peak
                    copy_s = min(copy_s, plain_copy(client, data, f"{run}-{label}/copy{parallel}-{attempt}",
                                                    parallel)[1])
                rows.append(
                    (
                        f"originals {label} x{parallel}",
                        count,
                        nbytes / MB,
                        nbytes / MB / read_s,
                        nbytes / MB / copy_s,
                        zip_bytes / MB / build_s,
                        nbytes / MB / export["seconds"],
                        export["peak_rss_mb"],
                    )
                )
        data = seed_case(client, f"{run}-pres", presentation_count, edge)
        nbytes, read_s = plain_read(client, data)
        export = run_child(endpoint, "presentation", data, workdir)
        rows.append(
            (
                "presentation",
                presentation_count,
                nbytes / MB,
                nbytes / MB / read_s,
                float("nan"),
                float("nan"),
                nbytes / MB / export["seconds"],
                export["peak_rss_mb"],
            )
        )
    print(f"\nexport benchmark on {endpoint} ({os.cpu_count()} cores); targets: export/read >= 0.7, peak RSS < 256 MB")
    header = ("export", "images", "MB", "S3 read", "S3 copy", "zip build", "export", "exp/read", "exp/copy", "RSS MB")
    print("{:<18} {:>6} {:>6} {:>8} {:>8} {:>9} {:>7} {:>8} {:>8} {:>7}".format(*header))
    for name, count, size_mb, read_mbs, copy_mbs, build_mbs, export_mbs, rss in rows:
        print(
            f"{name:<18} {count:>6} {size_mb:>6.0f} {read_mbs:>8.1f} {copy_mbs:>8.1f} {build_mbs:>9.1f} "
            f"{export_mbs:>7.1f} {export_mbs / read_mbs:>8.2f} {export_mbs / copy_mbs:>8.2f} {rss:>7.0f}"
        )
    print(
        "MB/s of case data. S3 read: sequential GETs. S3 copy: the same GETs streamed into one multipart PUT "
        "(no zip).\nzip build: read + zip, output discarded. export: read + zip + multipart upload, in a child "
        "process whose\npeak RSS (VmHWM) is shown. presentation: DICOM rendered to 1024-px JPEG frames, "
        "one HTML file."
    )
    return rows


def results(rows: list[tuple[Any, ...]]) -> list[Any]:
    """The figures for `make bench`'s table."""
    from common import Result

    out = []
    fastest: dict[str, float] = {}
    for name, *_rest in rows:
        copy_mbs = _rest[3]
        case = name.rsplit(" x", 1)[0]
        if copy_mbs == copy_mbs:
            fastest[case] = max(fastest.get(case, 0.0), copy_mbs)
    for name, count, size_mb, read_mbs, copy_mbs, _build, export_mbs, rss in rows:
        label = f"export {name} ({count} images, {size_mb:.0f} MB)"
        out.append(Result(label, "export", export_mbs, "MB/s", "plain S3 read", read_mbs, ">= 0.7x"))
        if copy_mbs == copy_mbs:  # not NaN
            parts = name.rsplit(" x", 1)[1]
            out.append(Result(label, "export", export_mbs, "MB/s", f"S3 copy, same bytes, {parts} parts at once",
                              copy_mbs, ">= 0.9x"))
            out.append(Result(label, "export", export_mbs, "MB/s", "fastest S3 copy (any parallelism)",
                              fastest[name.rsplit(" x", 1)[0]]))
        out.append(Result(label, "worker peak RSS", rss, "MB", target="< 256 MB"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--s3-endpoint", help="host:port of an S3 store (access key x, secret y); default: start a private SeaweedFS"
    )
    parser.add_argument("--quick", action="store_true", help="small cases, under a minute")
    parser.add_argument("--child", choices=["originals", "presentation"], help=argparse.SUPPRESS)
    parser.add_argument("--case-file", help=argparse.SUPPRESS)
    parser.add_argument("--parallel", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the figures for `make bench` here")
    args = parser.parse_args()
    if args.child:
        child(args.s3_endpoint, args.child, args.case_file, args.parallel)
        return
    started = time.perf_counter()
    if args.s3_endpoint:
        rows = benchmark(args.s3_endpoint, args.quick)
    else:
        with seaweedfs() as endpoint:
            rows = benchmark(endpoint, args.quick)
    if args.json:
        from dataclasses import asdict

        Path(args.json).write_text(json.dumps([asdict(r) for r in results(rows)], indent=2))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
