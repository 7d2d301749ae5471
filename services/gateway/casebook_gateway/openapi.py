"""The gateway's OpenAPI: its own routes' errors and links, and the forwarded services' operations merged in.

The moderation, featuring and achievements paths are served by those services (`routes/proxy.py`);
the gateway's `/openapi.json` merges their own documents, fetched from them, so the one document a
front end reads describes every operation behind the base URL, exactly as its service declares it.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from casebook_gateway.deps import HttpDep, SettingsDep
from casebook_gateway.dicomweb import tag_hex
from casebook_gateway.settings import Behind, Settings
from casebook_platform.openapi import ErrorTable, LinkTable, error_response

FORWARDED: tuple[Behind, ...] = ("moderation", "featuring", "achievements")

_OWNER = {403: ["not_owner"], 404: ["not_found"]}
_LIMITS = ["draft_limit_reached", "unlisted_limit_reached"]
_UPLOAD_422 = ["invalid_request", "invalid_dicom", "invalid_image", "unsafe_archive"]

ERRORS: ErrorTable = {
    ("GET", "/v1/me"): {},
    ("GET", "/"): {},  # the browser console (console.py)
    ("POST", "/v1/cases"): {403: ["role_required"], 409: _LIMITS},
    ("GET", "/v1/cases"): {},
    ("GET", "/v1/cases/{case_id}"): {404: ["not_found"]},
    ("GET", "/v1/shared/{token}"): {404: ["not_found"]},
    ("PATCH", "/v1/cases/{case_id}"): {**_OWNER, 409: ["already_submitted"],
                                       413: ["request_too_large", "case_too_large"]},
    ("DELETE", "/v1/cases/{case_id}"): _OWNER,
    ("POST", "/v1/cases/{case_id}/visibility"): {**_OWNER, 409: _LIMITS},
    ("POST", "/v1/cases/{case_id}/publish"): {**_OWNER, 409: ["already_submitted"], 413: ["case_too_large"]},
    ("GET", "/v1/cases/{case_id}/history"): _OWNER,
    ("GET", "/v1/cases/{case_id}/revisions"): _OWNER,
    ("GET", "/v1/cases/{case_id}/revisions/{n}"): _OWNER,
    ("POST", "/v1/cases/{case_id}/share-link"): {**_OWNER, 409: ["not_unlisted"]},
    ("POST", "/v1/cases/{case_id}/studies"): {**_OWNER, 409: ["study_limit_reached"]},
    ("POST", "/v1/cases/{case_id}/studies/{study_id}/uploads"): {
        **_OWNER, 409: ["image_limit_reached"], 413: ["upload_too_large", "request_too_large"],
        415: ["unsupported_media"], 422: _UPLOAD_422,
        503: ["upload_interrupted"]},
    ("GET", "/v1/cases/{case_id}/images"): {404: ["not_found"]},
    ("GET", "/v1/images/{image_id}"): {404: ["not_found"], 409: ["not_ready"]},
    ("GET", "/v1/images/{image_id}/deid-report"): {**_OWNER, 409: ["not_ready"]},
    ("POST", "/v1/playlists"): {},
    ("POST", "/v1/playlists/{playlist_id}/items"): {**_OWNER, 409: ["playlist_full"], 422: ["not_public"]},
    ("GET", "/v1/playlists/{playlist_id}"): {404: ["not_found"]},
    ("POST", "/v1/cases/{case_id}/exports"): {403: ["not_owner", "role_required"], 404: ["not_found"],
                                             422: ["not_public"]},
    ("POST", "/v1/playlists/{playlist_id}/exports"): {403: ["role_required"], 404: ["not_found"],
                                                     422: ["empty_playlist"]},
    ("GET", "/v1/exports/{export_id}"): {404: ["not_found"]},
    **{("GET", f"/dicomweb{p}"): {400: ["invalid_request"]} for p in (  # QIDO-RS: nothing visible is an empty list
        "/studies", "/series", "/instances", "/studies/{study}/series", "/studies/{study}/instances",
        "/studies/{study}/series/{series}/instances")},
    **{("GET", f"/dicomweb/studies/{{study}}{p}"): {404: ["not_found"]} for p in (  # WADO-RS instances, metadata
        "", "/metadata", "/series/{series}", "/series/{series}/metadata", "/series/{series}/instances/{sop}",
        "/series/{series}/instances/{sop}/metadata")},
    ("GET", "/dicomweb/studies/{study}/series/{series}/instances/{sop}/frames/{frames}"): {
        400: ["invalid_request"], 404: ["not_found"], 422: ["not_renderable"]},
    **{("GET", f"/dicomweb/studies/{{study}}/series/{{series}}/instances/{{sop}}{p}"): {
        400: ["invalid_request"], 404: ["not_found"], 406: ["not_acceptable"], 422: ["not_renderable"]}
       for p in ("/rendered", "/frames/{frames}/rendered")},
    ("POST", "/v1/dev/tokens"): {},  # embedded mode only (routes/dev_tokens.py)
}

_CASE = {"case_id": "$response.body#/id"}
_SAME_CASE = {"case_id": "$request.path.case_id"}


def _first_result(keyword: str) -> str:
    """The runtime expression of an attribute of a DICOMweb search's first result (DICOM JSON: tag → Value)."""
    return f"$response.body#/0/{tag_hex(keyword)}/Value/0"


