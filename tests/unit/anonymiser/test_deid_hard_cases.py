"""Hard cases, one or more per leak class, built on real DICOM files: no seeded value in any output byte.

Classes: (1) elements outside Table E.1-1, (2) non-ASCII identifiers, (3) descriptors holding other
people's names or written dates, (4) metadata inside pixel data, (5) burned-in text on every
modality and in the views a viewer shows, (6) an allow-listed private tag whose declared VR hides
text, plus deflated input. Every ready output must re-read as valid DICOM with decodable pixels.
"""

from __future__ import annotations

import multiprocessing
import struct
import unicodedata
import warnings
from io import BytesIO

import numpy as np
import pydicom
import pytest
from deid_parity import both_paths
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit

from casebook_anonymiser.deid import CaseKey, DeidResult
from casebook_anonymiser.deid.verify import CODECS, date_forms

NAME = "Quillfeather"


def _ct() -> Dataset:
    return pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))


def _bytes(ds: Dataset, **kw: object) -> bytes:
    buf = BytesIO()
    ds.save_as(buf, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def _variants(value: str) -> set[bytes]:
    """Spellings of a seeded value to look for in output bytes."""
    folded = {value, value.upper(), value.lower()}
    stripped = "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))
    folded |= {stripped, stripped.upper(), stripped.lower()}
    out: set[bytes] = set()
    for v in folded:
        for codec in CODECS:
            try:
                b = v.encode(codec)
            except (UnicodeError, LookupError):
                continue
            if len(b) >= 4:
                out.add(b)
    return out


def assert_clean(result: DeidResult, *seeded: str) -> Dataset | None:
    """Ready outputs hold none of the seeded values and re-read as valid DICOM; quarantine is allowed."""
    if result.status != "ready":
        assert result.data is None
        return None
    assert result.data is not None
    low = result.data.lower()
    for value in seeded:
        for v in _variants(value):
            assert v.lower() not in low, (value, v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(BytesIO(result.data))
        if "PixelData" in ds:
            assert ds.pixel_array.size > 0
    for elem in ds.iterall():
        assert not elem.tag.group & 1 or elem.tag.group in (0x0019, 0x0043, 0x7053)
    return ds


def _run(data: bytes, key: CaseKey) -> DeidResult:
    # Every hard case runs through both paths, which must agree byte for byte (see tests/deid_parity.py).
    return both_paths(data, key, ocr=True)


# --- 1. elements the basic profile does not name --------------------------------------------


@pytest.mark.parametrize(
    "keyword",
    [
        "CommentsOnThePerformedProcedureStep",
        "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest",
        "StorageMediaFileSetID",
        "RetrieveURL",
        "HL7InstanceIdentifier",
        "ContentDescription",
        "DocumentTitle",
        "ContentLabel",
        "PatientBirthDateInAlternativeCalendar",
        "RequestedProcedureComments",
        "ImageComments",
    ],
)
def test_elements_outside_the_profile_are_dropped(key: CaseKey, keyword: str) -> None:
    ds = _ct()
    value = "1441-07-15" if "Calendar" in keyword else f"for {NAME} ward 7"
    setattr(ds, keyword, value)
    ds = assert_clean(_run(_bytes(ds), key), NAME, "1441-07-15")
    assert ds is not None and keyword not in ds


def test_code_meaning_and_sequences_not_on_the_list_are_dropped(key: CaseKey) -> None:
    ds = _ct()
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "T-A0100", "SRT", f"Brain of {NAME}"
    ds.AnatomicRegionSequence = [item]
    ds.ProcedureCodeSequence = [item]
    assert_clean(_run(_bytes(ds), key), NAME)


def test_text_after_a_nul_inside_a_kept_value(key: CaseKey) -> None:
    ds = _ct()
    ds.SeriesDescription = f"AX T2\x00{NAME}"
    ds.BodyPartExamined = f"HEAD\x00{NAME.upper()}"
    assert_clean(_run(_bytes(ds), key), NAME)


def test_unknown_public_tag_read_as_un_holding_a_patient_name(key: CaseKey) -> None:
    ds = _ct()
    inner = Dataset()
    inner.PatientName = f"{NAME}^Zebedee"
    fp = pydicom.filebase.DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    pydicom.filewriter.write_dataset(fp, inner)
    item = struct.pack("<HHL", 0xFFFE, 0xE000, len(fp.getvalue())) + fp.getvalue()
    ds.add_new(0x00431F01 & 0xFFFEFFFF | 0x00020000, "UN", item)  # (0041,1F01)-style even group: (0043,...)
    ds.add_new(0x00771001 - 0x00010000, "UN", item)  # (0076,1001): public, unknown to the dictionary
    assert_clean(_run(_bytes(ds), key), NAME, "Zebedee")


# --- 2. non-ASCII identifiers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "name", "description"),
    [
        ("ISO_IR 192", "Müller^Jürgen", "CT Kopf MÜLLER"),
        ("ISO_IR 100", "Müller^Jürgen", "MÜLLER Jürgen CT"),
        ("ISO_IR 144", "Иванов^Иван", "КТ ИВАНОВ"),
        ("ISO_IR 192", "Иванов^Иван", "ИВАНОВ head"),
        (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎", "山田 CT"),
        (["", "ISO 2022 IR 149"], "Hong^Gildong=洪^吉洞", "洪吉洞 CT"),
        ("GB18030", "Wang^Xiaodong=王^小东", "王小东 CT"),
    ],
)
def test_non_ascii_names(key: CaseKey, charset: object, name: str, description: str) -> None:
    ds = _ct()
    ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.StudyDescription = description
    ds.SeriesDescription = description
    ds.ReferringPhysicianName = name
    parts = [p for p in name.replace("=", "^").split("^") if p]
    out = assert_clean(_run(_bytes(ds), key), *parts)
    assert out is not None
    assert "SpecificCharacterSet" not in out  # the output is plain ASCII


# --- 3. descriptors that looked clean ------------------------------------------------------------


@pytest.mark.parametrize(
    "description",
    [
        "CT head for Dr Jones",
        "JONES, MARYBETH chest",
        "MUELLER abdomen",
        "Smith-Jones pelvis",
        "head 12.03.2019",
        "head 03/12/2019",
        "head 12-MAR-2019",
        "head 2019/03/12",
    ],
)
def test_descriptors_are_rebuilt_from_the_vocabulary(key: CaseKey, description: str) -> None:
    ds = _ct()
    ds.PatientName = "Müller^Marybeth"
    ds.StudyDescription = description
    ds.SeriesDescription = description
    ds.ProtocolName = description
    out = assert_clean(_run(_bytes(ds), key), "Jones", "Marybeth", "Mueller", "Smith", "2019", *date_forms(2019, 3, 12))
    assert out is not None
    for kw in ("StudyDescription", "SeriesDescription", "ProtocolName"):
        kept = str(out.get(kw, ""))
        assert all(w.lower() in ("ct", "head", "chest", "abdomen", "pelvis", "for") for w in kept.split()), kept


# --- 4. metadata inside pixel data ----------------------------------------------------------------


def _jpeg_frame(extra_app: bytes, comment: bytes, trailer: bytes) -> tuple[bytes, np.ndarray]:
    arr = (np.arange(128 * 128, dtype=np.uint32).reshape(128, 128) % 251).astype(np.uint8)
    buf = BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    jpeg = buf.getvalue()
    app = b"\xff\xe1" + struct.pack(">H", len(extra_app) + 2) + extra_app
    com = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return jpeg[:2] + app + com + jpeg[2:] + trailer, arr


def _encapsulated(frame: bytes, ts: str, shape: tuple[int, int]) -> Dataset:
    ds = _ct()
    ds.file_meta.TransferSyntaxUID = ts
    ds.Rows, ds.Columns = shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    for kw in ("RescaleIntercept", "RescaleSlope", "PixelPaddingValue", "WindowCenter", "WindowWidth"):
        if kw in ds:
            delattr(ds, kw)
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    return ds


def test_jpeg_frames_lose_app_com_and_trailing_bytes_losslessly(key: CaseKey) -> None:
    frame, _ = _jpeg_frame(b"Exif\x00\x00" + NAME.encode() + b" XMP", NAME.encode() + b" comment",
                           NAME.encode() + b" after EOI")
    ds = _encapsulated(frame, JPEGBaseline8Bit, (128, 128))
    original = ds.pixel_array.copy()
    result = _run(_bytes(ds), key)
    out = assert_clean(result, NAME)
    assert out is not None and out.file_meta.TransferSyntaxUID == JPEGBaseline8Bit  # not re-encoded
    assert np.array_equal(out.pixel_array, original)  # same entropy-coded data, same pixels
    assert "metadata_segments_removed" in result.info["report"]["pixels"]


def test_jpeg2000_comment_and_trailing_bytes_are_removed(key: CaseKey) -> None:
    arr = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) % 200).astype(np.uint8)
    buf = BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG2000", irreversible=False, no_jp2=True, comment=NAME)
    frame = buf.getvalue() + NAME.encode() * 2
    assert NAME.encode() in frame
    ds = _encapsulated(frame, JPEG2000Lossless, (64, 64))
    out = assert_clean(_run(_bytes(ds), key), NAME)
    assert out is not None and np.array_equal(out.pixel_array, arr)


