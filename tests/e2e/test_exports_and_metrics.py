"""Exports through the running platform (originals zip, offline presentation in headless Chromium) and the
domain counters that an end-to-end run moves on every service's /metrics."""

from __future__ import annotations

import hashlib
import io
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from client import error_code, plain_png, sample_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _wait_export(user: Any, export_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[float] = []
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = user.get(f"/v1/exports/{export_id}").json()
        seen.append(body.get("progress", 0))
        if body["status"] in ("ready", "failed"):
            assert body["status"] == "ready", body
            return body
        time.sleep(0.3)
    raise AssertionError(f"export {export_id} not ready: {body}")


def _approved_case(users: Any) -> tuple[Any, str, list[dict[str, Any]]]:
    alice, editor = users("contributor", name="Dr Alice Example"), users("editor")
    cid = alice.create_case(title="Acute appendicitis <script>alert(1)</script>",
                            discussion="Classic <b>target sign</b>.")["id"]
    sid = alice.add_study(cid, "CT", "Dilated appendix, 11 mm.")
    alice.upload(cid, sid, sample_file("CT_small.dcm"), "ct.dcm")
    sid2 = alice.add_study(cid, "US", "Non-compressible tubular structure.")
    alice.upload(cid, sid2, plain_png(3, 96), "us.png", "image/png")
    images = alice.wait_images(cid, 2)
    assert all(i["status"] == "ready" for i in images), images
    assert alice.post(f"/v1/cases/{cid}/publish").status_code == 202
    deadline = time.monotonic() + 60
    while editor.post(f"/v1/moderation/{cid}/approve").status_code != 200:
        assert time.monotonic() < deadline, "the case never reached the queue"
        time.sleep(0.5)
    alice.wait_status(cid, "approved")
    return alice, cid, images


def test_originals_zip_and_presentation(users: Any, tmp_path: Path) -> None:
    alice, cid, images = _approved_case(users)
    bob = users("contributor")

    r = alice.post(f"/v1/cases/{cid}/exports", json={"kind": "originals"})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    ready = _wait_export(alice, r.json()["id"])
    assert ready["progress"] == 1.0 and ready["download_url"]
    archive = httpx.get(ready["download_url"], timeout=60).content
    z = zipfile.ZipFile(io.BytesIO(archive))
    names = sorted(z.namelist())
    assert "case.txt" in names
    assert any(re.fullmatch(r"study-1-CT/series-1-[^/]+/0001\.dcm", n) for n in names), names
    assert any(re.fullmatch(r"study-2-US/series-1-[^/]+/0001\.png", n) for n in names), names
    text = z.read("case.txt").decode()
    assert "Acute appendicitis" in text and "CC BY-NC-SA 4.0" in text
    assert f"Case courtesy of Dr Alice Example, Casebook, case {cid}" in text
    assert "Dilated appendix, 11 mm." in text
    served = {hashlib.sha256(alice.get(i["url"]).content).hexdigest() for i in images}
    zipped = {hashlib.sha256(z.read(n)).hexdigest() for n in names if n != "case.txt"}
    assert served == zipped, "the zip's images are not byte-identical to the de-identified ones"

    # the same request again reuses the stored archive
    again = _wait_export(alice, alice.post(f"/v1/cases/{cid}/exports", json={"kind": "originals"}).json()["id"])
    assert again["download_url"].split("?")[0] == ready["download_url"].split("?")[0]

    r = bob.post(f"/v1/cases/{cid}/exports", json={"kind": "originals"})
    assert r.status_code == 403 and error_code(r) == "not_owner"
    r = bob.post(f"/v1/cases/{cid}/exports", json={"kind": "presentation"})
    assert r.status_code == 403 and error_code(r) == "role_required"

    supporter = users("supporter")
    r = supporter.post(f"/v1/cases/{cid}/exports", json={"kind": "presentation"})
    assert r.status_code == 202
    html = httpx.get(_wait_export(supporter, r.json()["id"])["download_url"], timeout=60).content
    page = tmp_path / "case.html"
    page.write_bytes(html)
    assert b"<script>alert(1)</script>" not in html  # hostile text is escaped
    _screenshot(page, tmp_path / "case.png", "Acute appendicitis")

    pl = supporter.post("/v1/playlists", json={"title": "Abdomen teaching set", "visibility": "public"}).json()["id"]
    assert supporter.post(f"/v1/playlists/{pl}/items", json={"case_id": cid}).status_code == 200
    assert bob.post(f"/v1/playlists/{pl}/exports").status_code == 403
    r = supporter.post(f"/v1/playlists/{pl}/exports")
    assert r.status_code == 202
    html = httpx.get(_wait_export(supporter, r.json()["id"])["download_url"], timeout=60).content
    page = tmp_path / "playlist.html"
    page.write_bytes(html)
    _screenshot(page, tmp_path / "playlist.png", "Acute appendicitis")


def _screenshot(page: Path, out: Path, title: str) -> None:
    """Open the deck in headless Chromium with no network; the first image renders, the title shows at the end."""
    from playwright.sync_api import sync_playwright

    chromium = Path("/usr/bin/chromium")
    assert chromium.exists(), "Debian's chromium is needed (make test installs it)"
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            ctx = browser.new_context(offline=True)
            pg = ctx.new_page()
            pg.on("request", lambda req: requests.append(req.url))
            pg.goto(page.as_uri())
            pg.wait_for_selector("#deck .cb-slide")
            # A teaching deck: history first, then the images; the title (often the diagnosis) comes last.
            assert title not in pg.inner_text("body")
            for _ in range(4):
                if pg.evaluate("document.getElementById('deck').dataset.kind") == "images":
                    break
                pg.keyboard.press("PageDown")
            pg.wait_for_function("() => Array.from(document.images).some(i => i.complete && i.naturalWidth > 0)",
                                 timeout=20000)
            pg.screenshot(path=str(out))
            pg.keyboard.press("End")
            assert title in pg.inner_text("body")
        finally:
            browser.close()
    assert out.stat().st_size > 5000
    assert all(u.startswith(("file:", "data:")) for u in requests), [u for u in requests if "data:" not in u]


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_domain_counters_move(platform: Any, users: Any) -> None:
    def scrape() -> dict[str, str]:
        return {name: httpx.get(p.url + "/metrics", timeout=10).text for name, p in platform.items()}

    before = scrape()
    _approved_case(users)
    time.sleep(1)
    after = scrape()
    moved = {
        ("gateway", "casebook_uploads_total"), ("gateway", "casebook_http_requests_total"),
        ("anonymiser", "casebook_images_deidentified_total"), ("moderation", "casebook_cases_approved_total"),
        ("achievements", "casebook_events_processed_total"), ("featuring", "casebook_events_processed_total"),
    }
    for service, name in moved:
        assert _metric(after[service], name) > _metric(before[service], name), (service, name)
    for service, text in after.items():
        assert "casebook_outbox_backlog" in text, service
