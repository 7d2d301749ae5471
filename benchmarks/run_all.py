"""`make bench`: run every benchmark and print one table of figures, each with its same-run baseline.

    python benchmarks/run_all.py [--full] [--readme]

By default the quick sizes are used (a few minutes in all); `--full` runs the sizes quoted in the README.
`--readme` writes the table (with its date, machine and mode) into README.md between the
`<!-- bench:start -->` and `<!-- bench:end -->` markers; `make bench` does this.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Result, cpu_info, table

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["deid.py", "upload.py", "large_uploads.py", "export.py", "load.py", "dicomweb.py",
              "settings_cost.py", "faults.py"]
# What each script is told in full mode (the others run their full sizes with no flag).
FULL_FLAGS = {"deid.py": ["--full"], "load.py": ["--sustained"], "settings_cost.py": []}
README = HERE.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def write_readme(text: str) -> None:
    readme = README.read_text()
    if START not in readme or END not in readme:
        print(f"README.md has no {START} ... {END} markers; table not written")
        return
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: list[str]) -> int:
    full = "--full" in argv
    results: list[Result] = []
    failed = []
    started = time.time()
    load_before = os.getloadavg()[0]
    for script in BENCHMARKS:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            mode = FULL_FLAGS.get(script, []) if full else ["--quick"]
            cmd = [sys.executable, str(HERE / script), "--json", out.name, *mode]
            print(f"== {script}", flush=True)
            r = subprocess.run(cmd, cwd=HERE)
            if r.returncode != 0:
                failed.append(script)
                continue
            results += [Result(**row) for row in json.loads(Path(out.name).read_text())]
    title = (f"Casebook benchmarks ({'full' if full else 'quick'}), {time.strftime('%Y-%m-%d')}, "
             f"{cpu_info()}, Python {platform.python_version()}, {time.time() - started:.0f} s; load average "
             f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other work on the machine shares the cores: "
             f"compare a figure only with its baseline)")
    print()
    print(title)
    print()
    print(table(results))
    if "--readme" in argv and not failed:
        write_readme(f"{title}:\n\n{table(results)}")
    if failed:
        print("\nfailed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
