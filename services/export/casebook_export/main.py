"""App factory of the export service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from casebook_export.adapters.db import metadata, tables
from casebook_export.handlers import build_handlers
from casebook_export.metrics import DomainMetrics
from casebook_export.routes import router
from casebook_export.settings import Settings
from casebook_export.worker import deps_of, expire_forever, work_forever
from casebook_platform.consumer import Handler
from casebook_platform.openapi import install_contract
from casebook_platform.service import Runtime, create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; workers start in the lifespan."""
    settings = settings or Settings()
    app: FastAPI

    def handlers(rt: Runtime) -> dict[str, Handler]:
        return build_handlers(rt)

    async def worker(rt: Runtime) -> None:
        await work_forever(deps_of(rt, app.state.domain))

    async def sweeps(rt: Runtime) -> None:
        await expire_forever(deps_of(rt, app.state.domain))

    app = create_service_app(
        settings=settings, title="Casebook export",
        description="Builds owners' originals zips and supporters' offline presentations.",
        metadata=metadata, tables=tables, migrations=Path(__file__).parent / "migrations",
        handlers=handlers, routers=[router],
        background=[worker] * settings.export_workers + [sweeps],
    )
    app.state.domain = DomainMetrics(app.state.metrics)
    install_contract(app, errors={("GET", "/v1/exports/{export_id}"): {404: ["not_found"]}})
    return app
