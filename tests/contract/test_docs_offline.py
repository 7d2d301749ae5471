"""`/docs` renders in headless Chromium with every request to another host refused: all operations listed."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

pytestmark = [pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.parametrize("service", ["gateway", "moderation", "featuring", "achievements", "export"])
def test_docs_page_lists_every_operation_offline(platform: Any, service: str) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (make system-deps)")
    from playwright.sync_api import Route, sync_playwright

    base = platform[service].url
    doc = httpx.get(f"{base}/openapi.json", timeout=30).json()
    expected = sum(1 for ops in doc["paths"].values() for m in ops if m in ("get", "put", "post", "delete", "patch"))
    own = urlparse(base).netloc
    refused: list[str] = []

    def guard(route: Route) -> None:
        url = route.request.url
        if urlparse(url).netloc == own:
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context()
            context.route("**/*", guard)
            page = context.new_page()
            page.goto(f"{base}/docs", wait_until="networkidle", timeout=60_000)
            page.wait_for_selector(".opblock", timeout=60_000)
            shown = page.locator(".opblock").count()
            title = page.locator(".info .title").inner_text()
        finally:
            browser.close()
    assert refused == [], f"the docs page reached for other hosts: {refused}"
    assert doc["info"]["title"] in title
    assert shown == expected, f"{shown} operations shown, {expected} in the OpenAPI document"