@pytest.mark.parametrize("boxes", [
    b"\x00\x00\x00\x00ftyp" + b"\x00" * 20,  # a box of length 0 before the codestream box
    b"\x00\x00",  # a length cut short by the end of the frame
])
def test_jp2_header_that_a_decoder_would_walk_for_ever_is_refused_at_once(key: CaseKey, boxes: bytes) -> None:
    # pydicom's JP2 header walk (get_j2k_parameters) never ended on these frames: a fuzzed upload held a worker
    # until its time limit. The guard on the decoder turns them into a quarantine, on both paths.
    frame = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + boxes
    ds = _encapsulated(frame, JPEG2000Lossless, (64, 64))
    # In a child process, so that a walk that does not end fails the test instead of hanging the run.
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(_run, (_bytes(ds), key)).get(timeout=30)
    assert result.status == "quarantined" and result.reasons == ["encapsulated_unverifiable"], result.reasons


def test_bytes_after_the_last_frame_and_bits_above_bits_stored(key: CaseKey) -> None:
    ds = _ct()
    arr = ds.pixel_array.astype(np.int16)
    stored = ds.BitsStored
    # ASCII hidden in the bits above BitsStored of the first pixels, and bytes after the last frame.
    hidden = np.frombuffer(NAME.encode(), dtype=np.uint8).astype(np.int16) << 8
    raw = arr.copy().view(np.uint16)
    raw.flat[: len(hidden)] = (raw.flat[: len(hidden)] & ((1 << stored) - 1)) | (hidden.view(np.uint16) & 0xF000)
    ds.PixelData = raw.tobytes() + (NAME.encode() + b"x" * 4)
    result = _run(_bytes(ds), key)
    out = assert_clean(result, NAME)
    assert out is not None
    data = np.frombuffer(out.PixelData, dtype=np.uint16)
    assert len(out.PixelData) == ds.Rows * ds.Columns * 2
    if ds.PixelRepresentation == 0:
        assert not np.any(data >> stored)
    assert "trailing_pixel_bytes_removed" in result.info["report"]["pixels"]


