"""`make bench`: run every benchmark and print one table of figures, each with its same-run baseline.

    python benchmarks/run_all.py [--full]

By default the quick sizes are used (a few minutes in all); `--full` runs the sizes quoted in the README.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Result, cpu_info, table

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["deid.py", "upload.py", "export.py", "load.py", "faults.py"]


def main(argv: list[str]) -> int:
    full = "--full" in argv
    results: list[Result] = []
    failed = []
    started = time.time()
    for script in BENCHMARKS:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [sys.executable, str(HERE / script), "--json", out.name] + ([] if full else ["--quick"])
            print(f"== {script}", flush=True)
            r = subprocess.run(cmd, cwd=HERE)
            if r.returncode != 0:
                failed.append(script)
                continue
            results += [Result(**row) for row in json.loads(Path(out.name).read_text())]
    print()
    print(f"Casebook benchmarks ({'full' if full else 'quick'}), {time.strftime('%Y-%m-%d')}, "
          f"{cpu_info()}, Python {platform.python_version()}, {time.time() - started:.0f} s")
    print()
    print(table(results))
    if failed:
        print("\nfailed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
