"""The text check made cheaper without checking less: one detection per view, identical views read once.

Uses the real RapidOCR models (no network); the counting wrappers call the real functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from casebook_anonymiser.deid import ocr, textcheck
from casebook_anonymiser.worker import ocr_threads

pytest.importorskip("rapidocr_onnxruntime")


def _text_view(text: str = "JOHN SMITH 1234567", size: tuple[int, int] = (512, 256)) -> np.ndarray:
    img = Image.new("L", size, 20)
    ImageDraw.Draw(img).text((16, 16), text, fill=230, font=ImageFont.load_default(size=36))
    return np.asarray(img)


@pytest.fixture()
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How often the detector path runs (the real one), with the view cache emptied first."""
    calls: list[int] = []
    real = ocr.read

    def counting(image: np.ndarray) -> Any:
        calls.append(image.size)
        return real(image)

    monkeypatch.setattr(ocr, "read", counting)
    monkeypatch.setattr(textcheck, "_SEEN", type(textcheck._SEEN)())
    return calls


def test_one_detection_reads_what_the_engine_reads() -> None:
    view = np.repeat(_text_view()[:, :, None], 3, axis=2)
    once = ocr.read(np.ascontiguousarray(view))
    engine = ocr.find_text(np.ascontiguousarray(view))
    assert [b.text for b in once] == [b.text for b in engine]
    assert [(b.x0, b.y0, b.x1, b.y1) for b in once] == [(b.x0, b.y0, b.x1, b.y1) for b in engine]
    assert "SMITH" in " ".join(b.text for b in once)


def test_nothing_detected_means_nothing_read() -> None:
    blank = np.full((256, 256, 3), 40, np.uint8)
    blank[100:150, 100:150] = 90  # a shape, no text
    assert ocr.read(blank) == []


def test_an_identical_view_is_answered_from_the_first_reading(reads: list[int]) -> None:
    view = _text_view()
    first = textcheck.find_regions(view)
    again = textcheck.find_regions(view.copy())
    assert first and again == first
    assert len(reads) == 1
    changed = view.copy()
    changed[200, 200] ^= 1  # one value differs: a different picture, read again
    assert textcheck.find_regions(changed) == first
    assert len(reads) == 2


def test_a_constant_view_is_not_run_through_the_detector(reads: list[int]) -> None:
    assert textcheck.find_regions(np.full((300, 300), 17, np.uint8)) == []
    assert reads == []


def test_text_is_still_found_after_its_view_was_cached(reads: list[int]) -> None:
    view = _text_view("JANE DOE 7654321")
    textcheck.find_regions(view)
    regions = textcheck.find_regions(view)
    assert regions, "a cached answer must keep the regions found"
    redacted = textcheck.redact(view[None, ...], regions)[0]
    assert textcheck.find_regions(redacted) == []  # the redacted view is new and read for real
    assert len(reads) == 2


def test_the_cache_is_bounded(reads: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textcheck, "SEEN_MAX", 3)
    for i in range(6):
        v = np.zeros((64, 64), np.uint8)
        v[i, i] = 255
        textcheck.find_regions(v)
    assert len(textcheck._SEEN) == 3


@pytest.mark.parametrize(("workers", "cores", "threads"), [(2, 2, 1), (1, 2, 2), (4, 2, 1), (2, 8, 4), (0, 1, 1)])
def test_onnx_threads_share_the_cores_between_workers(workers: int, cores: int, threads: int) -> None:
    assert ocr_threads(workers, cores) == threads