def test_icc_profile_is_not_carried_over(key: CaseKey) -> None:
    ds = _ct()
    ds.ICCProfile = b"desc" + NAME.encode() * 4
    out = assert_clean(_run(_bytes(ds), key), NAME)
    assert out is not None and "ICCProfile" not in out


# --- 5. burned-in text on every modality, as a viewer shows it -------------------------------------


def _text_ct(modality: str, value_text: int, value_bg: int, hot: int | None = None) -> Dataset:
    ds = _ct()
    img = Image.new("I", (512, 512), value_bg)
    ImageDraw.Draw(img).text((20, 20), "JOHN SMITH 1234567", fill=value_text, font=ImageFont.load_default(size=36))
    arr = np.array(img, dtype=np.int32)
    if hot is not None:
        arr[500, 500] = hot
    ds.Rows, ds.Columns = arr.shape
    ds.Modality = modality
    ds.PixelData = arr.astype(np.int16).tobytes()
    ds.BitsStored, ds.HighBit = 16, 15
    return ds


@pytest.mark.parametrize("modality", ["CT", "XA", "CR", "NM"])
def test_burned_in_text_found_on_every_modality(key: CaseKey, modality: str) -> None:
    ds = _text_ct(modality, 1000, 0)
    result = _run(_bytes(ds), key)
    if result.status == "ready":
        assert result.info["report"]["text_regions_redacted"]
    else:
        assert result.reasons == ["burned_in_text"]


