"""A contributor's folder as it comes off a workstation: real DICOM (pydicom's CT_small and MR_small) and a PNG
export, with patient identifiers planted in headers, sequences, private tags, PNG text and the file names."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
from client import sample_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

SEEDS = {
    "PatientName": "Hartigan^Rosalind^Q", "PatientID": "MRN99887766", "PatientBirthDate": "19610314",
    "InstitutionName": "Saint Brigid Infirmary", "ReferringPhysicianName": "Okonkwo^Bartholomew",
    "AccessionNumber": "ACC5550123", "StudyDescription": "Hartigan follow up",
}
# Every spelling that must never reach the server (the folder and file names carry some of them too).
IDENTIFIERS = [*SEEDS.values(), "Hartigan", "Rosalind", "Okonkwo", "Bartholomew", "MRN99887766", "Brigid",
               "ACME HOSPITAL"]


def seeded_dicom(name: str, instance: int, *, burned_in: bool = False) -> bytes:
    """`name` from pydicom's test files with identifiers planted; each instance its own SOP Instance UID."""
    ds = pydicom.dcmread(io.BytesIO(sample_file(name)))
    for k, v in SEEDS.items():
        setattr(ds, k, v)
    inner = Dataset()
    inner.PersonName = "Hartigan^Rosalind"
    middle = Dataset()
    middle.ContentSequence = Sequence([inner])
    ds.ReferencedStudySequence = Sequence([middle])
    ds.add_new(0x00110010, "LO", "ACME HOSPITAL")
    ds.add_new(0x00111001, "LO", "Hartigan Rosalind")
    ds.InstanceNumber = instance
    ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{instance}"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if burned_in:
        ds.BurnedInAnnotation = "YES"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def seeded_png(seed: int = 0) -> bytes:
    """A plain PNG export whose text chunks name the patient."""
    from PIL import Image, PngImagePlugin

    im = Image.new("L", (64, 64))
    im.putdata([(x * 4 + y * 2 + seed) % 256 for y in range(64) for x in range(64)])
    meta = PngImagePlugin.PngInfo()
    meta.add_text("Comment", "Hartigan Rosalind MRN99887766")
    buf = io.BytesIO()
    im.save(buf, "PNG", pnginfo=meta)
    return buf.getvalue()


def identified_folder(root: Path, *, ct: int = 3, mr: int = 1, png: int = 1, burned_in: int = 0) -> list[Path]:
    """Write the folder under `root` (named after the patient, as workstations do); returns its files."""
    folder = root / "Hartigan_Rosalind_MRN99887766"
    files: list[tuple[str, bytes]] = [(f"CT/Hartigan_{i:04d}.dcm", seeded_dicom("CT_small.dcm", i))
                                      for i in range(1, ct + 1)]
    files += [(f"MR/MRN99887766_{i:04d}.dcm", seeded_dicom("MR_small.dcm", i)) for i in range(1, mr + 1)]
    files += [(f"exports/Rosalind_{i}.png", seeded_png(i)) for i in range(png)]
    files += [(f"CT/burned_{i}.dcm", seeded_dicom("CT_small.dcm", 900 + i, burned_in=True))
              for i in range(burned_in)]
    out = []
    for rel, data in files:
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        out.append(p)
    return out
