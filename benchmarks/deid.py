"""Throughput of the de-identification core against its floor and against dicognito.

Floor = plain pydicom ``dcmread`` + ``save_as`` (nothing can be faster without skipping the parse
or the write).  The header path is measured with OCR routing disabled so every corpus object takes
the same path; OCR cost is measured separately on generated images with burned-in text.

    python benchmarks/deid.py            # 500 copies of CT_small and MR_small + corpus
    python benchmarks/deid.py --quick    # 50 copies, fewer OCR images (< 60 s)
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file, get_testdata_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "anonymiser"))

from casebook_anonymiser.deid import CaseKey, deidentify_bytes
from casebook_anonymiser.deid import dicom as deid_dicom

KEY = CaseKey(secret=b"benchmark-secret-0123456789", key_id="bench", case_id="bench-case")


_NEEDS_OCR = deid_dicom.needs_ocr
ROUNDS = 3


def _header_path_only(enabled: bool = True) -> None:
    deid_dicom.needs_ocr = (lambda ds: False) if enabled else _NEEDS_OCR
    warnings.simplefilter("ignore")


def _floor(data: bytes) -> None:
    ds = pydicom.dcmread(BytesIO(data))
    ds.save_as(BytesIO())


def _casebook(data: bytes) -> None:
    deidentify_bytes(data, key=KEY, ocr=False)


def _dicognito_factory() -> Callable[[bytes], None] | None:
    try:
        from dicognito.anonymizer import Anonymizer
    except ImportError:
        return None
    anonymizer = Anonymizer()

    def run(data: bytes) -> None:
        ds = pydicom.dcmread(BytesIO(data))
        anonymizer.anonymize(ds)
        ds.save_as(BytesIO())

    return run


def _rate(fn: Callable[[bytes], None], blobs: list[bytes]) -> tuple[float, int]:
    """Files per second over ``blobs`` (errors are counted; they still take their time)."""
    errors = 0
    start = time.perf_counter()
    for data in blobs:
        try:
            fn(data)
        except Exception:
            errors += 1
    return len(blobs) / (time.perf_counter() - start), errors


def _worker_init() -> None:
    _header_path_only()


def _worker_file(path: str) -> str:
    result = deidentify_bytes(Path(path).read_bytes(), key=KEY, ocr=False)
    return str(result.status)


def _rate_parallel(paths: list[str], workers: int) -> float:
    """Best of ROUNDS passes over ``paths`` with one warm pool of ``workers`` processes."""
    best = 0.0
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
        list(pool.map(_worker_file, paths[: workers * 4]))  # warm up imports in every worker
        for _ in range(ROUNDS):
            start = time.perf_counter()
            list(pool.map(_worker_file, paths, chunksize=max(1, len(paths) // (workers * 8))))
            best = max(best, len(paths) / (time.perf_counter() - start))
    return best


def _corpus() -> list[str]:
    root = os.path.join(os.path.dirname(pydicom.data.__file__), "test_files")
    files = set(get_testdata_files()) | set(glob.glob(os.path.join(root, "**", "*"), recursive=True))
    readable = []
    for f in sorted(files):
        if not os.path.isfile(f):
            continue
        try:
            ds = pydicom.dcmread(f)
            if "SOPClassUID" in ds:
                ds.save_as(BytesIO())
                readable.append(f)
        except Exception:
            continue
    return readable


def _ocr_images(count: int) -> list[bytes]:
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    blobs = []
    for i in range(count):
        img = Image.new("L", (512, 384), 0)
        draw = ImageDraw.Draw(img)
        draw.ellipse((120, 90, 400, 360), fill=100)
        draw.text((12, 12), f"PATIENT {i:04d} ROE^JANE", fill=255, font=ImageFont.load_default(size=32))
        if i % 2 == 0:
            buf = BytesIO()
            img.save(buf, format="PNG")
            blobs.append(buf.getvalue())
            continue
        arr = np.asarray(img)
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = SecondaryCaptureImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.Modality = "OT"
        ds.Rows, ds.Columns = arr.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = arr.tobytes()
        buf = BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        blobs.append(buf.getvalue())
    return blobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 copies and 4 OCR images")
    parser.add_argument("--copies", type=int, default=None)
    parser.add_argument("--json", help="write the figures for `make bench` here")
    args = parser.parse_args(argv)
    copies = args.copies or (50 if args.quick else 500)
    workers = os.cpu_count() or 1
    _header_path_only()
    dicognito = _dicognito_factory()

    tmp = Path(tempfile.mkdtemp(prefix="casebook-deid-bench-"))
    figures: list[dict[str, object]] = []

    def figure(bench: str, metric: str, value: float, unit: str, baseline: str = "",
               baseline_value: float | None = None, target: str = "") -> None:
        figures.append({"benchmark": bench, "metric": metric, "value": value, "unit": unit, "baseline": baseline,
                        "baseline_value": baseline_value, "target": target})

    try:
        sets: list[tuple[str, list[str]]] = []
        for name in ("CT_small.dcm", "MR_small.dcm"):
            src = str(get_testdata_file(name))
            folder = tmp / name.split(".")[0]
            folder.mkdir()
            paths = []
            for i in range(copies):
                dst = folder / f"{i:05d}.dcm"
                shutil.copyfile(src, dst)
                paths.append(str(dst))
            sets.append((f"{name.split('.')[0]} x{copies}", paths))
        sets.append(("pydicom corpus", _corpus()))

        header = (
            f"{'dataset':<20}{'files':>6}{'floor/s':>10}{'cb 1p/s':>10}{f'cb {workers}p/s':>10}"
            f"{'dicognito/s':>13}{'cb/floor':>10}{'cb/dicog':>10}{'ready':>7}"
        )
        print(header)
        print("-" * len(header))
        for label, paths in sets:
            blobs = [Path(p).read_bytes() for p in paths]
            ready = sum(deidentify_bytes(b, key=KEY, ocr=False).status == "ready" for b in blobs)
            # Other work on the machine skews sequential timings, so the three contenders run
            # back-to-back in several rounds and each keeps its best round.
            floor = ours = dicog = 0.0
            dicog_errors = 0
            for _ in range(ROUNDS):
                floor = max(floor, _rate(_floor, blobs)[0])
                ours = max(ours, _rate(_casebook, blobs)[0])
                if dicognito:
                    rate, dicog_errors = _rate(dicognito, blobs)
                    dicog = max(dicog, rate)
            dicog = dicog or float("nan")
            parallel = _rate_parallel(paths, workers) if workers > 1 else ours
            note = f"  (dicognito errors: {dicog_errors})" if dicog_errors else ""
            print(
                f"{label:<20}{len(blobs):>6}{floor:>10.1f}{ours:>10.1f}{parallel:>10.1f}{dicog:>13.1f}"
                f"{ours / floor:>10.2f}{ours / dicog:>10.2f}{ready:>7}{note}"
            )
            bench = f"deid {label}"
            figure(bench, "casebook, 1 process", ours, "files/s", "pydicom read+write", floor, ">= 0.8x")
            figure(bench, "casebook, 1 process", ours, "files/s", "dicognito 0.19", dicog, ">= 3x")
            figure(bench, f"casebook, {workers} processes", parallel, "files/s", "pydicom read+write", floor)

        n_ocr = 4 if args.quick else 12
        _header_path_only(False)
        images = _ocr_images(n_ocr)
        deidentify_bytes(images[0], key=KEY, ocr=True)  # load the OCR models outside the timing
        start = time.perf_counter()
        statuses = [deidentify_bytes(b, key=KEY, ocr=True) for b in images]
        elapsed = time.perf_counter() - start
        redacted = sum("burned_in_text_redacted" in r.info.get("flags", []) for r in statuses)
        quarantined = sum(r.status != "ready" for r in statuses)
        print()
        title = "OCR path (512x384 PNG + SC with text)"
        print(f"{title:<40}{'images':>8}{'images/s':>10}{'redacted':>10}{'quarantined':>13}")
        print(f"{'casebook 1 process':<40}{n_ocr:>8}{n_ocr / elapsed:>10.2f}{redacted:>10}{quarantined:>13}")
        figure("deid OCR path (images with burned-in text)", "casebook, 1 process", n_ocr / elapsed, "img/s")
        if args.json:
            import json

            Path(args.json).write_text(json.dumps(figures, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
