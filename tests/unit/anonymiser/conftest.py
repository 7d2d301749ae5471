"""Shared fixtures for the de-identification tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The anonymiser package is not installed in every environment yet; make it importable from source.
_SERVICE_ROOT = Path(__file__).resolve().parents[3] / "services" / "anonymiser"
if str(_SERVICE_ROOT) not in sys.path:
    sys.path.insert(0, str(_SERVICE_ROOT))

from casebook_anonymiser.deid import CaseKey  # noqa: E402


@pytest.fixture()
def key() -> CaseKey:
    return CaseKey(secret=b"test-secret-0123456789abcdef", key_id="test-key-1", case_id="case-0001")


@pytest.fixture()
def other_case_key() -> CaseKey:
    return CaseKey(secret=b"test-secret-0123456789abcdef", key_id="test-key-1", case_id="case-0002")
