"""Build the fuzzing seed corpus from small files of pydicom's test corpus and the kept regressions."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pydicom

HERE = Path(__file__).resolve().parent


def build(out: Path, max_size: int = 64 * 1024) -> int:
    out.mkdir(parents=True, exist_ok=True)
    src = Path(pydicom.__file__).parent / "data" / "test_files"
    n = 0
    for f in sorted(src.rglob("*")):
        if f.is_file() and f.stat().st_size <= max_size and f.suffix.lower() in (".dcm", ".png", ".jpg", ""):
            shutil.copy(f, out / f"seed-{n:04d}")
            n += 1
    for f in sorted((HERE / "regressions").glob("*")):
        shutil.copy(f, out / f"regression-{f.name}")
        n += 1
    return n


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
