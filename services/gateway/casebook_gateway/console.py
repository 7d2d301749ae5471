"""The browser console at `/`: its built files (`make console`) served beside the API, which it only calls."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DIST = Path(__file__).parent / "console_dist"
ASSETS_URL = "/console-assets"
# Paths that belong to the API and the operations, never to the console: their 404s stay JSON.
RESERVED = ("/v1", "/dicomweb", "/docs", "/docs-assets", "/openapi.json", "/healthz", "/readyz", "/metrics",
            ASSETS_URL)

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Casebook — console not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem">
<h1>The Casebook console is not built</h1>
<p>The API is running: see <a href="/docs">/docs</a>. To build the browser console, run
<code>make console</code> in the repository (it needs Node 20 and npm; <code>make run</code> and
<code>make install</code> do it too), then reload this page.</p>
</body></html>
"""


def console_path(path: str) -> bool:
    """Whether `path` may be a page of the console (a client-side route), not an API or operations path."""
    return not any(path == p or path.startswith(p + "/") for p in RESERVED)


class ConsoleFallback:
    """A GET for an unknown path that asks for HTML (a console link opened directly) gets the console's page.

    Only once the app has answered 404, so no route, method check or API error changes; API paths are left out.
    """

    def __init__(self, app: ASGIApp, *, index: Path) -> None:
        self.app = app
        self.index = index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not console_path(scope["path"]) \
                or not self._wants_html(scope) or not self.index.is_file():
            await self.app(scope, receive, send)
            return
        replaced = False

        async def capture(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 404:
                replaced = True
                return
            if not replaced:
                await send(message)

        await self.app(scope, receive, capture)
        if replaced:
            await _index_response(self.index)(scope, receive, send)

    @staticmethod
    def _wants_html(scope: Scope) -> bool:
        accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        return "text/html" in accept


def _index_response(index: Path) -> FileResponse:
    # The page names hashed assets; it must be fetched again after a rebuild, the assets need not.
    return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})


def mount_console(app: FastAPI, dist: Path = DIST) -> None:
    """Serve `dist/index.html` at `/` and `dist/assets` at `ASSETS_URL`; without a build, a page saying how."""
    index = dist / "index.html"
    assets = dist / "assets"
    if assets.is_dir():
        app.mount(ASSETS_URL, StaticFiles(directory=assets), name="console-assets")

    @app.get("/", response_model=None, response_class=HTMLResponse, tags=["console"],
             summary="The browser console (an HTML page)",
             responses={200: {"description": "The console's page, built on the public API only; without a build, "
                                             "a page saying how to build it.", "content": {"text/html": {}}}})
    async def console() -> FileResponse | HTMLResponse:
        if index.is_file():
            return _index_response(index)
        return HTMLResponse(NOT_BUILT, headers={"Cache-Control": "no-cache"})

    app.add_middleware(ConsoleFallback, index=index)
