"""The shared display pipeline: one DICOM frame rendered with an explicit window and a viewport."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file

from casebook_platform.rendering import RenderError, Viewport, Window, render_dicom_frame


def _file(name: str) -> io.BytesIO:
    return io.BytesIO(Path(str(get_testdata_file(name))).read_bytes())


def test_native_size_png_by_default() -> None:
    frame = render_dicom_frame(_file("CT_small.dcm"), 0)
    image = Image.open(io.BytesIO(frame.data))
    assert (frame.media_type, image.format, image.size) == ("image/png", "PNG", (128, 128))


def test_window_changes_the_grey_levels_as_a_linear_window_would() -> None:
    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    narrow = np.asarray(Image.open(io.BytesIO(render_dicom_frame(_file("CT_small.dcm"), 0,
                                                                 voi=Window(40, 80)).data)))
    wide = np.asarray(Image.open(io.BytesIO(render_dicom_frame(_file("CT_small.dcm"), 0,
                                                               voi=Window(40, 2000)).data)))
    # PS3.3 C.11.2.1.2.1: below c - 0.5 - (w-1)/2 black, above c - 0.5 + (w-1)/2 white.
    assert (narrow[hu <= 40 - 0.5 - 79 / 2] == 0).all() and (narrow[hu > 40 - 0.5 + 79 / 2] == 255).all()
    inside = (hu > -900) & (hu < 980)  # strictly within the wide window: neither black nor white
    assert ((wide[inside] > 0) & (wide[inside] < 255)).all() and not np.array_equal(narrow, wide)


def test_viewport_fits_and_crops() -> None:
    fitted = Image.open(io.BytesIO(render_dicom_frame(_file("MR_small.dcm"), 0, fmt="jpeg",
                                                      viewport=Viewport(32, 20)).data))
    assert fitted.format == "JPEG" and fitted.size == (20, 20)
    cropped = Image.open(io.BytesIO(render_dicom_frame(_file("MR_small.dcm"), 0,
                                                       viewport=Viewport(64, 64, (0, 0, 32, 16))).data))
    assert cropped.size == (64, 32)
    with pytest.raises(RenderError):
        render_dicom_frame(_file("MR_small.dcm"), 0, viewport=Viewport(64, 64, (60, 0, 32, 16)))


def test_frames_of_a_multiframe_object_and_out_of_range() -> None:
    name = "SC_rgb_rle_2frame.dcm"  # 2 frames
    first = render_dicom_frame(_file(name), 0).data
    last = render_dicom_frame(_file(name), 1).data
    assert first != last
    with pytest.raises(IndexError):
        render_dicom_frame(_file(name), 2)


def test_not_dicom_is_a_render_error() -> None:
    with pytest.raises(RenderError):
        render_dicom_frame(io.BytesIO(b"\0" * 200), 0)
