"""The OpenAPI document as the contract: what FastAPI derives, plus every error, the auth, the constraints and links.

FastAPI documents a route's success response and a generic 422. A service's document here also says,
for every operation, each status and stable error code it can answer (from a table kept next to the
app factory, plus what follows from the route itself: a bearer token → 401, parameters or a body →
422 `invalid_request`), which operations need or accept a token, that text parameters carry no
control characters (the server refuses them, see `errors.py`), and the links a client (or a
stateful fuzzer) follows from a created resource to reading, changing and deleting it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from casebook_platform.auth import optional_principal, require_principal
from casebook_platform.docs import install_offline_docs
from casebook_platform.pagination import CURSOR_PATTERN

# Text in bodies: printable, with newlines and tabs. Parameters (path, query): printable, one line.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
PARAM_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
# Text as above with at least one character that is not white space (for fields stripped, then required).
_TEXT_CHAR = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
NOT_BLANK_TEXT = rf"^{_TEXT_CHAR}*[^\s\x00-\x1f\x7f-\x9f]{_TEXT_CHAR}*$"

# (METHOD, path template) → {status: [error codes]}
ErrorTable = Mapping[tuple[str, str], Mapping[int, Sequence[str]]]
# (METHOD, path template, status) → {link name: (target METHOD, target path, {parameter: runtime expression})}
LinkTable = Mapping[tuple[str, str, int], Mapping[str, tuple[str, str, Mapping[str, str]]]]

_READINESS = {"description": "Not ready: the body names each dependency's state",
              "content": {"application/json": {"schema": {"type": "object", "required": ["status"],
                                                          "properties": {"status": {"type": "string"}}}}}}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "string", "description": "A stable error code."},
                                            "message": {"type": "string", "description": "Human text."}}}}}
_STATUS_TEXT = {400: "Bad request", 401: "Missing, expired or invalid bearer token", 403: "Not allowed",
                404: "Not found (or not visible to the caller)", 405: "Method not allowed", 409: "Conflict",
                413: "Request too large", 415: "Unsupported media", 422: "Invalid request",
                503: "Temporarily unavailable"}
_DEFAULT_CODES = {401: ["unauthenticated"], 403: ["role_required"], 404: ["not_found"], 413: ["request_too_large"],
                  422: ["invalid_request"], 503: ["service_unavailable"]}


def api_routes(app: FastAPI) -> Iterable[tuple[APIRoute, str]]:
    """Every documented API route with its full path template (included routers are walked)."""
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute) and ctx.include_in_schema and ctx.path_format:
            yield ctx.original_route, str(ctx.path_format)


def auth_of(route: APIRoute) -> str | None:
    """`required`, `optional` or None: whether the route reads a bearer token."""
    def walk(dep: Dependant) -> Iterable[Any]:
        for d in dep.dependencies:
            yield d.call
            yield from walk(d)

    calls = set(walk(route.dependant))
    if require_principal in calls:
        return "required"
    if optional_principal in calls:
        return "optional"
    return None


def error_response(status: int, codes: Sequence[str]) -> dict[str, Any]:
    """An error response whose body names exactly the codes this status can carry."""
    schema = copy.deepcopy(ERROR_SCHEMA)
    if codes:
        schema["properties"]["error"]["properties"]["code"]["enum"] = sorted(set(codes))
    described = ", ".join(f"`{c}`" for c in sorted(set(codes)))
    return {"description": f"{_STATUS_TEXT.get(status, 'Error')}: {described}" if codes
            else _STATUS_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": schema}}}


def contract_document(app: FastAPI, *, errors: ErrorTable = {},  # noqa: B006 - read only
                      links: LinkTable = {}) -> dict[str, Any]:  # noqa: B006
    """The app's OpenAPI document, completed as the module docstring says."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    comps = doc.setdefault("components", {})
    schemas = comps.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    comps["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                           "description": "`Authorization: Bearer <JWT>`"}}
    table = {(m.upper(), p): dict(v) for (m, p), v in errors.items()}
    op_ids: dict[tuple[str, str], str] = {}
    routes = list(api_routes(app))
    names = [r.name for r, _ in routes]
    for route, path in routes:
        auth = auth_of(route)
        for method in route.methods or ():
            op = doc["paths"].get(path, {}).get(method.lower())
            if op is None:
                continue
            if names.count(route.name) == 1:
                op["operationId"] = route.name
            op_ids[(method, path)] = op["operationId"]
            statuses: dict[int, list[str]] = {s: list(c) for s, c in table.get((method, path), {}).items()}
            if auth is not None:
                op["security"] = [{"bearer": []}] if auth == "required" else [{}, {"bearer": []}]
                statuses.setdefault(401, []).append("unauthenticated")
            if op.get("parameters") or op.get("requestBody"):
                statuses.setdefault(422, []).append("invalid_request")
            if op.get("requestBody"):
                statuses.setdefault(400, []).append("bad_request")  # a body that is not even JSON (UTF-8)
            if any(p["name"] == "cursor" for p in op.get("parameters", [])):
                statuses.setdefault(422, []).append("invalid_cursor")
            op["responses"].pop("422", None)
            for status in [s for s in op["responses"] if s.isdigit() and int(s) >= 400]:
                if (method, path) in table and int(status) not in statuses:
                    del op["responses"][status]  # declared on the route, but the table says it cannot happen
                else:
                    statuses.setdefault(int(status), [])
            for status, codes in sorted(statuses.items()):
                op["responses"][str(status)] = error_response(status, codes or _DEFAULT_CODES.get(status, []))
            for param in op.get("parameters", []):
                _constrain_text(param.get("schema", {}), CURSOR_PATTERN if param["name"] == "cursor" else PARAM_PATTERN)
    for (method, path, status), named in links.items():
        op = doc["paths"].get(path, {}).get(method.lower())
        if op is None or str(status) not in op["responses"]:
            continue
        out = op["responses"][str(status)].setdefault("links", {})
        for name, (t_method, t_path, params) in named.items():
            if (t_method, t_path) in op_ids:
                out[name] = {"operationId": op_ids[(t_method, t_path)], "parameters": dict(params)}
    for schema in schemas.values():
        _tidy(schema)
    readyz = doc["paths"].get("/readyz", {}).get("get")
    if readyz is not None:
        readyz["responses"]["503"] = _READINESS
    metrics = doc["paths"].get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    _check_refs(doc)
    return doc


def _constrain_text(schema: dict[str, Any], pattern: str | None) -> None:
    """Strings without a pattern or format get the no-control-characters pattern the server enforces."""
    if pattern is None:
        return
    if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema \
            and "format" not in schema and "const" not in schema:
        schema["pattern"] = pattern
    for branch in schema.get("anyOf", []):
        _constrain_text(branch, pattern)


def _tidy(schema: dict[str, Any]) -> None:
    """Drop `default: null` where null is not allowed (a client sending it is refused)."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None and not _nullable(prop):
            del prop["default"]


def _nullable(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "null" or any(_nullable(b) for b in schema.get("anyOf", []))


def _check_refs(doc: Mapping[str, Any]) -> None:
    """Every `$ref` resolves (a merged or renamed component must not leave a dangling reference)."""
    schemas = doc.get("components", {}).get("schemas", {})

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.split("/")[-1] not in schemas:
                raise ValueError(f"dangling reference {ref}")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)


def install_contract(app: FastAPI, *, errors: ErrorTable = {}, links: LinkTable = {},  # noqa: B006 - read only
                     extend: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Serve the completed document at `/openapi.json` (built once, on first request) and offline docs at `/docs`."""
    install_offline_docs(app)
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = contract_document(app, errors=errors, links=links)
            if extend is not None:
                extend(doc)
                _check_refs(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
