"""DICOM and PNG/JPEG to 8-bit display frames: LUTs, windows, photometrics, stacks, size bounds."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from casebook_export.render import RenderError, render_image

TEST_FILES = Path(get_testdata_file("CT_small.dcm") or "").parent


def _local(name: str) -> Path:
    # Only files bundled with pydicom: the others would be downloaded.
    path = TEST_FILES / name
    assert path.exists(), f"pydicom test file {name} missing"
    return path


def _frames(data: bytes, media_type: str = "application/dicom", **kwargs: object) -> list[Image.Image]:
    frames = list(render_image(io.BytesIO(data), media_type, fmt="png", **kwargs))  # type: ignore[arg-type]
    images = [Image.open(io.BytesIO(f.data)) for f in frames]
    for frame, image in zip(frames, images, strict=True):
        assert frame.media_type == "image/png"
        assert (frame.width, frame.height) == image.size
    return images


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def _dicom(pixels: np.ndarray, **attrs: object) -> bytes:
    """A minimal uncompressed MR-like DICOM with the given pixels ((frames,) rows, cols)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_ct_small_applies_rescale_and_a_stack_range() -> None:
    [image] = _frames(_local("CT_small.dcm").read_bytes())
    assert image.mode == "L" and image.size == (128, 128)
    px = _pixels(image)
    assert px.min() == 0 and px.max() == 255  # the range spans the display
    assert 60 < px.mean() < 200


def test_mr_small_uses_its_stored_window() -> None:
    path = _local("MR_small.dcm")
    ds = dcmread(path)
    [image] = _frames(path.read_bytes())
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    raw = ds.pixel_array.astype(np.float64)
    expected = np.clip(((raw - (center - 0.5)) / (width - 1) + 0.5) * 255, 0, 255)
    assert np.abs(_pixels(image).astype(np.float64) - expected).max() <= 1.0


