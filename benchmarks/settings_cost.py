"""What the latency settings cost: consumer fetch wait and outbox relay poll, each measured both ways.

For each variant, one fresh stack on the bench ports with all six services (so every consumer and relay
polls, as in `make run`):

- idle cost: CPU seconds the broker, the object store, PostgreSQL and the six services spend in 20 s with
  nothing to do (Tansu has no long-polling: a consumer asks again every fetch wait; an idle relay runs one
  `SELECT ... FOR UPDATE SKIP LOCKED` per poll);
- light load: one CT/MR image at a time, upload→ready p50/p99 (the client polls every 20 ms).

    python benchmarks/settings_cost.py [--light 20] [--idle 20] [--json out.json]
"""

from __future__ import annotations

import statistics
import sys
import time

import psutil
from common import Result, bench_stack, cpu_seconds, emit, stack_pids, unique_copies

SERVICES = ("gateway", "anonymiser", "moderation", "featuring", "achievements", "export")
VARIANTS: list[tuple[str, dict[str, str]]] = [
    ("fetch wait 100 ms, relay poll 50 ms (before)", {"CASEBOOK_KAFKA_FETCH_MAX_WAIT_MS": "100",
                                                      "CASEBOOK_OUTBOX_POLL_INTERVAL_S": "0.05"}),
    ("fetch wait 25 ms, relay poll 50 ms", {"CASEBOOK_KAFKA_FETCH_MAX_WAIT_MS": "25",
                                            "CASEBOOK_OUTBOX_POLL_INTERVAL_S": "0.05"}),
    ("fetch wait 25 ms, relay poll 250 ms", {"CASEBOOK_KAFKA_FETCH_MAX_WAIT_MS": "25",
                                             "CASEBOOK_OUTBOX_POLL_INTERVAL_S": "0.25"}),
]


def _arg(argv: list[str], name: str, default: int) -> int:
    return int(argv[argv.index(name) + 1]) if name in argv else default


def main(argv: list[str]) -> None:
    from load import _pct, _templates, latencies, light_load, one_zip

    light_n, idle_s = _arg(argv, "--light", 20), _arg(argv, "--idle", 20)
    templates = _templates()
    results: list[Result] = []
    for label, env in VARIANTS:
        with bench_stack(SERVICES, env={s: env for s in SERVICES}) as (stack, procs):
            pids = stack_pids(stack, procs)
            base = procs["gateway"].url
            one_zip(base, stack, unique_copies(templates, 6))  # connections, group joins, OCR models
            time.sleep(3)
            before = cpu_seconds(pids)
            time.sleep(idle_s)
            after = cpu_seconds(pids)
            idle = {n: (after[n] - before[n]) / idle_s * 100 for n in pids}
            t = light_load(base, stack, unique_copies(templates, light_n))
            lat = latencies(t)
            load = psutil.getloadavg()[0]
            infra = idle["broker"] + idle["s3"] + idle["postgres"]
            services = sum(v for n, v in idle.items() if n in SERVICES)
            print(f"{label}: idle CPU broker {idle['broker']:.1f}%, S3 {idle['s3']:.1f}%, PostgreSQL "
                  f"{idle['postgres']:.1f}%, six services {services:.1f}% of one core; light load p50 "
                  f"{statistics.median(lat) * 1000:.0f} ms, p99 {_pct(lat, 0.99) * 1000:.0f} ms (load {load:.1f})",
                  flush=True)
            results += [
                Result(f"settings: {label}", "idle CPU, broker + S3 + PostgreSQL", infra, "% of a core"),
                Result(f"settings: {label}", "idle CPU, six services", services, "% of a core"),
                Result(f"settings: {label}", "light load p50 upload→ready", statistics.median(lat) * 1000, "ms",
                       target="< 150 ms"),
            ]
    emit(results, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
