"""Test harness: the real embedded stack (S3, broker, PostgreSQL) and the services as real processes."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("casebook_embedded", ROOT / "deploy" / "local" / "embedded.py")
assert _spec and _spec.loader
embedded = importlib.util.module_from_spec(_spec)
sys.modules["casebook_embedded"] = embedded
_spec.loader.exec_module(embedded)

Stack = embedded.Stack
SERVICES = embedded.SERVICES


class ServiceProcess:
    """One service running as `python -m casebook_<name>` with the stack's environment (plus overrides)."""

    def __init__(self, stack: Any, name: str, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.stack = stack
        self.name = name
        self.env = {**stack.service_env(name), **(env or {})}
        if port is not None:
            self.env["CASEBOOK_HTTP_PORT"] = str(port)
        self.port = int(self.env["CASEBOOK_HTTP_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = stack.data / "logs" / f"{name}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> ServiceProcess:
        logf = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([sys.executable, "-m", f"casebook_{self.name}"], stdout=logf,
                                     stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                                     start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready in {timeout}s:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no chance to finish or commit anything."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def fresh_database(stack: Any, prefix: str) -> str:
    """Create an empty database on the stack's PostgreSQL; returns its SQLAlchemy URL."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(**stack.pg_connect_args())
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    return str(stack.database_url(name))


def wait_for(predicate: Any, timeout: float = 30, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; returns its value or fails with `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Chaos:
    """Kills one component at random moments and restarts it, until stopped."""

    def __init__(self, stack: Any, platform: Any, victims: list[str], seed: int) -> None:
        self.stack, self.platform, self.victims = stack, platform, victims
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.kills: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(1.5, 4.0)):
            victim = self.rng.choice(self.victims)
            self.kills.append(victim)
            if victim in ("s3", "broker"):
                self.stack.kill(victim)
                time.sleep(self.rng.uniform(0.2, 1.5))
                self.stack.restart(victim)
            else:
                proc = self.platform[victim]
                proc.kill()
                time.sleep(self.rng.uniform(0.2, 1.5))
                proc.start(wait=False)
        for p in self.platform.values():  # leave everything running and ready
            if p.proc is None or p.proc.poll() is not None:
                p.start(wait=False)
        for p in self.platform.values():
            p.wait_ready(timeout=120)

    def __enter__(self) -> Chaos:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=300)