def test_window_after_rescale_and_sigmoid_function() -> None:
    raw = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)
    data = _dicom(raw, RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    px = _pixels(_frames(data)[0]).astype(int)
    hu = raw.astype(int) - 1024
    assert (px[hu <= -160] == 0).all()
    assert (px[hu > 240] == 255).all()
    mid = px[(hu > -100) & (hu < 180)]
    assert ((mid > 0) & (mid < 255)).all()
    sig = _pixels(_frames(_dicom(raw, WindowCenter=2048, WindowWidth=1000, VOILUTFunction="SIGMOID"))[0])
    assert sig.min() < 10 and sig.max() > 245 and abs(int(sig[8, 0]) - 128) < 10


@pytest.mark.parametrize("vr", ["US", "OW"])
def test_voi_lut_sequence_wins_over_window(vr: str) -> None:
    raw = np.tile(np.arange(256, dtype=np.uint16), (4, 1))
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    values = [4095 - 16 * i for i in range(256)]  # an inverting LUT with 12-bit values
    item.add_new(0x00283006, vr, values if vr == "US" else np.asarray(values, dtype="<u2").tobytes())
    data = _dicom(raw, VOILUTSequence=[item], WindowCenter=128, WindowWidth=10)
    px = _pixels(_frames(data)[0])
    assert px[0, 0] == 255 and px[0, 255] == 0  # inverted, full range: the LUT was used
    assert np.all(np.diff(px[0].astype(int)) <= 0)


def test_monochrome1_is_inverted() -> None:
    raw = np.tile(np.arange(0, 1024, 4, dtype=np.uint16), (8, 1))
    mono2 = _pixels(_frames(_dicom(raw, WindowCenter=512, WindowWidth=1024))[0]).astype(int)
    mono1 = _pixels(
        _frames(_dicom(raw, WindowCenter=512, WindowWidth=1024, PhotometricInterpretation="MONOCHROME1"))[0]
    ).astype(int)
    assert (mono1 == 255 - mono2).all()
    assert mono1[0, 0] == 255  # lowest value is white in MONOCHROME1


def test_ct_small_as_monochrome1_is_the_negative() -> None:
    ds = dcmread(_local("CT_small.dcm"))
    normal = _pixels(_frames(_local("CT_small.dcm").read_bytes())[0]).astype(int)
    ds.PhotometricInterpretation = "MONOCHROME1"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    inverted = _pixels(_frames(buffer.getvalue())[0]).astype(int)
    assert (inverted == 255 - normal).all()


def test_multi_frame_gives_a_stack_with_one_range() -> None:
    frames = np.stack([np.full((32, 32), v, dtype=np.uint16) for v in (100, 200, 300, 400)])
    frames[:, 0, 0] = 0
    images = _frames(_dicom(frames))
    assert len(images) == 4
    means = [float(_pixels(im)[1:, 1:].mean()) for im in images]
    # One range for the whole stack: brightness follows the data, it is not re-stretched per frame.
    assert means == sorted(means) and means[0] < means[-1] - 100


def test_enhanced_per_frame_windows_are_used() -> None:
    frames = np.stack([np.tile(np.arange(64, dtype=np.uint16) * 16, (8, 1))] * 2)
    per_frame = []
    for center in (256, 768):
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = center, 512
        group = Dataset()
        group.FrameVOILUTSequence = [voi]
        per_frame.append(group)
    images = _frames(_dicom(frames, PerFrameFunctionalGroupsSequence=per_frame))
    assert _pixels(images[0]).mean() > _pixels(images[1]).mean() + 50


@pytest.mark.parametrize(("name", "count"), [("rtdose.dcm", 15), ("SC_rgb_rle_2frame.dcm", 2)])
def test_bundled_multi_frame_files(name: str, count: int) -> None:
    assert len(_frames(_local(name).read_bytes())) == count


def test_rgb_is_kept_as_colour() -> None:
    [image] = _frames(_local("examples_rgb_color.dcm").read_bytes())
    assert image.mode == "RGB" and image.size == (320, 240)
    ds = dcmread(_local("examples_rgb_color.dcm"))
    assert np.array_equal(_pixels(image), ds.pixel_array)


def test_ybr_is_converted_to_rgb() -> None:
    # SC_ybr_full_422 shows colour bars: red on top, then lighter red, green...
    [image] = _frames(_local("SC_ybr_full_422_uncompressed.dcm").read_bytes())
    top = _pixels(image)[2, 50].astype(int)
    assert image.mode == "RGB"
    assert top[0] > 200 and top[1] < 40 and top[2] < 40


def test_palette_colour_is_expanded() -> None:
    [image] = _frames(_local("examples_palette.dcm").read_bytes())
    assert image.mode == "RGB" and image.size == (800, 350)


def test_large_frames_are_downscaled_to_max_edge() -> None:
    raw = (np.arange(3000 * 2000, dtype=np.uint32) % 4096).astype(np.uint16).reshape(2000, 3000)
    [image] = _frames(_dicom(raw, WindowCenter=2048, WindowWidth=4096), max_edge=512)
    assert image.size == (512, 341)


def test_png_and_jpeg_are_re_encoded_without_metadata() -> None:
    src = Image.new("RGB", (2400, 1200), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010E] = "Patient John Doe"  # ImageDescription
    jpeg = io.BytesIO()
    src.save(jpeg, format="JPEG", exif=exif)
    [image] = _frames(jpeg.getvalue(), "image/jpeg")
    assert image.size == (1024, 512)
    assert b"John Doe" not in image.tobytes() and not image.getexif()
    png = io.BytesIO()
    Image.new("LA", (20, 10), (255, 128)).save(png, format="PNG")
    [small] = _frames(png.getvalue(), "image/png")
    assert small.size == (20, 10)


@pytest.mark.parametrize("media_type", ["application/dicom", "image/png", "image/jpeg"])
def test_undecodable_data_raises_render_error(media_type: str) -> None:
    with pytest.raises(RenderError):
        _frames(b"not an image at all" * 10, media_type)


def test_dicom_without_pixels_raises_render_error() -> None:
    with pytest.raises(RenderError):
        _frames(_local("rtplan.dcm").read_bytes())


def test_jpeg_frames_by_default() -> None:
    frames = list(render_image(io.BytesIO(_local("MR_small.dcm").read_bytes()), "application/dicom"))
    assert frames[0].media_type == "image/jpeg" and frames[0].data[:2] == b"\xff\xd8"
