"""The OpenAPI documents as contract, checked without a running stack: complete, current, and exact."""

from __future__ import annotations

import copy
import importlib
import json
import os
from typing import Any

import pytest

from casebook_gateway.openapi import FORWARDED, merge_forwarded

# Every path and method of the v1 contract (API.md) served by the gateway's base URL.
CONTRACT = [
    ("POST", "/v1/cases"), ("GET", "/v1/cases/{case_id}"), ("GET", "/v1/shared/{token}"),
    ("PATCH", "/v1/cases/{case_id}"), ("DELETE", "/v1/cases/{case_id}"), ("GET", "/v1/cases"),
    ("POST", "/v1/cases/{case_id}/visibility"), ("POST", "/v1/cases/{case_id}/publish"),
    ("GET", "/v1/cases/{case_id}/history"), ("GET", "/v1/cases/{case_id}/revisions"),
    ("GET", "/v1/cases/{case_id}/revisions/{n}"), ("POST", "/v1/cases/{case_id}/share-link"),
    ("POST", "/v1/cases/{case_id}/studies"), ("POST", "/v1/cases/{case_id}/studies/{study_id}/uploads"),
    ("GET", "/v1/cases/{case_id}/images"), ("GET", "/v1/images/{image_id}"),
    ("GET", "/v1/images/{image_id}/deid-report"),
    ("GET", "/v1/moderation/queue"), ("POST", "/v1/moderation/{case_id}/claim"),
    ("POST", "/v1/moderation/{case_id}/approve"), ("POST", "/v1/moderation/{case_id}/reject"),
    ("POST", "/v1/featured"), ("GET", "/v1/featured"), ("GET", "/v1/featured.atom"),
    ("GET", "/v1/case-of-the-month/{month}/candidates"),
    ("PUT", "/v1/case-of-the-month/{month}"), ("GET", "/v1/case-of-the-month/{month}"),
    ("GET", "/v1/users/{user_id}/achievements"), ("GET", "/v1/achievements/levels"),
    ("POST", "/v1/playlists"), ("POST", "/v1/playlists/{playlist_id}/items"), ("GET", "/v1/playlists/{playlist_id}"),
    ("POST", "/v1/cases/{case_id}/exports"), ("POST", "/v1/playlists/{playlist_id}/exports"),
    ("GET", "/v1/exports/{export_id}"), ("GET", "/v1/me"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ("GET", "/"),  # the browser console (text/html)
    # DICOMweb (PS3.18): QIDO-RS searches, WADO-RS instances, metadata, frames and rendered images
    *[("GET", f"/dicomweb{p}") for p in (
        "/studies", "/series", "/instances", "/studies/{study}/series", "/studies/{study}/instances",
        "/studies/{study}/series/{series}/instances", "/studies/{study}", "/studies/{study}/metadata",
        "/studies/{study}/series/{series}", "/studies/{study}/series/{series}/metadata",
        "/studies/{study}/series/{series}/instances/{sop}", "/studies/{study}/series/{series}/instances/{sop}/metadata",
        "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}",
        "/studies/{study}/series/{series}/instances/{sop}/rendered",
        "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/rendered")],
]


@pytest.fixture(scope="module")
def gateway_doc() -> dict[str, Any]:
    """The document the gateway serves: its own, with the forwarded services' merged in."""
    os.environ.setdefault("CASEBOOK_AUTH_SECRET", "openapi-document-only")
    from casebook_gateway.main import create_app

    doc = copy.deepcopy(create_app().openapi())
    merge_forwarded(doc, {name: importlib.import_module(f"casebook_{name}.main").create_app().openapi()
                          for name in FORWARDED})
    return doc


def test_every_contract_operation_is_documented(gateway_doc: dict[str, Any]) -> None:
    documented = {(m.upper(), p) for p, ops in gateway_doc["paths"].items() for m in ops}
    missing = [op for op in CONTRACT if op not in documented]
    assert missing == [], f"contract operations missing from the gateway's OpenAPI: {missing}"
    assert not any("{rest" in p for p in gateway_doc["paths"]), "catch-all paths hide the forwarded operations"


def test_every_operation_documents_its_errors(gateway_doc: dict[str, Any]) -> None:
    for path, ops in gateway_doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op.get("operationId"), where
            for status, resp in op["responses"].items():
                if int(status) >= 400 and path != "/readyz":
                    schema = resp["content"]["application/json"]["schema"]
                    assert schema["properties"]["error"]["properties"]["code"]["enum"], where
            if op.get("security"):
                assert "401" in op["responses"], f"{where} reads a token but does not document 401"
            if op.get("parameters") or op.get("requestBody"):
                assert "422" in op["responses"], f"{where} validates input but does not document 422"
            if path.startswith(("/v1/moderation", "/v1/featured", "/v1/case-of-the-month", "/v1/users",
                                "/v1/achievements")):
                assert "503" in op["responses"], f"{where} is forwarded but does not document 503"


def test_the_feed_is_documented_as_atom(gateway_doc: dict[str, Any]) -> None:
    op = gateway_doc["paths"]["/v1/featured.atom"]["get"]
    assert list(op["responses"]["200"]["content"]) == ["application/atom+xml"]
    assert {"422", "503"} <= set(op["responses"]) and "security" not in op  # public, forwarded


def test_request_schemas_say_what_the_server_checks(gateway_doc: dict[str, Any]) -> None:
    schemas = gateway_doc["components"]["schemas"]
    patch = schemas["CasePatch"]
    assert patch["additionalProperties"] is False
    title = patch["properties"]["title"]
    assert title.get("type") == "string" and "anyOf" not in title, "title may be left out, never null"
    assert title["pattern"] and title["maxLength"] == 300
    age = patch["properties"]["patient_age"]
    assert {"type": "null"} in age["anyOf"], "patient_age may be erased with null"
    for path, ops in gateway_doc["paths"].items():
        for op in ops.values():
            for param in op.get("parameters", []):
                schema = param["schema"]
                branches = schema.get("anyOf", [schema])
                for b in branches:
                    if b.get("type") == "string":
                        assert "pattern" in b or "enum" in b, f"{path} {param['name']} takes any string"
    month = gateway_doc["paths"]["/v1/case-of-the-month/{month}"]["get"]["parameters"][0]["schema"]
    assert month["pattern"].startswith("^")


def test_create_links_to_read_update_delete(gateway_doc: dict[str, Any]) -> None:
    links = gateway_doc["paths"]["/v1/cases"]["post"]["responses"]["201"]["links"]
    ops = {v["operationId"] for v in links.values()}
    assert {"get_case", "patch_case", "delete_case", "publish_case", "create_study"} <= ops
    playlist = gateway_doc["paths"]["/v1/playlists"]["post"]["responses"]["201"]["links"]
    assert {"get_playlist", "add_item"} <= {v["operationId"] for v in playlist.values()}


def test_forwarded_schemas_keep_their_references(gateway_doc: dict[str, Any]) -> None:
    text = json.dumps(gateway_doc)
    names = set(gateway_doc["components"]["schemas"])
    for ref in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
        assert ref in names, ref


def test_dicomweb_operations_document_their_media_types(gateway_doc: dict[str, Any]) -> None:
    """Each DICOMweb answer names its media type (DICOM JSON, multipart/related of DICOM or frames, images);
    everything but a search can be 404."""
    for path, ops in gateway_doc["paths"].items():
        if not path.startswith("/dicomweb"):
            continue
        responses = ops["get"]["responses"]
        content = set(responses["200"]["content"])
        search = path.rsplit("/", 1)[-1] in ("studies", "series", "instances")
        if path.endswith("/rendered"):
            assert content == {"image/jpeg", "image/png"}, path
        elif path.endswith("/metadata") or search:
            assert content == {"application/dicom+json"}, path
        elif "/frames/" in path:
            assert content == {'multipart/related; type="application/octet-stream"'}, path
        else:
            assert content == {'multipart/related; type="application/dicom"'}, path
        assert search or "404" in responses, path
