"""The browser console at `/`, driven in Debian's Chromium on the running platform: contributor → editor → reader.

Every request to a host other than the gateway's is refused and fails the test, as does any console error or
uncaught exception; screenshots of each step go to `.data/screenshots/console/`.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import string
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from client import plain_png, sample_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".data" / "screenshots" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Watch:
    """What the pages of one browser did: console errors, uncaught exceptions, requests to other hosts, XHRs."""

    own: str
    errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    xhr: list[str] = field(default_factory=list)
    # Answers the console knows may come (no Case of the Month picked yet): their console messages are no errors.
    expected: list[tuple[int, str]] = field(default_factory=lambda: [(404, r"/v1/case-of-the-month/\d{4}-\d{2}$")])

    def expect(self, status: int, path: str) -> None:
        """An answer the next steps provoke on purpose: its console message is not an error."""
        self.expected.append((status, path))

    def guard(self, route: Any) -> None:
        url = route.request.url
        if urlparse(url).netloc == self.own:
            if route.request.resource_type == "xhr":
                self.xhr.append(f"{route.request.method} {urlparse(url).path}")
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()

    def console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        if any(f"status of {status} " in msg.text and re.search(path, urlparse(where).path)
               for status, path in self.expected):
            return
        self.errors.append(f"{msg.text} ({where})")


@pytest.fixture
def browser(platform: Any) -> Iterator[Any]:
    """`browser(name, width, height)` → (page, watch) in a fresh context of one Chromium; checked at teardown."""
    yield from browsing(platform["gateway"].url)


def browsing(base: str) -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (make system-deps)")
    from playwright.sync_api import sync_playwright

    index = httpx.get(f"{base}/", timeout=30)
    assert "/console-assets/" in index.text, "the console is not built: run `make console`"
    SHOTS.mkdir(parents=True, exist_ok=True)
    watches: dict[str, Watch] = {}
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)

        def open_page(name: str, width: int = 1280, height: int = 900) -> tuple[Any, Watch]:
            watch = watches.setdefault(name, Watch(own=urlparse(base).netloc))
            context = chromium.new_context(viewport={"width": width, "height": height}, base_url=base)
            context.route("**/*", watch.guard)
            context.set_default_timeout(30_000)
            page = context.new_page()
            page.on("console", watch.console)
            page.on("pageerror", lambda exc: watch.errors.append(f"uncaught: {exc}"))
            return page, watch

        try:
            yield open_page
        finally:
            chromium.close()
    for name, watch in watches.items():
        assert watch.refused == [], f"{name}: requests to other hosts: {watch.refused}"
        assert watch.errors == [], f"{name}: console errors: {watch.errors}"


def shot(page: Any, name: str) -> None:
    """A screenshot of the whole page, and axe-core's accessibility check of what it shows."""
    from web_browser import accessibility_violations

    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    violations = accessibility_violations(page)
    assert violations == [], f"{name}: {violations}"


def text_uid() -> str:
    """A unique word for titles and names, letters only: hex digits could spell a date, a phone number or a record
    number (`20231105`, `a1234567`), which moderation's identifier check rightly rejects in a case's text."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))


def ct_series(n: int) -> list[bytes]:
    """`n` instances of one CT series (CT_small with its own series, SOP UIDs, numbers and a shifted picture)."""
    import pydicom
    from pydicom.uid import generate_uid

    study_uid, series_uid = generate_uid(), generate_uid()  # a study of its own (UIDs are keyed on the original)
    out = []
    for i in range(1, n + 1):
        ds = pydicom.dcmread(io.BytesIO(sample_file("CT_small.dcm")))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i
        ds.SeriesDescription = "Axial CT"
        arr = ds.pixel_array
        ds.PixelData = (arr + (i - 1) * 120).astype(arr.dtype).tobytes()
        buf = io.BytesIO()
        ds.save_as(buf)
        out.append(buf.getvalue())
    return out


def mint(page: Any, user: str, name: str, roles: list[str]) -> None:
    """Sign in on the console's page as a local user (the embedded mode mints the token)."""
    page.goto("/signin")
    page.get_by_label("User id").fill(user)
    page.get_by_label("Display name").fill(name)
    for role in ("contributor", "editor", "supporter"):
        box = page.get_by_role("checkbox", name=role)
        box.set_checked(role in roles)
    page.get_by_role("button", name="Mint a token and sign in").click()
    page.get_by_text(f"Signed in as {name}").wait_for()


