"""App factory of the featuring service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from casebook_featuring.adapters.db import metadata, tables
from casebook_featuring.handlers import build_handlers
from casebook_featuring.routes import router
from casebook_featuring.settings import Settings
from casebook_platform.openapi import ErrorTable, LinkTable, install_contract
from casebook_platform.service import create_service_app

# Every status and error code each operation can answer, besides 401/422 (read from the routes themselves).
ERRORS: ErrorTable = {
    ("POST", "/v1/featured"): {403: ["role_required"], 422: ["not_approved"]},
    ("GET", "/v1/featured"): {},
    ("GET", "/v1/featured.atom"): {},
    ("GET", "/v1/case-of-the-month/{month}/candidates"): {},
    ("PUT", "/v1/case-of-the-month/{month}"): {403: ["role_required"],
                                               422: ["not_approved", "not_from_preceding_month"]},
    ("GET", "/v1/case-of-the-month/{month}"): {404: ["not_found"]},
}
_MONTH = {"month": "$request.path.month"}
LINKS: LinkTable = {
    ("PUT", "/v1/case-of-the-month/{month}", 200): {"GetPick": ("GET", "/v1/case-of-the-month/{month}", _MONTH)},
    ("GET", "/v1/case-of-the-month/{month}/candidates", 200): {
        "Pick": ("PUT", "/v1/case-of-the-month/{month}", _MONTH)},
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; resources open in the lifespan."""
    app = create_service_app(
        settings=settings or Settings(),
        title="Casebook featuring",
        description="Featured cases and the Case of the Month, picked from the cases moderation approved.",
        metadata=metadata, tables=tables, migrations=Path(__file__).parent / "migrations",
        handlers=build_handlers, routers=[router],
    )
    install_contract(app, errors=ERRORS, links=LINKS)
    return app
