"""The originals zip and the presentation as streams: content, byte identity, ZIP64, bounded memory."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tracemalloc
import zipfile
from collections.abc import Iterator

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from casebook_export.archive import ArchiveError, build_originals, build_presentation
from casebook_export.model import ExportCase, ExportImage, ExportSeries, ExportStudy

MB = 1024 * 1024
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="alert(1)">"\'&'


class MemorySource:
    """ObjectSource over a dict of bytes."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.closed = 0

    def open(self, object_key: str) -> io.BytesIO:
        source = self

        class Stream(io.BytesIO):
            def close(self) -> None:
                source.closed += 1
                super().close()

        return Stream(self.objects[object_key])


class SyntheticStream:
    """A deterministic object body of `size` bytes produced on demand, never held whole."""

    def __init__(self, size: int, seed: int) -> None:
        self.left = size
        self.block = hashlib.sha256(str(seed).encode()).digest() * (64 * 1024 // 32)

    def read(self, amt: int | None = None) -> bytes:
        n = min(self.left, amt or self.left, len(self.block))
        self.left -= n
        return self.block[:n]

    def close(self) -> None:
        pass


class SyntheticSource:
    """ObjectSource whose object `key` of a given size is generated, like a huge bucket that costs no RAM."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes

    def open(self, object_key: str) -> SyntheticStream:
        return SyntheticStream(self.sizes[object_key], hash(object_key) & 0xFFFF)


def _dicom(value: int, frames: int = 1, edge: int = 64) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows = ds.Columns = edge
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 1000, 2000
    y, x = np.mgrid[0:edge, 0:edge]
    px = ((x + y + value) % 2000).astype(np.uint16)
    ds.PixelData = np.stack([px] * frames).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _case(images: dict[str, list[ExportImage]], **overrides: object) -> ExportCase:
    series = [ExportSeries(n, desc, imgs) for n, (desc, imgs) in enumerate(images.items(), start=1)]
    fields: dict[str, object] = {
        "case_id": "case-1",
        "title": "Pneumothorax",
        "presentation": "Sudden dyspnoea.",
        "patient_age": 31,
        "patient_sex": "male",
        "systems": ["Chest"],
        "tags": ["lung"],
        "diagnosis": "Left pneumothorax",
        "diagnostic_certainty": "certain",
        "discussion": "Visceral pleural line.",
        "author_name": "Dr B",
        "attribution": "",
        "licence": "",
        "studies": [ExportStudy(1, "CT", "Left apical pneumothorax.", series)],
    }
    fields.update(overrides)
    return ExportCase(**fields)  # type: ignore[arg-type]


def _small_case() -> tuple[ExportCase, MemorySource]:
    objects = {f"case-1/img{i}": _dicom(i * 50) for i in range(3)}
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (40, 30), (10, 200, 10)).save(png, format="PNG")
    objects["case-1/png"] = png.getvalue()
    images = [
        ExportImage(f"img{i}", f"case-1/img{i}", "application/dicom", len(objects[f"case-1/img{i}"])) for i in range(3)
    ]
    photo = [ExportImage("png", "case-1/png", "image/png", len(objects["case-1/png"]))]
    return _case({"axial": images, "photo": photo}), MemorySource(objects)


def test_originals_zip_lists_case_text_and_byte_identical_stored_images() -> None:
    case, source = _small_case()
    calls: list[tuple[int, int]] = []
    data = b"".join(build_originals(case, source=source, progress=lambda d, t: calls.append((d, t))))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == [
            "case.txt",
            "study-1-CT/series-1-axial/0001.dcm",
            "study-1-CT/series-1-axial/0002.dcm",
            "study-1-CT/series-1-axial/0003.dcm",
            "study-1-CT/series-2-photo/0001.png",
        ]
        for i in range(3):
            info = zf.getinfo(f"study-1-CT/series-1-axial/000{i + 1}.dcm")
            assert info.compress_type == zipfile.ZIP_STORED
            assert zf.read(info) == source.objects[f"case-1/img{i}"]
        assert zf.read("study-1-CT/series-2-photo/0001.png") == source.objects["case-1/png"]
        text = zf.read("case.txt").decode("utf-8")
        assert "Pneumothorax" in text and "Left apical pneumothorax." in text
        assert "CC BY-NC-SA 4.0" in text and "Case courtesy of Dr B" in text
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)
    assert source.closed == 4


def test_originals_fail_when_an_object_is_not_the_recorded_size() -> None:
    case, source = _small_case()
    source.objects["case-1/img1"] = source.objects["case-1/img1"][:-10]
    with pytest.raises(ArchiveError, match="img1"):
        b"".join(build_originals(case, source=source))


def test_originals_zip_is_streamed_in_bounded_memory() -> None:
    # ~200 MB of images must not need more than a few MB at any moment.
    sizes = {f"case-1/{i}": 4 * MB + i for i in range(50)}
    images = [ExportImage(str(i), key, "application/dicom", size) for i, (key, size) in enumerate(sizes.items())]
    case = _case({"axial": images})
    total = 0
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        for chunk in build_originals(case, source=SyntheticSource(sizes)):
            total += len(chunk)
            digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 200 * MB
    assert peak < 64 * MB, f"peak {peak / MB:.1f} MB"


@pytest.mark.slow
def test_originals_use_zip64_beyond_4_gib() -> None:
    size = 4 * 1024 * MB + 5
    case = _case({"huge": [ExportImage("big", "case-1/big", "application/dicom", size)]})
    offset = 0
    tail = bytearray()
    for chunk in build_originals(case, source=SyntheticSource({"case-1/big": size})):
        offset += len(chunk)
        tail += chunk
        del tail[: max(0, len(tail) - MB)]
    assert offset > size
    assert b"PK\x06\x06" in tail and b"PK\x06\x07" in tail  # ZIP64 end records
    # zipfile accepts the central directory alone, treating the rest as a prefix.
    with zipfile.ZipFile(io.BytesIO(bytes(tail))) as zf:
        info = zf.getinfo("study-1-CT/series-1-huge/0001.dcm")
        assert info.file_size == size and info.compress_type == zipfile.ZIP_STORED


def _html(cases: list[ExportCase], source: MemorySource) -> str:
    chunks = list(build_presentation(cases, source=source))
    assert len(chunks) > 5  # streamed, not built in one piece
    return b"".join(chunks).decode("utf-8")


def _decks(html: str) -> list[dict]:
    """The case decks a presentation carries as JSON data blocks, their stacks' frames read back from theirs."""
    blocks = dict(re.findall(r'<script type="application/json"[^>]* id="([^"]+)">(.*?)</script>', html, re.S))
    decks = [json.loads(blocks[k]) for k in blocks if k.startswith("case-")]
    for deck in decks:
        for slide in deck["slides"]:
            for stack in slide.get("stacks", []):
                stack["frames"] = json.loads(blocks[stack["frames"]["ref"]])
    return decks


def test_presentation_is_self_contained_with_text_credit_and_frames() -> None:
    case, source = _small_case()
    calls: list[tuple[int, int]] = []
    html = b"".join(build_presentation([case], source=source, progress=lambda d, t: calls.append((d, t)))).decode()
    assert html.startswith("<!DOCTYPE html>") and html.endswith("</html>")
    assert "Pneumothorax" in html and "Left apical pneumothorax." in html and "Visceral pleural line." in html
    assert "CC BY-NC-SA 4.0" in html and "Case courtesy of Dr B" in html
    assert html.count("data:image/jpeg;base64,") == 4
    (deck,) = _decks(html)
    kinds = [slide["kind"] for slide in deck["slides"]]
    assert kinds == ["history", "images", "findings", "diagnosis"]  # the diagnosis last
    (images,) = [slide for slide in deck["slides"] if slide["kind"] == "images"]
    assert [len(stack["frames"]) for stack in images["stacks"]] == [3, 1]
    assert all(f["src"].startswith("data:image/jpeg;base64,") for st in images["stacks"] for f in st["frames"])
    assert "Pneumothorax" not in json.dumps(deck["slides"][:-1])  # the title names the diagnosis
    assert "<title>Unknown case</title>" in html
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    # Nothing may load from the network: no external src/href, no url() in CSS.
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:|//)""", html, re.I)
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html


def test_presentation_escapes_hostile_text_everywhere() -> None:
    case, source = _small_case()
    hostile = _case(
        {"x": []},
        title=HOSTILE,
        presentation=HOSTILE,
        diagnosis=HOSTILE,
        discussion=HOSTILE,
        author_name=HOSTILE,
        systems=[HOSTILE],
        tags=[HOSTILE],
        patient_sex=HOSTILE,
        studies=[ExportStudy(1, HOSTILE, HOSTILE, [ExportSeries(1, HOSTILE, case.studies[0].series[0].images)])],
    )
    html = _html([hostile], source)
    assert "<script>window.pwned" not in html
    assert "<img src=x" not in html
    assert 'onerror="alert' not in html
    assert "\\u003cscript\\u003ewindow.pwned=1\\u003c/script\\u003e" in html
    (deck,) = _decks(html)
    assert deck["slides"][-1]["heading"] == HOSTILE  # carried as data, shown by the viewer as text
    # the viewer's module is the one script that runs; the rest are JSON data blocks
    tags = re.findall(r"<script[^>]*>", html)
    assert tags.count('<script type="module">') == 1
    assert all(t == '<script type="module">' or 'type="application/json"' in t for t in tags)
    assert html.count("</script") == len(tags)


def test_presentation_of_a_playlist_has_navigation_and_every_case() -> None:
    case, source = _small_case()
    second = _case({"axial": list(case.studies[0].series[0].images)}, case_id="case-2", title="Second case")
    html = _html([case, second], source)
    assert 'id="case-1"' in html and 'id="case-2"' in html
    first, second_deck = _decks(html)
    assert first["slides"][0]["kind"] == "history" and second_deck["slides"][-1]["heading"] == "Second case"
    assert "playlistDeck(" in html  # the viewer puts a title slide before each case


def test_presentation_keeps_going_past_an_undecodable_image() -> None:
    case, source = _small_case()
    source.objects["case-1/img1"] = b"garbage"
    html = _html([case], source)
    assert html.count('"note":') == 1
    assert html.count("data:image/jpeg;base64,") == 3


def test_multi_frame_image_becomes_frames_of_one_stack() -> None:
    objects = {"k": _dicom(0, frames=6)}
    case = _case({"cine": [ExportImage("k", "k", "application/dicom", len(objects["k"]))]})
    html = _html([case], MemorySource(objects))
    (deck,) = _decks(html)
    stacks = [stack for slide in deck["slides"] for stack in slide.get("stacks", [])]
    assert [len(stack["frames"]) for stack in stacks] == [6]


def test_presentation_is_streamed_in_bounded_memory() -> None:
    # 60 distinct 1 MB DICOM images: peak memory must not grow with the case.
    objects = {f"k{i}": _dicom(i * 7, edge=724) for i in range(60)}
    images = [ExportImage(k, k, "application/dicom", len(v)) for k, v in objects.items()]
    case = _case({"axial": images})
    source = MemorySource(objects)
    source_bytes = sum(len(v) for v in objects.values())
    total = 0
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for chunk in build_presentation([case], source=source):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert source_bytes > 60 * MB
    assert peak - base < 32 * MB, f"peak {(peak - base) / MB:.1f} MB"
    assert total > 1 * MB


def test_presentation_needs_a_case() -> None:
    with pytest.raises(ValueError):
        list(build_presentation([], source=MemorySource({})))


@pytest.mark.integration
def test_upload_stream_to_seaweedfs_matches_size_and_sha256() -> None:
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    spec = importlib.util.spec_from_file_location("bench_export", root / "benchmarks" / "export.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_export"] = bench
    spec.loader.exec_module(bench)
    from casebook_export.archive import upload_stream

    payload = os.urandom(3 * MB + 17)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 100_000):
            yield payload[i : i + 100_000]

    with bench.seaweedfs() as endpoint:
        client = bench._client(endpoint)
        client.make_bucket("exports")
        result = upload_stream(
            client, "exports", "e1/x.zip", chunks(), part_size=5 * MB, content_type="application/zip"
        )
        assert result.size == len(payload) and result.sha256 == hashlib.sha256(payload).hexdigest()
        big = os.urandom(12 * MB)
        result = upload_stream(client, "exports", "e1/big", iter([big]), part_size=5 * MB)
        stored = client.get_object("exports", "e1/big").read()
        assert stored == big and result.size == len(big)
        assert client.stat_object("exports", "e1/x.zip").content_type == "application/zip"
