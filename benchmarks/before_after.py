"""The same load on two source trees in one run: an earlier commit's services beside this tree's.

    git archive <commit> | tar -x -C /tmp/before
    python benchmarks/before_after.py /tmp/before [--rounds 2] [--images 300] [--light 20] [--json out.json]

For each round and each tree (alternating, so machine load falls on both alike): a fresh stack on the bench
ports with the gateway and the anonymiser run from that tree (`PYTHONPATH` puts its packages ahead of the
installed ones), then one image at a time (light load, p50) and the sustained load of `load.py --quick`
(steady img/min); and the de-identification core alone on every core, from that tree. The machine's load
average is printed beside every figure: compare figures of one round only.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import ROOT, Result, bench_stack, emit, unique_copies

PACKAGES = ("libs/casebook-events", "libs/casebook-platform", "services/gateway", "services/anonymiser")
CORE = """
import os, sys, time
sys.path.insert(0, {bench!r})
import load
from common import unique_copies
files = unique_copies(load._templates(), {n} + 4, per_study=10)
rate, _ = load.core_ceiling(files, {n})
print(rate)
"""


def _arg(argv: list[str], name: str, default: int) -> int:
    return int(argv[argv.index(name) + 1]) if name in argv else default


def _env(tree: Path) -> dict[str, str]:
    paths = [str(tree / p) for p in PACKAGES]
    return {"PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def core(tree: Path, n: int, threads: str | None) -> float:
    """img/min of the de-identification core alone (all cores), imported from `tree`, with the ONNX threads
    its service gave its workers (`None`: the tree's own choice; "-1": ONNX Runtime's default)."""
    env = {**os.environ, **_env(tree)}
    if threads is not None:
        env["CASEBOOK_OCR_THREADS"] = threads
    out = subprocess.run([sys.executable, "-c", CORE.format(bench=str(ROOT / "benchmarks"), n=n)],
                         env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def pipeline(tree: Path, images: int, light_n: int) -> dict[str, Any]:
    from load import _templates, latencies, light_load, one_zip, sustained

    templates = _templates()
    env = _env(tree)
    with bench_stack(("gateway", "anonymiser"), env={"gateway": env, "anonymiser": env}) as (stack, procs):
        base = procs["gateway"].url
        one_zip(base, stack, unique_copies(templates, 20))
        lat = latencies(light_load(base, stack, unique_copies(templates, light_n)))
        load_light = os.getloadavg()[0]
        t, start, last = sustained(base, stack, templates, contributors=3, per=10, min_images=images, min_seconds=20)
        steady_from = start + 5
        steady = [i for i in t.sent if steady_from <= t.ready[i] <= last]
        rate = len(steady) / (last - steady_from) * 60 if last > steady_from else float("nan")
        return {"light_p50_ms": statistics.median(lat) * 1000, "light_load": load_light, "steady_img_min": rate,
                "sustained_load": os.getloadavg()[0]}


def main(argv: list[str]) -> None:
    before = Path(argv[0]).resolve()
    trees = [("before", before), ("after", ROOT)]
    rounds, images, light_n = _arg(argv, "--rounds", 1), _arg(argv, "--images", 300), _arg(argv, "--light", 20)
    results: list[Result] = []
    for r in range(1, rounds + 1):
        figures: dict[str, dict[str, Any]] = {}
        for name, tree in trees:
            f = pipeline(tree, images, light_n)
            # Before, the service's workers left ONNX at its default (a thread per core in every worker).
            f["core_img_min"] = core(tree, 200, "-1" if name == "before" else None)
            f["core_load"] = os.getloadavg()[0]
            figures[name] = f
            print(f"round {r} {name} ({tree}): light p50 {f['light_p50_ms']:.0f} ms (load {f['light_load']:.1f}); "
                  f"sustained steady {f['steady_img_min']:.0f} img/min (load {f['sustained_load']:.1f}); "
                  f"core alone {f['core_img_min']:.0f} img/min (load {f['core_load']:.1f})", flush=True)
        b, a = figures["before"], figures["after"]
        label = f"before/after round {r}"
        results += [
            Result(label, "sustained steady upload→ready", a["steady_img_min"], "img/min", "before",
                   b["steady_img_min"]),
            Result(label, "light load p50 upload→ready", a["light_p50_ms"], "ms", "before", b["light_p50_ms"]),
            Result(label, "de-identification core alone", a["core_img_min"], "img/min", "before", b["core_img_min"]),
        ]
    emit(results, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