def test_text_hidden_by_min_max_scaling_is_seen_in_the_files_window(key: CaseKey) -> None:
    ds = _text_ct("CT", 60, 40, hot=32000)  # min-max scaling makes 40 vs 60 invisible
    ds.WindowCenter, ds.WindowWidth = 50, 40
    result = _run(_bytes(ds), key)
    assert result.reasons == ["burned_in_text"] or result.info["report"]["text_regions_redacted"]


def test_palette_colour_image_is_read_in_its_colours(key: CaseKey) -> None:
    ds = _ct()
    img = Image.new("L", (512, 256), 10)
    ImageDraw.Draw(img).text((20, 20), "JOHN SMITH 1234567", fill=11, font=ImageFont.load_default(size=36))
    arr = np.asarray(img, dtype=np.uint8).copy()
    arr[0, 0], arr[-1, -1] = 0, 255  # as an index array, 10 and 11 are indistinguishable
    lut = np.zeros(256, np.uint16)
    lut[11] = 65535
    ds.Rows, ds.Columns = arr.shape
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for kw in ("RescaleIntercept", "RescaleSlope", "PixelPaddingValue", "WindowCenter", "WindowWidth"):
        if kw in ds:
            delattr(ds, kw)
    for i in range(3):
        ds.add_new(0x00281101 + i, "US", [256, 0, 16])
        ds.add_new(0x00281201 + i, "OW", lut.tobytes())
    ds.PixelData = arr.tobytes()
    ds["PixelData"].VR = "OB"
    result = _run(_bytes(ds), key)
    assert result.reasons == ["burned_in_text"] or result.info["report"]["text_regions_redacted"]


# --- 6. allow-listed private tags ------------------------------------------------------------------


def test_allow_listed_private_tag_with_a_false_vr_is_dropped(key: CaseKey) -> None:
    ds = _ct()
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    # B_value must be IS; declared FD, its eight bytes are text.
    block.add_new(0x0C, "FD", struct.unpack("<d", NAME.encode()[:8])[0])
    out = assert_clean(_run(_bytes(ds), key), NAME[:8])
    assert out is not None and not any(e.tag.group == 0x0019 for e in out)


def test_allow_listed_private_tag_with_its_vr_is_kept(key: CaseKey) -> None:
    ds = _ct()
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", "1000")
    out = assert_clean(_run(_bytes(ds), key))
    assert out is not None
    assert out[0x0019, 0x100C].value == 1000 if (0x0019, 0x100C) in out else any(e.tag.group == 0x19 for e in out)


# --- transfer syntaxes --------------------------------------------------------------------------------


def test_deflated_input_is_accepted_and_output_is_valid(key: CaseKey) -> None:
    ds = _ct()
    ds.PatientName = f"{NAME}^Zebedee"
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    data = _bytes(ds)
    out = assert_clean(_run(data, key), NAME, "Zebedee")
    assert out is not None
    assert np.array_equal(out.pixel_array, _ct().pixel_array)


def test_table_e1_1_cross_check_nothing_it_removes_is_kept() -> None:
    """Every attribute the basic profile removes, empties or replaces is dropped or rewritten here, except
    what the options written into DeidentificationMethodCodeSequence retain, named one by one."""
    from casebook_anonymiser.deid.allowlist import rules
    from casebook_anonymiser.deid.profile import load_table

    retained_by_option = {
        # 113108 Retain Patient Characteristics
        "PatientWeight": "113108", "PatientSize": "113108",
        # 113106 Retain Longitudinal Temporal Information, Modified Dates: dates move by whole days,
        # so times of day stay as they were.
        "StudyTime": "113106", "SeriesTime": "113106", "AcquisitionTime": "113106", "ContentTime": "113106",
        "RadiopharmaceuticalStartTime": "113106",
    }
    table = load_table()
    rewritten = ("uid", "date", "datetime", "generated", "vocab", "age", "sex", "pixels", "sequence")
    for tag, rule in rules().items():
        action = table.action_for(tag)
        if action is None or action in ("K", "C") or rule.action in rewritten:
            continue
        assert rule.keyword in retained_by_option, (rule.keyword, action, rule.action)


