"""The embedded launcher supervises what it starts: `embedded.py run` (what `make run` runs) is started as a
process on its own data directory; a service it started and then PostgreSQL are SIGKILLed; each is started
again by the launcher, the restart is logged, and the platform serves again (readiness, a write through the
gateway, a proxied read from the restarted service). Ctrl-C then leaves nothing of the stack running.

The launcher takes the profile in `CASEBOOK_TEST_PROFILE` when its ports are free, else the first profile
whose ports are all free, so it never collides with the session's own stack.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import ROOT, SERVICES, embedded

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _ports(profile: str) -> list[int]:
    p = embedded.PROFILES[profile]
    return [p.s3, p.master, p.volume, p.filer, p.kafka, p.postgres, *p.http.values()]


def _free_profile() -> str:
    wanted = os.environ.get("CASEBOOK_TEST_PROFILE", "test")
    for profile in [wanted, *sorted(embedded.PROFILES)]:
        if profile != "run" and not any(embedded._port_open(port) for port in _ports(profile)):
            return profile
    raise AssertionError("no profile has all its ports free")


class Launcher:
    """`embedded.py run` as a child process, its output collected line by line."""

    def __init__(self, data: Path, profile: str) -> None:
        self.data, self.profile = data, profile
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "deploy/local/embedded.py"), "run",
                                      "--data-dir", str(data), "--profile", profile],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if needle in line:
                    return line
            assert self.proc.poll() is None, "the launcher exited:\n" + "\n".join(self.lines[-30:])
            time.sleep(0.2)
        raise AssertionError(f"no {needle!r} in the launcher's output after {timeout:.0f} s:\n"
                             + "\n".join(self.lines[-30:]))

    def pid(self, name: str) -> int:
        return int((self.data / f"{name}.pid").read_text())

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{embedded.PROFILES[self.profile].http[service]}"


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    data = Path(tempfile.mkdtemp(prefix="casebook-launcher-"))
    run = Launcher(data, _free_profile())
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGINT)
            try:
                run.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(run.proc.pid, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)


def _kill(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        # A zombie until the launcher reaps it: that is the launcher noticing.
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.05)


def _eventually(check: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            if (last := check()):
                return last
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out: {what} (last: {last!r})")


def _serving(run: Launcher, secret: str) -> bool:
    """Every service ready, a case written through the gateway, the moderation queue read through it."""
    editor = embedded.make_token(secret, "ed-supervised", ["editor"])
    contributor = embedded.make_token(secret, f"u{uuid.uuid4().hex[:10]}", ["contributor"])  # under its draft limit
    for service in SERVICES:
        if httpx.get(f"{run.url(service)}/readyz", timeout=5).status_code != 200:
            return False
    created = httpx.post(f"{run.url('gateway')}/v1/cases", json={"title": "Supervised"}, timeout=10,
                         headers={"authorization": f"Bearer {contributor}"})
    queue = httpx.get(f"{run.url('gateway')}/v1/moderation/queue", timeout=10,
                      headers={"authorization": f"Bearer {editor}"})
    return created.status_code == 201 and queue.status_code == 200


def _left_running(data: Path) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(data).encode() in (proc / "cmdline").read_bytes() or \
                        str(data) in os.readlink(proc / "cwd"):
                    out.append(int(proc.name))
            except OSError:
                continue
    return out


def test_the_launcher_restarts_what_dies_and_the_platform_serves_again(launcher: Launcher) -> None:
    run = launcher
    run.wait_for("Casebook is ready", timeout=240)
    secret = embedded.Stack(run.data, run.profile).secrets["auth_secret"]
    assert _eventually(lambda: _serving(run, secret), "serving before any kill")

    for victim in ("moderation", "postgres"):
        before = run.pid(victim)
        started = time.monotonic()
        _kill(before)
        logged = run.wait_for(f"{victim} exited with -9; restarting (restart 1", timeout=60)
        _eventually(lambda victim=victim, before=before: run.pid(victim) != before, f"{victim} started again")
        assert _eventually(lambda: _serving(run, secret), f"serving after {victim} was killed")
        print(f"{victim}: {logged!r}; serving again {time.monotonic() - started:.1f} s after the kill")
    assert (run.data / "logs" / "moderation.log").exists()

    run.proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert run.proc.wait(timeout=90) == 0
    assert run.lines[-1].startswith("stopping") or "stopping..." in run.lines
    _eventually(lambda: _left_running(run.data) == [], "nothing of the stack left running", timeout=30)
