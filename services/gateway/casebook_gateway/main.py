"""App factory of the gateway."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from casebook_gateway import console, dicomindex, sweeper
from casebook_gateway.adapters.db import metadata, tables
from casebook_gateway.handlers import build_handlers
from casebook_gateway.limits import BodyLimits, gateway_rules
from casebook_gateway.metrics import domain_metrics
from casebook_gateway.openapi import ERRORS, LINKS, document_gateway, install_merged_openapi
from casebook_gateway.routes import cases, deid_report, dev_tokens, dicomweb, exports, images, me, playlists, proxy
from casebook_gateway.settings import Settings
from casebook_platform import spool
from casebook_platform.openapi import install_contract
from casebook_platform.service import Runtime, create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; resources open in the lifespan."""
    settings = settings or Settings()
    spool_base = settings.tmp_dir  # where this service's process directories go (`spool.private_dir`)
    app: FastAPI

    async def on_start(rt: Runtime) -> None:
        # Before the first request: what a killed gateway left spooled is removed, and this one spools apart.
        settings.tmp_dir = str(spool.private_dir(spool_base, "gateway"))
        app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=3.0))

    async def sweep_uploads(rt: Runtime) -> None:
        await sweeper.sweep_forever(db=rt.db, storage=rt.storage, interval_s=settings.upload_sweep_interval_s,
                                    stale_s=settings.stale_upload_s)

    async def index_dicom(rt: Runtime) -> None:
        await dicomindex.run_indexer(db=rt.db, storage=rt.storage, interval_s=settings.dicomweb_index_interval_s)

    app = create_service_app(
        settings=settings,
        title="Casebook",
        description="The Casebook API: cases, studies and images, moderation, featuring, achievements, "
                    "playlists and exports. Authenticate with `Authorization: Bearer <JWT>`; errors are "
                    '`{"error": {"code", "message"}}` with stable codes.',
        metadata=metadata, tables=tables, migrations=Path(__file__).parent / "migrations",
        handlers=build_handlers,
        routers=[me.router, cases.router, images.router, deid_report.router, playlists.router, exports.router,
                 dicomweb.router,
                 *([dev_tokens.router] if dev_tokens.enabled(settings) else []), proxy.build_router()],
        on_start=[on_start], background=[sweep_uploads, index_dicom],
    )
    app.state.domain = domain_metrics(app.state.metrics)
    # Outermost: bodies are bounded before routing, parsing and authentication.
    app.add_middleware(BodyLimits, rules=gateway_rules(max_upload_bytes=settings.max_upload_bytes))
    install_contract(app, errors=ERRORS, links=LINKS, extend=document_gateway)
    install_merged_openapi(app)
    console.mount_console(app)
    return app
