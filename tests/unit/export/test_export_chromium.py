"""The offline presentation opened in headless Chromium, with every network request refused."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from casebook_export.archive import build_presentation
from casebook_export.model import ExportCase, ExportImage, ExportSeries, ExportStudy

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
TITLE = "Tension pneumothorax <script>window.pwned = true</script>"


class MemorySource:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def open(self, object_key: str) -> io.BytesIO:
        return io.BytesIO(self.objects[object_key])


def _ct_slice(index: int) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 256
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.WindowCenter, ds.WindowWidth = 40, 400
    y, x = np.mgrid[0:256, 0:256]
    radius = 40 + 10 * index
    body = np.where((x - 128) ** 2 + (y - 128) ** 2 < 110**2, 40, -1000)
    lesion = np.where((x - 128) ** 2 + (y - 128) ** 2 < radius**2, 200, 0)
    ds.PixelData = (body + lesion).astype(np.int16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _case() -> tuple[ExportCase, MemorySource]:
    objects = {f"c/ct{i}": _ct_slice(i) for i in range(5)}
    png = io.BytesIO()
    Image.new("RGB", (320, 200), (180, 40, 40)).save(png, format="PNG")
    objects["c/photo"] = png.getvalue()
    ct = [ExportImage(f"ct{i}", f"c/ct{i}", "application/dicom", len(objects[f"c/ct{i}"])) for i in range(5)]
    photo = [ExportImage("photo", "c/photo", "image/png", len(objects["c/photo"]))]
    case = ExportCase(
        case_id="c",
        title=TITLE,
        presentation="Trauma, hypotension.",
        patient_age=40,
        patient_sex="male",
        systems=["Chest"],
        tags=["trauma"],
        diagnosis="Tension pneumothorax",
        diagnostic_certainty="certain",
        discussion="Mediastinal shift.",
        author_name="Dr C",
        attribution="",
        licence="",
        studies=[
            ExportStudy(1, "CT", "Large left pneumothorax.", [ExportSeries(1, "axial", ct)]),
            ExportStudy(2, "Photo", "Clinical photograph.", [ExportSeries(1, "colour", photo)]),
        ],
    )
    return case, MemorySource(objects)


@pytest.mark.slow
def test_presentation_plays_offline_in_chromium(tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium, or make system-deps)"
        )
    try:
        from playwright.sync_api import Route, sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install playwright==1.65.2")

    case, source = _case()
    page_path = tmp_path / "presentation.html"
    with page_path.open("wb") as out:
        for chunk in build_presentation([case], source=source):
            out.write(chunk)

    requested: list[str] = []
    refused: list[str] = []

    def guard(route: Route) -> None:
        url = route.request.url
        requested.append(url)
        if url.startswith(("file://", "data:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", guard)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_path.as_uri(), wait_until="load")

            title = page.locator("h1.case-title")
            assert title.is_visible()
            assert title.inner_text() == TITLE  # shown as text, never run
            assert page.evaluate("window.pwned === undefined")
            assert page.get_by_text("CC BY-NC-SA 4.0").first.is_visible()

            first = page.locator(".viewer").first
            frame = first.locator("img.frame").first
            assert frame.is_visible()
            assert page.evaluate("document.querySelector('img.frame').naturalWidth") > 0
            assert first.get_attribute("data-index") == "0"
            assert first.locator(".counter").inner_text() == "1 / 5"
            page.screenshot(path=str(tmp_path / "presentation.png"), full_page=False)

            first.focus()
            page.keyboard.press("ArrowDown")
            assert first.get_attribute("data-index") == "1"
            assert first.locator(".counter").inner_text() == "2 / 5"
            visible = first.locator("img.frame:not([hidden])")
            assert visible.count() == 1 and visible.get_attribute("alt", timeout=1000) is not None
            assert (
                page.evaluate("document.querySelectorAll('.viewer')[0].querySelectorAll('img.frame')[1].naturalWidth")
                > 0
            )

            first.locator(".stack").hover()
            page.mouse.wheel(0, 120)
            page.wait_for_function("document.querySelector('.viewer').dataset.index === '2'")
            page.keyboard.press("End")
            assert first.get_attribute("data-index") == "4"
            page.screenshot(path=str(tmp_path / "presentation-last.png"))
            assert errors == []
        finally:
            browser.close()

    assert refused == [], f"network requests attempted: {refused}"
    assert all(url.startswith(("file://", "data:")) for url in requested)
    assert (tmp_path / "presentation.png").stat().st_size > 0
