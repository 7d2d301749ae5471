"""``casebook-deid IN_DIR OUT_DIR``: de-identify a folder of uploads as one case.

Useful for bulk imports and for checking a local collection before upload.  All files share one
case key (same date offset, same pseudonym, consistent UIDs), like the service does per case.
Outputs are named from the pseudonymised ids only (``<study>/<series>/<instance>.dcm``, or a keyed
digest for PNG/JPEG): input folder and file names often carry patient names or original UIDs, so
they never reach the output. One line per file says what was done or why it was refused.
Exit codes: 0 all files ready, 3 some quarantined, 2 usage error.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from casebook_anonymiser.deid import CaseKey, DeidResult, deidentify_file

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_QUARANTINED = 3
DEFAULT_SECRET_ENV = "CASEBOOK_DEID_SECRET"  # noqa: S105 - the variable's name, not a secret
KEY_ID_ENV = "CASEBOOK_DEID_KEY_ID"


def _init_worker() -> None:
    # One ONNX thread per worker process: the pool already uses every core.
    os.environ["CASEBOOK_OCR_THREADS"] = "1"


def output_name(result: DeidResult, key: CaseKey) -> str:
    """Where a result goes inside OUT_DIR, built from de-identified values only."""
    info = result.info
    if result.media_type == "application/dicom" and info.get("sop_instance_uid"):
        parts = [info.get("study_uid") or "study", info.get("series_uid") or "series", info["sop_instance_uid"]]
        return "/".join(parts) + ".dcm"
    content = hashlib.sha256(result.data or b"").hexdigest()
    digest = key.uid("casebook-deid-file:" + content).split(".")[-1][:24]
    return f"images/{digest}.{'png' if result.media_type == 'image/png' else 'jpg'}"


def _summary(result: DeidResult) -> str:
    report = result.info.get("report") or {}
    parts = [f"kept {len(report.get('kept', []))}", f"removed {len(report.get('removed', []))}",
             f"rewritten {len(report.get('rewritten', []))}"]
    if report.get("text_regions_redacted"):
        parts.append(f"text regions redacted {len(report['text_regions_redacted'])}")
    parts += [a for a in report.get("pixels", []) if isinstance(a, str)]
    return ", ".join(parts) if report else ", ".join(result.info.get("actions", []))


def _process(src: str, out_dir: str, key: CaseKey, ocr: bool) -> tuple[str, list[str], str]:
    result = deidentify_file(src, key=key, ocr=ocr)
    if result.status == "ready" and result.data is not None:
        name = output_name(result, key)
        out = Path(out_dir) / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(result.data)
        return result.status, result.reasons, f"{name}: {_summary(result)}"
    return result.status, result.reasons, ""


def _walk(root: Path, skip: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and skip not in path.parents:
            yield path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="casebook-deid", description=__doc__.splitlines()[0])
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--case-id", help="case identifier (default: name of IN_DIR)")
    parser.add_argument("--secret-env", default=DEFAULT_SECRET_ENV, help="environment variable holding the secret")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-ocr", action="store_true",
                        help="disable the burned-in text check (every image is then quarantined)")
    args = parser.parse_args(argv)

    in_dir: Path = args.in_dir.resolve()
    out_dir: Path = args.out_dir.resolve()
    if not in_dir.is_dir():
        print(f"casebook-deid: not a directory: {args.in_dir}", file=sys.stderr)
        return EXIT_USAGE
    if out_dir == in_dir:
        print("casebook-deid: OUT_DIR must differ from IN_DIR", file=sys.stderr)
        return EXIT_USAGE
    if args.workers < 1:
        print("casebook-deid: --workers must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    secret = os.environ.get(args.secret_env, "")
    if len(secret.encode("utf-8")) < 16:
        print(f"casebook-deid: ${args.secret_env} must hold a secret of at least 16 bytes", file=sys.stderr)
        return EXIT_USAGE
    key = CaseKey(
        secret=secret.encode("utf-8"),
        key_id=os.environ.get(KEY_ID_ENV, "local"),
        case_id=args.case_id or in_dir.name,
    )

    jobs = list(_walk(in_dir, out_dir))
    ocr = not args.no_ocr
    results: list[tuple[Path, str, list[str], str]] = []
    if args.workers == 1 or len(jobs) <= 1:
        for src in jobs:
            results.append((src, *_process(str(src), str(out_dir), key, ocr)))
    else:
        with ProcessPoolExecutor(max_workers=args.workers, initializer=_init_worker) as pool:
            futures = [(src, pool.submit(_process, str(src), str(out_dir), key, ocr)) for src in jobs]
            for src, fut in futures:
                try:
                    status, reasons, done = fut.result()
                except Exception:  # noqa: BLE001 - a crashed worker must not hide a file: count it as quarantined
                    status, reasons, done = "quarantined", ["processing_error"], ""
                results.append((src, status, reasons, done))

    ok = sum(1 for _, status, _, _ in results if status == "ready")
    bad = sum(1 for _, status, _, _ in results if status != "ready")
    print(f"files: {len(results)}  ok: {ok}  quarantined: {bad}")
    for src, status, reasons, done in results:
        where = src.relative_to(in_dir)
        if status == "ready":
            print(f"  ready {where} -> {done}")
        else:
            print(f"  quarantined {where}: {', '.join(reasons)}")
    return EXIT_QUARANTINED if bad else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
