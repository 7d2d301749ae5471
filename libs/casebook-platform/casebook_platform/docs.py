"""Swagger UI at `/docs` from files the platform ships (no CDN): it renders on a network without internet."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
STATIC_URL = "/docs-assets"


def install_offline_docs(app: FastAPI) -> None:
    """Replace FastAPI's CDN-backed `/docs` and `/redoc` with a Swagger UI served from `STATIC_URL`."""
    app.router.routes[:] = [r for r in app.router.routes
                            if getattr(r, "path", None) not in ("/docs", "/docs/oauth2-redirect", "/redoc")]
    app.mount(STATIC_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} — API",
                                   swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC_URL}/favicon.png",
                                   oauth2_redirect_url="/docs/oauth2-redirect",
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