# DICOMweb: from a search result to what it names.
_STUDY = {"study": _first_result("StudyInstanceUID")}
_SERIES = {"study": "$request.path.study", "series": _first_result("SeriesInstanceUID")}
_SOP = {"study": "$request.path.study", "series": "$request.path.series", "sop": _first_result("SOPInstanceUID")}
LINKS: LinkTable = {
    ("POST", "/v1/cases", 201): {
        "GetCase": ("GET", "/v1/cases/{case_id}", _CASE),
        "EditCase": ("PATCH", "/v1/cases/{case_id}", _CASE),
        "DeleteCase": ("DELETE", "/v1/cases/{case_id}", _CASE),
        "ChangeVisibility": ("POST", "/v1/cases/{case_id}/visibility", _CASE),
        "PublishCase": ("POST", "/v1/cases/{case_id}/publish", _CASE),
        "CaseHistory": ("GET", "/v1/cases/{case_id}/history", _CASE),
        "CaseRevisions": ("GET", "/v1/cases/{case_id}/revisions", _CASE),
        "NewShareLink": ("POST", "/v1/cases/{case_id}/share-link", _CASE),
        "AddStudy": ("POST", "/v1/cases/{case_id}/studies", _CASE),
        "CaseImages": ("GET", "/v1/cases/{case_id}/images", _CASE),
        "ExportCase": ("POST", "/v1/cases/{case_id}/exports", _CASE),
    },
    ("PATCH", "/v1/cases/{case_id}", 200): {
        "GetCase": ("GET", "/v1/cases/{case_id}", _CASE),
        "DeleteCase": ("DELETE", "/v1/cases/{case_id}", _CASE),
    },
    ("POST", "/v1/cases/{case_id}/publish", 202): {
        "GetCase": ("GET", "/v1/cases/{case_id}", _CASE),
    },
    ("POST", "/v1/cases/{case_id}/studies", 201): {
        "Upload": ("POST", "/v1/cases/{case_id}/studies/{study_id}/uploads",
                   {**_SAME_CASE, "study_id": "$response.body#/id"}),
    },
    ("POST", "/v1/cases/{case_id}/studies/{study_id}/uploads", 202): {
        "GetImage": ("GET", "/v1/images/{image_id}", {"image_id": "$response.body#/images/0/id"}),
        "DeidReport": ("GET", "/v1/images/{image_id}/deid-report", {"image_id": "$response.body#/images/0/id"}),
    },
    ("POST", "/v1/playlists", 201): {
        "GetPlaylist": ("GET", "/v1/playlists/{playlist_id}", {"playlist_id": "$response.body#/id"}),
        "AddItem": ("POST", "/v1/playlists/{playlist_id}/items", {"playlist_id": "$response.body#/id"}),
        "ExportPlaylist": ("POST", "/v1/playlists/{playlist_id}/exports", {"playlist_id": "$response.body#/id"}),
    },
    ("POST", "/v1/cases/{case_id}/exports", 202): {
        "GetExport": ("GET", "/v1/exports/{export_id}", {"export_id": "$response.body#/id"}),
    },
    ("POST", "/v1/playlists/{playlist_id}/exports", 202): {
        "GetExport": ("GET", "/v1/exports/{export_id}", {"export_id": "$response.body#/id"}),
    },
    ("GET", "/v1/cases/{case_id}/revisions", 200): {
        "GetRevision": ("GET", "/v1/cases/{case_id}/revisions/{n}", {**_SAME_CASE, "n": "$response.body#/0/n"}),
    },
    **{("GET", "/dicomweb/studies", 200): {name: ("GET", f"/dicomweb/studies/{{study}}{p}", _STUDY) for name, p in (
        ("RetrieveStudy", ""), ("StudyMetadata", "/metadata"), ("SearchSeries", "/series"),
        ("SearchStudyInstances", "/instances"))}},
    **{("GET", "/dicomweb/studies/{study}/series", 200): {
        name: ("GET", f"/dicomweb/studies/{{study}}/series/{{series}}{p}", _SERIES) for name, p in (
            ("RetrieveSeries", ""), ("SeriesMetadata", "/metadata"), ("SearchInstances", "/instances"))}},
    **{("GET", "/dicomweb/studies/{study}/series/{series}/instances", 200): {
        name: ("GET", f"/dicomweb/studies/{{study}}/series/{{series}}/instances/{{sop}}{p}",
               {**_SOP, "frames": "1"} if "frames" in p else _SOP) for name, p in (
            ("RetrieveInstance", ""), ("InstanceMetadata", "/metadata"), ("Rendered", "/rendered"),
            ("Frames", "/frames/{frames}"), ("RenderedFrame", "/frames/{frames}/rendered"))}},
}


