"""App factory of the moderation service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from casebook_moderation.adapters.db import metadata, tables
from casebook_moderation.handlers import build_handlers
from casebook_moderation.routes import router
from casebook_moderation.settings import Settings
from casebook_platform.service import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; resources open in the lifespan."""
    return create_service_app(
        settings=settings or Settings(),
        title="Casebook moderation",
        description="The review queue: automatic publication checks, editors' claims, approvals and rejections.",
        metadata=metadata, tables=tables, migrations=Path(__file__).parent / "migrations",
        handlers=build_handlers, routers=[router],
    )