def eventually(page: Any, check: Any, what: str, timeout: float = 120, reload: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if reload:
            page.reload()
        page.wait_for_timeout(1000)


def test_contributor_editor_reader_through_the_console(browser: Any, tmp_path: Path) -> None:
    uid = text_uid()
    title = f"Osteoid osteoma of the tibia {uid}"

    # -- the contributor signs in, writes a case, uploads DICOM files and a zip, publishes
    page, contributor = browser("contributor")
    page.goto("/")
    page.get_by_role("heading", name="Library").wait_for()
    page.get_by_role("link", name="Sign in").click()
    shot(page, "01-sign-in")
    mint(page, f"c{uid}", f"Dr Ada {uid}", ["contributor", "supporter"])
    page.get_by_role("heading", name="My cases").wait_for()
    assert page.get_by_label("Limits").inner_text().split("\n")[0].startswith("0 of 10")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="New case").click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Presentation (clinical history)").fill("Night pain relieved by aspirin.")
    page.get_by_label("Patient age (years)").fill("15")
    page.get_by_label("Patient sex").select_option("male")
    page.get_by_label("Systems (comma separated)").fill("musculoskeletal")
    page.get_by_label("Diagnosis", exact=True).fill("Osteoid osteoma")
    page.get_by_label("Diagnostic certainty").select_option("certain")
    page.get_by_label("Discussion").fill("A lucent nidus with surrounding sclerosis.")
    shot(page, "02-new-case")
    page.get_by_role("button", name="Create case").click()
    page.get_by_role("heading", name=title).wait_for()
    case_id = page.url.rstrip("/").split("/")[-1]
    assert page.get_by_text("Completeness").is_visible()

    page.get_by_label("Findings").fill("Lucent cortical nidus.")
    page.get_by_role("button", name="Add study").click()
    page.get_by_role("heading", name="Study 1: CT").wait_for()

    series = ct_series(4)
    files = []
    for i, data in enumerate(series[:2], start=1):
        path = tmp_path / f"slice-{i}.dcm"
        path.write_bytes(data)
        files.append(str(path))
    archive = tmp_path / "more-slices.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("slices/slice-3.dcm", series[2])
        z.writestr("slices/slice-4.dcm", series[3])
        z.writestr("slices/notes.txt", "not an image")
    files.append(str(archive))
    # The uplink slowed down so that the bars show the XHR's progress events between 0 and 100 %.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 64 * 1024})
    page.evaluate("""() => { window.seenProgress = new Set();
      new MutationObserver(() => document.querySelectorAll('[role=progressbar]').forEach(
        (b) => window.seenProgress.add(Number(b.getAttribute('aria-valuenow')))))
      .observe(document.body, {subtree: true, childList: true, attributes: true}); }""")
    page.locator("input[type=file]").set_input_files(files)
    uploads = page.get_by_role("list", name="Uploads")
    uploads.get_by_text("2 images accepted, processing").wait_for(timeout=60_000)
    assert uploads.get_by_text("1 image accepted, processing").count() == 2
    uploads.get_by_text("1 refused in the archive").wait_for()
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    seen = page.evaluate("() => [...window.seenProgress]")
    assert any(0 < v < 100 for v in seen), f"no upload progress between 0 and 100 %: {sorted(seen)}"
    assert "slices/notes.txt" in uploads.inner_text()
    sent = [x for x in contributor.xhr if x.startswith(f"POST /v1/cases/{case_id}/studies/") and x.endswith("/uploads")]
    assert len(sent) == 3, sent  # XMLHttpRequest, for its upload progress events
    shot(page, "03-uploaded")

    # images turn ready while the page polls; the series then shows as a stack with its window presets
    status = page.locator(".image-status")
    eventually(page, lambda: status.locator(".badge-processing").count() == 0
               and "4" in status.locator(".stat").filter(has=page.locator(".badge-ready")).inner_text(),
               "four ready images")
    stack = page.locator(".cb-stack")
    stack.wait_for(timeout=60_000)
    page.wait_for_function("() => { const i = document.querySelector('.cb-stack-image');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    assert stack.get_by_role("button", name=re.compile("Bone")).count() == 1
    assert stack.locator(".cb-stack-counter").inner_text() == "1 / 4"
    shot(page, "04-ready-stack")

    page.get_by_role("button", name="Publish").click()
    page.locator(".case-head .badge-submitted").wait_for()
    page.get_by_role("link", name="My cases").click()
    page.get_by_role("heading", name="Submitted").wait_for()
    assert title in page.locator("section.group", has=page.get_by_role("heading", name="Submitted")).inner_text()
    shot(page, "05-my-cases")

    # -- an editor claims it, sees the automatic checks and the diff, approves it and features it
    editor_page, _ = browser("editor")
    mint(editor_page, f"e{uid}", f"Dr Eve {uid}", ["editor"])
    editor_page.get_by_role("link", name="Moderation").click()
    item = editor_page.locator(f"li.queue-item[data-case='{case_id}']")
    eventually(editor_page, lambda: item.count() == 1 and item.get_by_text("all passed").count() == 1,
               "the case in the queue with its checks passed", reload=True)
    assert item.locator(".checks li.pass").count() >= 3
    assert item.locator(".diff th", has_text="title").count() == 1
    item.get_by_role("button", name="Claim").click()
    item.get_by_text("claimed by you").wait_for()
    shot(editor_page, "06-moderation-claimed")
    item.get_by_role("button", name="Approve").click()
    item.wait_for(state="detached")

    editor_page.goto(f"/cases/{case_id}")
    eventually(editor_page, lambda: editor_page.locator(".case-head .badge-approved").count() == 1,
               "the case approved", reload=True)
    editor_page.get_by_role("button", name="Feature").click()
    editor_page.get_by_text("Featured on").wait_for()
    editor_page.get_by_role("navigation", name="Main").get_by_role("link", name="Featured").click()
    editor_page.get_by_role("heading", name="Featured cases").wait_for()
    featured = editor_page.locator("section[aria-labelledby=feat]")
    eventually(editor_page, lambda: featured.get_by_text(title).count() == 1, "the case featured", reload=True)
    # the Case of the Month is picked from the cases approved in the month before: next month's pick
    now = datetime.now(UTC)
    next_month = f"{now.year + now.month // 12}-{now.month % 12 + 1:02d}"
    editor_page.get_by_label("Month", exact=True).fill(next_month)
    cotm = editor_page.locator("section[aria-labelledby=cotm]")
    cotm.get_by_text(f"Case of the Month {next_month}").wait_for()
    cotm.locator("summary").click()
    cotm.locator("li", has_text=title).get_by_role("button", name=f"Pick for {next_month}").click()
    cotm.locator("p.cotm", has_text=title).wait_for()
    shot(editor_page, "07-featured")

    # -- the contributor sees it approved, makes a playlist of it and downloads the offline presentation
    page.goto(f"/cases/{case_id}")
    page.locator(".case-head .badge-approved").wait_for()
    page.get_by_role("link", name="Playlists").click()
    page.get_by_label("Title").fill(f"Bone tumours {uid}")
    page.get_by_role("button", name="Create playlist").click()
    page.get_by_role("heading", name=f"Bone tumours {uid}").wait_for()
    page.goto(f"/cases/{case_id}")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_text(f"Added to “Bone tumours {uid}” (1 cases).").wait_for()
    page.get_by_role("button", name="Download case (offline presentation)").click()
    export = page.locator(".export")
    download = export.get_by_role("link", name=re.compile("^Download"))
    download.wait_for(timeout=120_000)
    href = download.get_attribute("href")
    assert href
    shot(page, "08-export-ready")
    got = httpx.get(href, timeout=60)  # the archive's presigned link, fetched outside the browser
    assert got.status_code == 200 and len(got.content) > 1000
    page.get_by_role("link", name="Exports").click()
    page.get_by_text(f"Presentation of “{title}”").wait_for()

    # -- a reader without an account, on a phone, finds the case, scrolls the series and changes the window
    reader, _ = browser("reader", 390, 844)
    reader.goto("/library")
    reader.get_by_label("Search").fill(uid)
    reader.get_by_role("button", name="Search").click()
    reader.get_by_role("link", name=title).click()
    reader.get_by_role("heading", name=title).wait_for()
    stack = reader.locator(".cb-stack")
    stack.wait_for()
    first = reader.locator(".cb-stack-image").get_attribute("src")
    stack.focus()
    reader.keyboard.press("ArrowDown")
    reader.keyboard.press("ArrowDown")
    assert stack.get_attribute("data-index") == "2"
    assert reader.locator(".cb-stack-counter").inner_text() == "3 / 4"
    reader.locator(".cb-stack-view").hover()
    reader.mouse.wheel(0, 120)
    eventually(reader, lambda: stack.get_attribute("data-index") == "3", "the wheel to reach the last image", 10)
    reader.keyboard.press("3")  # the third preset: Bone
    eventually(reader, lambda: stack.get_attribute("data-preset") == "Bone", "the bone window", 10)
    src = reader.locator(".cb-stack-image").get_attribute("src") or ""
    assert "window=400,1800,linear" in src and src != first
    reader.wait_for_function("() => { const i = document.querySelector('.cb-stack-image');"
                             " return i && i.complete && i.naturalWidth > 0; }")
    overflow = reader.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the case page is {overflow}px wider than a phone"
    shot(reader, "09-reader-bone-window")
    assert reader.get_by_role("button", name="Publish").count() == 0


def test_console_at_phone_width(browser: Any) -> None:
    page, watch = browser("phone", 390, 844)
    page.goto("/library")
    page.get_by_role("heading", name="Library").wait_for()
    toggle = page.get_by_role("button", name="Menu")
    assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Featured").is_visible()
    shot(page, "10-phone-menu")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in").click()
    page.get_by_label("Bearer token").wait_for()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    shot(page, "11-phone-sign-in")
    # a bad token is refused with the API's code, and the page stays usable
    watch.expect(401, r"^/v1/me$")
    page.get_by_label("Bearer token").fill("not-a-token")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("alert").get_by_text("unauthenticated").wait_for()


def test_console_paths_and_the_api_side_by_side(platform: Any) -> None:
    base = platform["gateway"].url
    html = httpx.get(f"{base}/cases/some-case", headers={"Accept": "text/html"}, timeout=30)
    assert html.status_code == 200 and "/console-assets/" in html.text
    api = httpx.get(f"{base}/v1/cases/no-such-case", headers={"Accept": "text/html"}, timeout=30)
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    js = httpx.get(f"{base}/cases/some-case", headers={"Accept": "application/json"}, timeout=30)
    assert js.status_code == 404 and js.json()["error"]["code"] == "not_found"
    asset = re.search(r'/console-assets/[^"]+\.js', html.text)
    assert asset and httpx.get(f"{base}{asset.group(0)}", timeout=30).status_code == 200
    minted = httpx.post(f"{base}/v1/dev/tokens", json={"user": "console-check", "roles": ["editor"]}, timeout=30)
    assert minted.status_code == 200
    me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {minted.json()['token']}"}, timeout=30)
    assert {k: me.json()[k] for k in ("id", "name", "roles")} == {"id": "console-check", "name": "console-check",
                                                               "roles": ["editor"]}
    assert "/v1/dev/tokens" in httpx.get(f"{base}/openapi.json", timeout=30).json()["paths"]


def burned_in_ct() -> bytes:
    """CT_small flagged as carrying burned-in annotation: the anonymiser quarantines it."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(sample_file("CT_small.dcm")))
    ds.BurnedInAnnotation = "YES"
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def test_quarantine_rejection_and_an_edit_through_the_console(browser: Any, platform: Any, tmp_path: Path) -> None:
    uid = text_uid()
    title = f"Enchondroma of the hand {uid}"
    page, contributor = browser("contributor")
    mint(page, f"c{uid}", f"Dr Bo {uid}", ["contributor"])
    page.goto("/cases/new")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Presentation (clinical history)").fill("Painless swelling of a finger.")
    page.get_by_label("Patient age (years)").fill("40")
    page.get_by_label("Patient sex").select_option("female")
    page.get_by_label("Systems (comma separated)").fill("musculoskeletal")
    page.get_by_label("Diagnostic certainty").select_option("certain")
    page.get_by_role("button", name="Create case").click()
    page.get_by_role("heading", name=title).wait_for()
    page.get_by_role("button", name="Add study").click()
    page.get_by_role("heading", name="Study 1: CT").wait_for()
    good, burned = tmp_path / "good.dcm", tmp_path / "burned.dcm"
    good.write_bytes(ct_series(1)[0])
    burned.write_bytes(burned_in_ct())
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    contributor.expect(415, r"/uploads$")
    page.locator("input[type=file]").set_input_files([str(good), str(burned), str(notes)])
    uploads = page.get_by_role("list", name="Uploads")
    uploads.get_by_text("1 image accepted, processing").nth(1).wait_for()
    # a file that is no image is refused with the API's code, the others go on
    uploads.locator("li", has_text="notes.txt").get_by_text("unsupported_media").wait_for()

    # the quarantined image is named with its reason; the ready one is shown
    quarantine = page.locator("details.quarantine")
    quarantine.wait_for(timeout=120_000)
    assert "1 quarantined" in quarantine.inner_text() and "burned_in_text" in quarantine.inner_text()
    quarantine.get_by_text("What de-identification did").click()  # the image's de-identification report
    report = quarantine.locator(".deid-report")
    report.wait_for()
    assert "Quarantine reasons" in report.inner_text() and "burned_in_text" in report.inner_text()
    eventually(page, lambda: page.locator(".image-status .badge-processing").count() == 0, "no image processing")
    page.locator(".cb-stack").wait_for(timeout=60_000)
    # a PNG export is a series of its own, shown from /v1/images (no window presets)
    png = tmp_path / "export.png"
    png.write_bytes(plain_png(7, 300))
    page.locator("input[type=file]").set_input_files([str(png)])
    eventually(page, lambda: page.locator(".cb-stack").count() == 2, "the PNG's stack", 120)
    page.wait_for_function("() => { const all = [...document.querySelectorAll('.cb-stack-image')];"
                           " return all.length === 2 && all.every((i) => i.complete && i.naturalWidth > 0); }")
    assert page.locator(".cb-stack").nth(1).locator(".cb-stack-preset").count() == 0
    shot(page, "12-quarantined")
    # unlisted: a share link appears; back to draft, it goes
    page.get_by_role("button", name="Make unlisted").click()
    assert "/v1/shared/" in (page.get_by_label("Share link").input_value())
    page.get_by_role("button", name="Make draft").click()
    page.get_by_text("only you see it").wait_for()
    assert page.get_by_label("Share link").count() == 0
    # moderation's automatic checks return it at once, with the reason on the case page
    page.get_by_role("button", name="Publish").click()
    page.locator(".case-head .badge-rejected").wait_for(timeout=120_000)
    assert "image_quarantined" in page.locator("section.warn").inner_text()

    # a second case, set up through the API with the same token, passes its checks and waits for an editor
    token = page.evaluate("() => localStorage.getItem('casebook.token')")
    owner = httpx.Client(base_url=platform["gateway"].url, timeout=60, headers={"Authorization": f"Bearer {token}"})
    other = owner.post("/v1/cases", json={"title": f"Chondroma {uid}", "patient_age": 30, "patient_sex": "male",
                                          "systems": ["musculoskeletal"], "diagnostic_certainty": "certain",
                                          "presentation": "Finger swelling."}).json()["id"]
    study = owner.post(f"/v1/cases/{other}/studies", json={"modality": "CT"}).json()["id"]
    assert owner.post(f"/v1/cases/{other}/studies/{study}/uploads",
                      files={"file": ("a.dcm", ct_series(1)[0])}).status_code == 202
    deadline = time.monotonic() + 120
    while owner.get(f"/v1/cases/{other}/images").json()[0]["status"] == "processing":
        assert time.monotonic() < deadline, "image not de-identified"
        time.sleep(0.5)
    assert owner.post(f"/v1/cases/{other}/publish").status_code == 202

    # the editor claims it and rejects it with a reason the contributor can act on
    editor, _ = browser("editor")
    mint(editor, f"e{uid}", f"Dr Ed {uid}", ["editor"])
    editor.goto("/moderation")
    item = editor.locator(f"li.queue-item[data-case='{other}']")
    eventually(editor, lambda: item.count() == 1, "the case in the queue", reload=True)
    item.get_by_role("button", name="Claim").click()
    item.get_by_role("button", name="Reject…").click()
    item.get_by_label("Code").select_option("incomplete_case")
    item.get_by_label("What the contributor should fix").fill("Describe the findings of the study.")
    shot(editor, "13-rejecting")
    item.get_by_role("button", name="Reject and return to the contributor").click()
    item.wait_for(state="detached")

    # back to the owner as a draft with the reason; an edit makes a pending revision with its diff
    page.goto(f"/cases/{other}")
    eventually(page, lambda: page.locator(".case-head .badge-rejected").count() == 1, "the case rejected", reload=True)
    assert "Describe the findings of the study." in page.locator("section.warn").inner_text()
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Discussion").fill("Lobulated lucent lesion with chondroid matrix.")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Lobulated lucent lesion with chondroid matrix.").first.wait_for()
    revisions = page.locator("section[aria-labelledby=revs]")
    revisions.locator(".badge-pending").first.wait_for()
    assert revisions.locator("td.after", has_text="Lobulated lucent lesion").count() >= 1
    # the rejected revision as it was frozen: its text without the later edit
    rejected = revisions.locator("li", has=page.locator(".badge-rejected"))
    rejected.locator("summary").click()
    rejected.get_by_role("button", name=re.compile("as it was frozen")).click()
    frozen = rejected.locator(".frozen")
    frozen.wait_for()
    assert "Finger swelling." in frozen.inner_text() and "Lobulated" not in frozen.inner_text()
    history = page.locator("section[aria-labelledby=hist]").inner_text()
    assert "rejected" in history and "incomplete_case" in history
    page.locator(".cb-stack").wait_for(timeout=60_000)
    shot(page, "14-rejected-and-edited")
    page.get_by_role("link", name="My cases").click()
    assert page.get_by_label("Limits").inner_text().split("\n")[0].startswith("2 of 10")  # rejections are drafts
    owner.close()
