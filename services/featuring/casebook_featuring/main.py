"""App factory of the featuring service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from casebook_featuring.adapters.db import metadata, tables
from casebook_featuring.handlers import build_handlers
from casebook_featuring.routes import router
from casebook_featuring.settings import Settings
from casebook_platform.service import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; resources open in the lifespan."""
    return create_service_app(
        settings=settings or Settings(),
        title="Casebook featuring",
        description="Featured cases and the Case of the Month, picked from the cases moderation approved.",
        metadata=metadata, tables=tables, migrations=Path(__file__).parent / "migrations",
        handlers=build_handlers, routers=[router],
    )
