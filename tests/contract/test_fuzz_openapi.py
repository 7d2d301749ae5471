"""Schemathesis against the running platform: every check, every operation, stateful links, each caller.

The gateway is fuzzed once anonymously and once per role; the services behind it (moderation,
featuring, achievements, export) on their own ports with the caller their routes serve. The whole
run shares one time budget, `CASEBOOK_FUZZ_SECONDS` (180 s in `make test`, at least 25 s a run, since loading the
gateway's whole document and reaching its first operations takes several seconds on a busy machine;
`make fuzz` gives it longer). Any finding fails the test, with Schemathesis's report (and its `curl` reproductions).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
BUDGET = float(os.environ.get("CASEBOOK_FUZZ_SECONDS", "180"))
MIN_RUN_SECONDS = 25
ALL = "coverage,fuzzing,stateful"
GENERATED = "fuzzing,stateful"  # the coverage phase (boundaries of every schema) runs in the first two gateway runs
# (service, roles or None for an anonymous caller, share of the budget, phases)
RUNS = [
    ("gateway", None, 2, ALL), ("gateway", "contributor", 3, ALL), ("gateway", "contributor", 2, "stateful"),
    ("gateway", "editor", 1, GENERATED), ("gateway", "supporter", 1, GENERATED), ("gateway", "admin", 1, GENERATED),
    ("moderation", "editor", 1, ALL), ("featuring", "editor", 1, ALL), ("achievements", None, 1, ALL),
    ("export", "contributor", 1, ALL),
]
SHARES = sum(r[2] for r in RUNS)


def _id(service: str, roles: str | None, phases: str) -> str:
    return f"{service}-{roles or 'anonymous'}-{'all' if phases == ALL else phases.replace(',', '+')}"


@pytest.mark.parametrize(("service", "roles", "share", "phases"), RUNS, ids=[_id(s, r, p) for s, r, _, p in RUNS])
def test_schemathesis_finds_nothing(platform: Any, tokens: Any, tmp_path: Path, service: str, roles: str | None,
                                    share: int, phases: str) -> None:
    seconds = max(MIN_RUN_SECONDS, round(BUDGET * share / SHARES))
    base = platform[service].url
    for name in ("st_hooks.py", "schemathesis.toml"):
        shutil.copy(HERE / name, tmp_path / name)  # Schemathesis keeps its cache in the working directory
    cli = Path(sys.executable).with_name("schemathesis")
    cmd = [str(cli), "--config-file", "schemathesis.toml", "run", f"{base}/openapi.json",
           "--max-time", str(seconds), "--phases", phases, "--workers", "1", "--request-timeout", "30",
           # Few examples per operation and round: every operation is reached early, then rounds repeat
           # until the time is spent (a long per-operation run would be cut off unfinished on a busy machine).
           "--max-examples", "15", "--no-color"]
    if roles:
        user = f"fuzz-{service}-{roles.replace(',', '-')}"
        cmd += ["-H", f"Authorization: Bearer {tokens(user, roles, 'Dr Fuzz')}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "st_hooks", "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=seconds + 300)
    report = result.stdout[-20_000:] + result.stderr[-5_000:]
    assert result.returncode == 0, f"Schemathesis found problems on {service} as {roles or 'anonymous'}:\n{report}"
    assert " passed" in result.stdout, f"no test case ran in {seconds} s:\n{report}"
    lines = result.stdout.splitlines()
    print(next((lines[i + 1].strip() for i, line in enumerate(lines[:-1]) if line.strip() == "Test cases:"), ""))