# --- photographs and screenshots (PNG/JPEG exports) --------------------------------------------------


def _photo() -> np.ndarray:
    rng = np.random.default_rng(7)
    base = np.linspace(40, 200, 256 * 256, dtype=np.float32).reshape(256, 256)
    return (base + rng.normal(0, 3, base.shape)).clip(0, 255).astype(np.uint8)


def test_jpeg_export_loses_exif_icc_and_comment_without_re_encoding(key: CaseKey) -> None:
    from PIL import ImageCms

    img = Image.fromarray(_photo()).convert("RGB")
    exif = Image.Exif()
    exif[0x013B] = NAME  # Artist
    exif[0x010E] = f"{NAME} knee"  # ImageDescription
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = BytesIO()
    img.save(buf, format="JPEG", quality=90, exif=exif.tobytes(), icc_profile=icc, comment=NAME.encode())
    data = buf.getvalue() + NAME.encode()
    original = np.asarray(Image.open(BytesIO(data)).convert("RGB"))
    result = _run(data, key)
    assert result.status == "ready", result.reasons
    assert result.data is not None
    for v in _variants(NAME):
        assert v.lower() not in result.data.lower()
    out = Image.open(BytesIO(result.data))
    assert "icc_profile" not in out.info and not out.getexif()
    assert np.array_equal(np.asarray(out.convert("RGB")), original)  # same entropy-coded data
    assert "frames_rebuilt" in result.info["report"]["pixels"]


def test_png_export_loses_text_chunks_and_icc(key: CaseKey) -> None:
    from PIL import ImageCms, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", NAME)
    info.add_itxt("Comment", f"{NAME} ünïcode")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = BytesIO()
    Image.fromarray(_photo()).save(buf, format="PNG", pnginfo=info, icc_profile=icc)
    result = _run(buf.getvalue(), key)
    assert result.status == "ready", result.reasons
    assert result.data is not None and NAME.encode().lower() not in result.data.lower()
    out = Image.open(BytesIO(result.data))
    assert "icc_profile" not in out.info and not out.text  # type: ignore[attr-defined]
    assert np.array_equal(np.asarray(out), _photo())


def test_visible_light_colour_image_gets_a_standard_srgb_profile(key: CaseKey) -> None:
    from pydicom.uid import VLPhotographicImageStorage

    ds = _ct()
    ds.SOPClassUID = VLPhotographicImageStorage
    ds.file_meta.MediaStorageSOPClassUID = VLPhotographicImageStorage
    rgb = np.stack([_photo()] * 3, axis=-1)
    ds.Rows, ds.Columns = rgb.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for kw in ("RescaleIntercept", "RescaleSlope", "PixelPaddingValue", "WindowCenter", "WindowWidth"):
        if kw in ds:
            delattr(ds, kw)
    ds.ICCProfile = b"desc" + NAME.encode() * 4
    ds.PixelData = rgb.tobytes()
    ds["PixelData"].VR = "OB"
    out = assert_clean(_run(_bytes(ds), key), NAME)
    assert out is not None and out.ColorSpace == "SRGB"
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(BytesIO(out.ICCProfile))
    assert "sRGB" in ImageCms.getProfileDescription(profile)


# --- more of the same kind -----------------------------------------------------------------------------


def _text_frame(size: tuple[int, int] = (512, 384), fill: int = 255) -> np.ndarray:
    img = Image.new("L", size, 0)
    ImageDraw.Draw(img).text((16, 16), "JOHN SMITH 1234567", fill=fill, font=ImageFont.load_default(size=32))
    return np.asarray(img, dtype=np.uint8)


