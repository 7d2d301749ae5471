"""Faults: the object store, the database and the broker each stalled (SIGSTOP) and each killed and started
again while images are uploaded and cases published and decided. Bounded here (one run per fault, each
component in turn: 30 images, 3 cases, 6 s stalls); `benchmarks/faults.py` runs each component and fault
on its own at the full size (300 images, 20 cases, 30 s stalls)."""

from __future__ import annotations

from typing import Any

import pytest
from outages import COMPONENTS, FAULTS, run_outage

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize("fault", FAULTS)
def test_outages_lose_nothing_and_leave_nothing(stack: Any, platform: Any, tokens: Any, fault: str) -> None:
    outcome = run_outage(stack, platform["gateway"].url, tokens, component=COMPONENTS, fault=fault, images=30,
                         cases=3, stall_s=6, down_s=2)
    print(outcome.line())
    assert all(outcome.checks.values()), outcome.checks
