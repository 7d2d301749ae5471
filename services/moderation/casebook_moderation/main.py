"""App factory of the moderation service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from casebook_moderation.adapters.db import metadata, tables
from casebook_moderation.handlers import build_handlers
from casebook_moderation.routes import router
from casebook_moderation.settings import Settings
from casebook_platform.openapi import ErrorTable, LinkTable, install_contract
from casebook_platform.service import create_service_app

_DECISION = {403: ["role_required", "own_case"], 404: ["not_found"], 409: ["already_claimed"]}
# Every status and error code each operation can answer, besides 401/422 (read from the routes themselves).
ERRORS: ErrorTable = {
    ("GET", "/v1/moderation/queue"): {403: ["role_required"]},
    ("POST", "/v1/moderation/{case_id}/claim"): _DECISION,
    ("POST", "/v1/moderation/{case_id}/approve"): _DECISION,
    ("POST", "/v1/moderation/{case_id}/reject"): _DECISION,
    ("GET", "/v1/moderation/{case_id}/checks"): {404: ["not_found"]},
}
_SAME = {"case_id": "$request.path.case_id"}
_QUEUED = {"case_id": "$response.body#/items/0/case_id"}
LINKS: LinkTable = {
    ("GET", "/v1/moderation/queue", 200): {
        "Claim": ("POST", "/v1/moderation/{case_id}/claim", _QUEUED),
        "Checks": ("GET", "/v1/moderation/{case_id}/checks", _QUEUED)},
    ("POST", "/v1/moderation/{case_id}/claim", 200): {
        "Approve": ("POST", "/v1/moderation/{case_id}/approve", _SAME),
        "Reject": ("POST", "/v1/moderation/{case_id}/reject", _SAME)},
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; resources open in the lifespan."""
    app = create_service_app(
        settings=settings or Settings(),
        title="Casebook moderation",
        description="The review queue: automatic publication checks, editors' claims, approvals and rejections.",
        metadata=metadata, tables=tables, migrations=Path(__file__).parent / "migrations",
        handlers=build_handlers, routers=[router],
    )
    install_contract(app, errors=ERRORS, links=LINKS)
    return app