def merge_forwarded(doc: dict[str, Any], documents: dict[str, dict[str, Any]]) -> None:
    """Add the forwarded services' `/v1` operations and their schemas to the gateway's document.

    A schema whose name the gateway already uses for something else is renamed `<Service><Name>`.
    Each forwarded operation may also answer 503 `service_unavailable` (its service is down) and, with
    a body, 413 `request_too_large` (the gateway's limit).
    """
    schemas = doc["components"]["schemas"]
    for name, other in documents.items():
        renames = {k: f"{name.capitalize()}{k}" for k, v in other["components"].get("schemas", {}).items()
                   if k in schemas and schemas[k] != v}
        text = json.dumps(other)
        for old, new in renames.items():
            text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
        other = json.loads(text)
        for k, v in other["components"].get("schemas", {}).items():
            schemas[renames.get(k, k)] = v
        for path, ops in other["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for op in ops.values():
                op["responses"]["503"] = error_response(503, ["service_unavailable"])
                if "requestBody" in op:
                    op["responses"]["413"] = error_response(413, ["request_too_large"])
                op["description"] = (op.get("description", "") + f"\n\nServed by the {name} service.").strip()
            doc["paths"].setdefault(path, {}).update(ops)


def document_gateway(doc: dict[str, Any]) -> None:
    """The gateway's own additions: 413 on every body (the body-size limit of `limits.py`)."""
    for ops in doc["paths"].values():
        for op in ops.values():
            if "requestBody" in op and "413" not in op["responses"]:
                op["responses"]["413"] = error_response(413, ["request_too_large"])


async def fetch_forwarded(client: httpx.AsyncClient, settings: Settings) -> dict[str, dict[str, Any] | None]:
    """Each forwarded service's OpenAPI document, or None while it cannot be had."""
    async def one(name: Behind) -> dict[str, Any] | None:
        try:
            r = await client.get(f"{settings.service_url(name)}/openapi.json", timeout=5.0)
            return dict(r.json()) if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    docs = await asyncio.gather(*(one(n) for n in FORWARDED))
    return dict(zip(FORWARDED, docs, strict=True))


def install_merged_openapi(app: FastAPI) -> None:
    """Serve `/openapi.json` as the gateway's document plus the forwarded services' (kept once all answered).

    While a service does not answer, its operations are missing and `x-casebook-missing` names it.
    """
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != "/openapi.json"]
    merged: dict[str, Any] = {}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json(client: HttpDep, settings: SettingsDep) -> JSONResponse:
        if "doc" not in merged:
            doc = copy.deepcopy(app.openapi())
            found = await fetch_forwarded(client, settings)
            merge_forwarded(doc, {k: v for k, v in found.items() if v is not None})
            missing = sorted(k for k, v in found.items() if v is None)
            if not missing:
                merged["doc"] = doc
            else:
                doc["x-casebook-missing"] = missing
                return JSONResponse(doc)
        return JSONResponse(merged["doc"])
