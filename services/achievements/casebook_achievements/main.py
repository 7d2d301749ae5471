"""App factory of the achievements service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from casebook_achievements.adapters.db import metadata, tables
from casebook_achievements.handlers import build_handlers
from casebook_achievements.routes import router
from casebook_achievements.settings import Settings
from casebook_platform.openapi import install_contract
from casebook_platform.service import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; resources open in the lifespan."""
    app = create_service_app(
        settings=settings or Settings(),
        title="Casebook achievements",
        description="Per-user counters and awards derived from moderation events.",
        metadata=metadata, tables=tables, migrations=Path(__file__).parent / "migrations",
        handlers=build_handlers, routers=[router], verify_tokens=False,
    )
    install_contract(app)  # public reads: only 422 for a malformed parameter
    return app
