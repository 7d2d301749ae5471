"""Burned-in text detection and redaction with RapidOCR (ONNX runtime, models ship in the wheel).

The engine is imported lazily and created once per process: loading the three ONNX models takes
about a second.  ``CASEBOOK_OCR_THREADS`` caps the ONNX thread pools; the anonymiser's worker processes set
it to their share of the cores (one each when there is a worker per core) so N workers do not run N×N threads.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

# Pixels added around each detected box: detectors hug glyphs tightly and anti-aliased edges or
# descenders just outside the box can still be read.
BOX_MARGIN_PX = 4
BOX_MARGIN_FRACTION = 0.15


class OcrUnavailable(RuntimeError):
    """OCR is required but the engine cannot be loaded."""


@dataclass(frozen=True)
class TextBox:
    x0: int
    y0: int
    x1: int
    y1: int
    text: str
    score: float


_engine: Any = None
_engine_error: Exception | None = None
_lock = threading.Lock()


def _create_engine() -> Any:
    from rapidocr_onnxruntime import RapidOCR  # heavy import, deferred on purpose

    threads = int(os.environ.get("CASEBOOK_OCR_THREADS", "-1"))
    engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=threads, print_verbose=False)
    # Detect at the image's own size (callers scale it into a bounded range): the default enlarges
    # every image to 736 px on its short side, which costs five times more on a 512 px CT slice.
    engine.text_det.limit_type = "min"
    engine.text_det.limit_side_len = 32
    _detector_with_arena(engine, threads)
    return engine


def _detector_with_arena(engine: Any, threads: int) -> None:
    """The detector runs on every view of every image: give its session ONNX Runtime's memory arena.

    RapidOCR turns the arena off, so each run allocates its buffers again; kept, they cost the worker
    the detector's peak working set (held between runs) and save 8 % of each run (measured on 256 px views,
    one thread). Recognition runs only where text was found and keeps RapidOCR's session.
    """
    import onnxruntime as ort

    old = engine.text_det.infer.session
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    opts.enable_cpu_mem_arena = True
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads >= 1:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = threads
    engine.text_det.infer.session = ort.InferenceSession(old._model_path, sess_options=opts,
                                                         providers=old.get_providers())


def get_engine() -> Any:
    global _engine, _engine_error
    if _engine is not None:
        return _engine
    with _lock:
        if _engine is None:
            if _engine_error is not None:
                raise OcrUnavailable(str(_engine_error))
            try:
                _engine = _create_engine()
            except Exception as exc:  # any import/model failure means "no OCR", fail closed upstream
                _engine_error = exc
                raise OcrUnavailable(str(exc)) from exc
    return _engine


def to_uint8(frame: np.ndarray, *, invert: bool = False) -> np.ndarray:
    """Scale one frame (2-D grey or H×W×C colour) to uint8 for the detector (min–max window)."""
    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8:
        a = arr.astype(np.float32)
        lo, hi = float(a.min()), float(a.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr = ((a - lo) * scale).clip(0, 255).astype(np.uint8)
    if invert:
        arr = 255 - arr
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def detect(image: np.ndarray) -> bool:
    """Whether the detector alone sees any text region (cheap gate before recognition)."""
    engine = get_engine()
    boxes, _ = engine.text_det(image)
    return boxes is not None and len(boxes) > 0


def find_text(image: np.ndarray) -> list[TextBox]:
    """Detected + recognised text regions (recognition score >= the engine's text_score)."""
    engine = get_engine()
    result, _ = engine(image)
    return _boxes(image, result)


def _plain(engine: Any, image: np.ndarray) -> bool:
    """Whether the engine would detect on `image` as given (no resize, no letterbox, 3 channels)."""
    h, w = image.shape[:2]
    return (image.ndim == 3 and image.shape[2] == 3 and engine.min_side_len <= min(h, w)
            and max(h, w) <= engine.max_side_len and h > engine.min_height
            and (engine.width_height_ratio == -1 or w / h <= engine.width_height_ratio))


def read(image: np.ndarray) -> list[TextBox]:
    """`find_text` with the detector run once: no region found means no recognition at all.

    The same steps as the engine's own call (detect, order, crop, classify, recognise, keep scores >=
    text_score), so the result is the same as `find_text`'s; only the second detection the gate used to
    cost is saved. An image the engine would first resize or pad goes through the engine's call.
    """
    engine = get_engine()
    if not _plain(engine, image):
        return find_text(image) if detect(image) else []
    dt_boxes, _ = engine.text_det(image)
    if dt_boxes is None or len(dt_boxes) < 1:
        return []
    ordered = engine.sorted_boxes(dt_boxes)
    crops = engine.get_crop_img_list(image, ordered)
    if engine.use_cls:
        crops, _, _ = engine.text_cls(crops)
    rec_res, _ = engine.text_rec(crops, False)
    points = engine._get_origin_points(ordered, {"preprocess": {"ratio_h": 1.0, "ratio_w": 1.0},
                                                 "padding_1": {"top": 0, "left": 0}}, *image.shape[:2])
    kept = [(p.tolist(), res[0], res[1]) for p, res in zip(points, rec_res, strict=False)
            if float(res[1]) >= engine.text_score]
    return _boxes(image, kept)


def _boxes(image: np.ndarray, result: Any) -> list[TextBox]:
    boxes: list[TextBox] = []
    if not result:
        return boxes
    h, w = image.shape[:2]
    for points, text, score in result:
        pts = np.asarray(points, dtype=np.float32)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        pad = BOX_MARGIN_PX + int(BOX_MARGIN_FRACTION * (y1 - y0))
        boxes.append(
            TextBox(
                max(0, int(x0) - pad),
                max(0, int(y0) - pad),
                min(w, int(np.ceil(x1)) + pad + 1),
                min(h, int(np.ceil(y1)) + pad + 1),
                str(text),
                float(score),
            )
        )
    return boxes
