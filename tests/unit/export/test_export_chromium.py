"""The offline teaching deck opened in headless Chromium, stepped with keys, with every network request refused."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from web_browser import accessibility_violations, offline_page

from casebook_export.archive import build_presentation
from casebook_export.model import ExportCase, ExportImage, ExportSeries, ExportStudy

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


def _write(tmp_path: Path, cases: list[ExportCase], source: MemorySource, title: str | None = None) -> Path:
    page_path = tmp_path / "presentation.html"
    with page_path.open("wb") as out:
        for chunk in build_presentation(cases, source=source, title=title):
            out.write(chunk)
    return page_path


def _offline(url: str) -> bool:
    return url.startswith(("file://", "data:"))


def _slide(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
          const deck = document.getElementById("deck");
          const stack = deck.querySelector(".cb-stack");
          return {kind: deck.dataset.kind, counter: deck.querySelector(".cb-deck-counter").textContent,
                  heading: deck.querySelector(".cb-slide-heading").textContent, text: deck.innerText,
                  stack: stack ? stack.querySelector(".cb-stack-counter").textContent : null,
                  images: deck.querySelectorAll("img").length};
        }"""
    )


@pytest.mark.slow
def test_deck_runs_history_images_findings_then_diagnosis_offline(tmp_path: Path) -> None:
    case, source = _case()
    page_path = _write(tmp_path, [case], source)
    with offline_page(_offline) as (page, watch):
        page.goto(page_path.as_uri(), wait_until="load")
        page.wait_for_selector("#deck .cb-slide")
        assert page.title() == "Unknown case"  # the title names the diagnosis: not in the tab either

        first = _slide(page)
        assert first["kind"] == "history" and first["counter"] == "1 / 5"
        assert "Trauma, hypotension." in first["text"] and "40 years, male" in first["text"]
        assert "CC BY-NC-SA 4.0" in first["text"] and "Case courtesy of Dr C" in first["text"]
        assert first["images"] == 0
        shown = page.evaluate("document.body.innerText") + page.inner_html("#deck")
        for secret in ("Tension pneumothorax", "Mediastinal shift.", "Large left pneumothorax."):
            assert secret not in shown, secret  # not hidden: not in the document at all
        assert page.evaluate("window.pwned === undefined")
        page.screenshot(path=str(tmp_path / "deck-history.png"))
        assert accessibility_violations(page) == []

        page.keyboard.press("PageDown")  # what a presenter's clicker sends
        ct = _slide(page)
        assert ct["kind"] == "images" and ct["heading"] == "Study 1: CT" and ct["counter"] == "2 / 5"
        assert ct["stack"] == "1 / 5" and "Tension pneumothorax" not in ct["text"]
        page.wait_for_function("document.querySelector('#deck .cb-stack-image').naturalWidth > 0")
        page.keyboard.press("ArrowDown")  # the slide's stack scrolls without being focused
        assert _slide(page)["stack"] == "2 / 5"
        page.locator("#deck .cb-stack-view").hover()
        page.mouse.wheel(0, 120)
        page.wait_for_function("document.querySelector('#deck .cb-stack').dataset.index === '2'")
        page.locator("#deck .cb-stack").focus()
        page.keyboard.press("ArrowDown")
        assert _slide(page)["stack"] == "4 / 5"
        alt = page.locator("#deck .cb-stack-image").get_attribute("alt")
        assert alt == "Study 1 CT, series 1: axial, image 4 of 5"
        page.screenshot(path=str(tmp_path / "deck-images.png"))
        assert accessibility_violations(page) == []

        page.keyboard.press("ArrowRight")  # on the deck, Right steps the slide even from a focused stack
        photo = _slide(page)
        assert photo["kind"] == "images" and photo["heading"] == "Study 2: Photo" and photo["stack"] == "1 / 1"

        page.keyboard.press(" ")
        findings = _slide(page)
        assert findings["kind"] == "findings" and findings["counter"] == "4 / 5"
        assert page.get_by_role("status").inner_text() == "Slide 4 of 5: Findings"  # told to screen readers
        assert "Large left pneumothorax." in findings["text"] and "Clinical photograph." in findings["text"]
        assert "Mediastinal shift." not in findings["text"] and "Tension pneumothorax" not in findings["text"]

        page.keyboard.press("PageUp")
        page.keyboard.press("ArrowLeft")
        back = _slide(page)
        assert back["heading"] == "Study 1: CT" and back["stack"] == "4 / 5"  # the stack kept its place

        page.keyboard.press("End")
        diagnosis = _slide(page)
        assert diagnosis["kind"] == "diagnosis" and diagnosis["counter"] == "5 / 5"
        assert diagnosis["heading"] == TITLE  # shown as text, never run
        assert "Tension pneumothorax" in diagnosis["text"] and "Mediastinal shift." in diagnosis["text"]
        assert "certain" in diagnosis["text"]
        assert page.evaluate("window.pwned === undefined")
        page.screenshot(path=str(tmp_path / "deck-diagnosis.png"))
        assert accessibility_violations(page) == []
        page.get_by_role("button", name="Next slide").is_disabled()

        page.keyboard.press("Home")
        assert _slide(page)["kind"] == "history"
        page.get_by_role("button", name="Next slide").click()
        assert _slide(page)["kind"] == "images"

        page.set_viewport_size({"width": 375, "height": 740})
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.screenshot(path=str(tmp_path / "deck-phone.png"))
        assert watch.errors == []
    assert watch.refused == [], f"network requests attempted: {watch.refused}"
    assert (tmp_path / "deck-images.png").stat().st_size > 0


@pytest.mark.slow
def test_playlist_deck_has_a_title_slide_per_case(tmp_path: Path) -> None:
    case, source = _case()
    second = replace(case, case_id="d", title="Second case", diagnosis="Haemothorax")
    page_path = _write(tmp_path, [case, second], source, title="Chest emergencies")
    with offline_page(_offline) as (page, watch):
        page.goto(page_path.as_uri(), wait_until="load")
        page.wait_for_selector("#deck .cb-slide")
        assert page.title() == "Chest emergencies"
        opening = _slide(page)
        assert (
            opening["kind"] == "title" and opening["heading"] == "Chest emergencies" and opening["counter"] == "1 / 13"
        )
        kinds = []
        for _ in range(12):
            page.keyboard.press("ArrowRight")
            s = _slide(page)
            kinds.append((s["kind"], s["heading"]))
        assert [k for k, _ in kinds] == ["title", "history", "images", "images", "findings", "diagnosis"] * 2
        assert kinds[0][1] == "Case 1 of 2" and kinds[6][1] == "Case 2 of 2"
        assert kinds[5][1] == TITLE and kinds[11][1] == "Second case"
        assert "Haemothorax" in _slide(page)["text"]
        page.keyboard.press("ArrowRight")  # past the end stays on the last slide
        assert _slide(page)["counter"] == "13 / 13"
        assert watch.errors == []
    assert watch.refused == []
