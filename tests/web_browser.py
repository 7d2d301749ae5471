"""Debian's Chromium under Playwright for the browser tests: no downloads, every host but the test's own refused."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Watch:
    """What a page did: console errors, uncaught exceptions, requests refused."""

    errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)


@contextmanager
def offline_page(
    allow: Callable[[str], bool], *, serve: Callable[[Any], bool] | None = None, viewport: tuple[int, int] = (1280, 900)
) -> Iterator[tuple[Any, Watch]]:
    """A page in a fresh context where a request is continued only if `allow(url)`, answered by `serve(route)`
    if that returns True, and refused otherwise."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium, make system-deps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install playwright==1.65.2")
    watch = Watch()

    def guard(route: Any) -> None:
        url = route.request.url
        watch.requested.append(url)
        if serve is not None and serve(route):
            return
        if allow(url):
            route.continue_()
        else:
            watch.refused.append(url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, has_touch=True)
            context.route("**/*", guard)
            page = context.new_page()
            page.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"))
            page.on("console", lambda msg: watch.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
            yield page, watch
        finally:
            browser.close()


def accessibility_violations(page: Any, selector: str | None = None) -> list[str]:
    """What axe-core (the copy bundled with axe-playwright-python) finds wrong on the page, one line each."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.fail("axe-playwright-python is not installed: pip install axe-playwright-python==0.1.8")
    results = Axe().run(page, context=selector)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
    ]
