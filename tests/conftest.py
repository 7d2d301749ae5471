"""Shared fixtures: the embedded stack for integration/e2e tiers, the whole platform for e2e."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import SERVICES, ServiceProcess, Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    """S3 + Tansu (log on S3) + PostgreSQL, started once per test session on the `test` ports.

    `CASEBOOK_TEST_DATA_DIR` reuses an already running stack (started with
    `python deploy/local/embedded.py infra --profile test --data-dir DIR`) instead of starting one;
    `CASEBOOK_TEST_PROFILE` picks another set of ports (`dev`, say) so two runs can share a machine.
    """
    profile = os.environ.get("CASEBOOK_TEST_PROFILE", "test")
    external = os.environ.get("CASEBOOK_TEST_DATA_DIR")
    if external:
        yield Stack(Path(external), profile)
        return
    data = Path(tempfile.mkdtemp(prefix="casebook-test-"))
    s = Stack(data, profile)
    try:
        s.start_infra()
        yield s
    finally:
        s.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def platform(stack: Any) -> Iterator[dict[str, ServiceProcess]]:
    """All six services running against the stack; the gateway is the base URL."""
    # A short sweep interval lets the fault tests see interrupted raw-upload deletions finished.
    extra = {"anonymiser": {"CASEBOOK_SWEEP_INTERVAL_S": "3"},
             "gateway": {"CASEBOOK_STALE_UPLOAD_S": "30", "CASEBOOK_UPLOAD_SWEEP_INTERVAL_S": "3"}}
    procs = {name: ServiceProcess(stack, name, env=extra.get(name)) for name in SERVICES}
    try:
        for p in procs.values():
            p.start(wait=False)
        for p in procs.values():
            p.wait_ready()
        yield procs
    finally:
        for p in procs.values():
            p.stop()


@pytest.fixture(scope="session")
def tokens(stack: Any) -> Any:
    """`tokens(user, roles)` → a bearer token signed like `make token`."""
    from harness import embedded

    def make(user: str, roles: str = "contributor", name: str | None = None) -> str:
        return embedded.make_token(stack.secrets["auth_secret"], user, [r for r in roles.split(",") if r], name)

    return make
