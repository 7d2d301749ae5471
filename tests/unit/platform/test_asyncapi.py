"""The AsyncAPI documents in docs/ match what the topic registry generates (`make asyncapi` refreshes them)."""

from __future__ import annotations

import json
from pathlib import Path

from casebook_platform.asyncapi import SERVICES, document

DOCS = Path(__file__).resolve().parents[3] / "docs" / "asyncapi"


def test_asyncapi_documents_are_current() -> None:
    for service in SERVICES:
        path = DOCS / f"{service}.json"
        assert path.exists(), f"{path} missing: run `make asyncapi`"
        assert path.read_text() == document(service), f"{path} is stale: run `make asyncapi`"


def test_gateway_document_lists_what_it_produces_and_consumes() -> None:
    doc = json.loads(document("gateway"))
    addresses = {c["address"] for c in doc["channels"].values()}
    assert {"case.uploaded", "case.submitted", "case.anonymised", "export.requested", "case.approved.dlq"} <= addresses