def _grey8(ds: Dataset, frames: np.ndarray, photometric: str = "MONOCHROME2") -> Dataset:
    ds.Rows, ds.Columns = frames.shape[-2:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PhotometricInterpretation = photometric
    for kw in ("RescaleIntercept", "RescaleSlope", "PixelPaddingValue", "WindowCenter", "WindowWidth"):
        if kw in ds:
            delattr(ds, kw)
    if frames.ndim == 3:
        ds.NumberOfFrames = frames.shape[0]
    ds.PixelData = frames.tobytes()
    ds["PixelData"].VR = "OB"
    return ds


def test_text_on_one_frame_of_a_cine_is_redacted_on_every_frame(key: CaseKey) -> None:
    frames = np.zeros((5, 384, 512), np.uint8)
    frames[3] = _text_frame()
    ds = _grey8(_ct(), frames)
    ds.Modality = "XA"
    result = _run(_bytes(ds), key)
    assert result.reasons == ["burned_in_text"] or result.info["report"]["text_regions_redacted"]
    out = assert_clean(result)
    if out is not None:
        assert out.pixel_array.shape == (5, 384, 512) and not out.pixel_array[:, 16:48, 16:400].any()


def test_monochrome1_text_is_seen_as_displayed(key: CaseKey) -> None:
    ds = _grey8(_ct(), 255 - _text_frame(), "MONOCHROME1")  # shown as white text on black
    result = _run(_bytes(ds), key)
    assert result.reasons == ["burned_in_text"] or result.info["report"]["text_regions_redacted"]


def test_text_in_a_jpeg_frame_is_redacted_and_stored_lossless(key: CaseKey) -> None:
    rgb = np.stack([_text_frame()] * 3, axis=-1)
    buf = BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    ds = _encapsulated(buf.getvalue(), JPEGBaseline8Bit, (384, 512))
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.Modality = "US"
    result = _run(_bytes(ds), key)
    assert result.reasons == ["burned_in_text"] or result.info["report"]["text_regions_redacted"]
    out = assert_clean(result)
    if out is not None:
        assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and out.PhotometricInterpretation == "RGB"


def test_names_inside_kept_sequences_are_dropped(key: CaseKey) -> None:
    ds = _ct()
    item = Dataset()
    item.PixelSpacing = [0.5, 0.5]
    item.PersonName = f"{NAME}^Zebedee"
    item.add_new(0x00091001, "LO", NAME)  # private, no creator
    ds.SharedFunctionalGroupsSequence = [Dataset()]
    ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence = [item]
    out = assert_clean(_run(_bytes(ds), key), NAME, "Zebedee")
    assert out is not None
    kept = out.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in kept.PixelSpacing] == [0.5, 0.5] and "PersonName" not in kept


@pytest.mark.parametrize(("surname", "description"), [("White", "MRI brain white matter for Mr White"),
                                                       ("Long", "CT LONG bone"), ("Head", "CT HEAD")])
def test_a_surname_that_is_also_an_imaging_word_does_not_stay(key: CaseKey, surname: str, description: str) -> None:
    ds = _ct()
    ds.PatientName = f"{surname}^Zebedee"
    ds.StudyDescription = description
    ds.SeriesDescription = description
    ds.BodyPartExamined = surname.upper()
    out = assert_clean(_run(_bytes(ds), key), "Zebedee")
    assert out is not None
    for kw in ("StudyDescription", "SeriesDescription", "BodyPartExamined"):
        assert surname.lower() not in str(out.get(kw, "")).lower().split(), kw


def test_a_blank_image_is_flagged_for_the_editors(key: CaseKey) -> None:
    ds = _grey8(_ct(), np.full((256, 256), 37, np.uint8))
    result = _run(_bytes(ds), key)
    assert result.status == "ready" and "near_uniform" in result.info["flags"]
    assert "near_uniform" not in _run(_bytes(_ct()), key).info["flags"]


def test_a_sop_class_uid_that_is_not_a_uid_is_refused(key: CaseKey) -> None:
    data = _bytes(_ct())
    uid = str(_ct().SOPClassUID).encode()
    broken = data.replace(uid, uid[:-1] + "é".encode("latin-1"))
    result = _run(broken, key)
    assert result.status == "quarantined" and result.reasons == ["invalid_dicom"]
