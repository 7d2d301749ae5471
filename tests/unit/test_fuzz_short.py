"""A short coverage-guided fuzz run of ingest + de-identification, and the kept crash regressions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"


@pytest.mark.slow
def test_short_fuzz_run_finds_no_crash(tmp_path: Path) -> None:
    sys.path.insert(0, str(FUZZ))
    from seed_corpus import build

    corpus = tmp_path / "corpus"
    assert build(corpus) > 20
    r = subprocess.run([sys.executable, str(FUZZ / "fuzz_ingest.py"), str(corpus), "-atheris_runs=3000",
                        "-max_len=65536", "-timeout=20", f"-artifact_prefix={tmp_path}/"],
                       capture_output=True, text=True, timeout=900)
    crashes = list(tmp_path.glob("crash-*")) + list(tmp_path.glob("timeout-*"))
    assert r.returncode == 0 and not crashes, r.stderr[-3000:]


def test_kept_regressions_pass() -> None:
    sys.path.insert(0, str(FUZZ))
    from fuzz_ingest import check

    for f in sorted((FUZZ / "regressions").glob("*")):
        if f.name != ".keep":
            check(f.read_bytes())
