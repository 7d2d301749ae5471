"""Where an upload's files come from: a folder (recursive), a zip, or a study on a PACS over DICOMweb.

Each source yields `Item`s in a stable order. An item's `name` is shown to the contributor only (folder and
file names often carry a patient's name) and never sent; `key` identifies it in the upload state.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_MEMBER_BYTES = 4 << 30  # one zip member read into memory at most (a DICOM file, not an archive bomb)
# The DICOM JSON keys (PS3.18 F.2: the tag as 8 hex digits) of the UIDs a DICOMweb search answers with.
SERIES_INSTANCE_UID = "0020000E"
SOP_INSTANCE_UID = "00080018"


@dataclass(frozen=True)
class Item:
    name: str
    read: Callable[[], bytes]
    key: str | None = None  # known before reading (DICOMweb); otherwise the SHA-256 of the bytes

    def key_of(self, data: bytes) -> str:
        return self.key or "sha256:" + hashlib.sha256(data).hexdigest()


class SourceError(Exception):
    """The source cannot be read (not a folder or zip, unreachable PACS, unknown study)."""


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def folder_items(root: Path) -> list[Item]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(p.relative_to(root).parts))
    return [Item(name=str(p.relative_to(root)), read=p.read_bytes) for p in files]


def zip_items(path: Path) -> list[Item]:
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{path}: not a readable zip ({exc})") from exc
    with z:
        members = [m for m in z.infolist() if not m.is_dir() and not _hidden(tuple(m.filename.split("/")))]

    def reader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
        def read() -> bytes:
            if info.file_size > MAX_MEMBER_BYTES:
                raise SourceError(f"{info.filename}: {info.file_size} bytes is more than one image can be")
            try:
                with zipfile.ZipFile(path) as zz, zz.open(info) as f:
                    return f.read()
            except zipfile.BadZipFile as exc:  # a damaged member (bad CRC, say): this file only
                raise SourceError(f"{info.filename}: {exc}") from exc

        return read

    return [Item(name=m.filename, read=reader(m)) for m in sorted(members, key=lambda m: m.filename)]


def _value(attrs: dict[str, Any], tag: str) -> str:
    values = attrs.get(tag, {}).get("Value") or [""]
    return str(values[0])


def dicomweb_items(url: str, study_uid: str, *, token: str | None = None) -> list[Item]:
    """Every instance of the study, series by series (QIDO-RS), each fetched when its turn comes (WADO-RS).

    `token`: a bearer token for a PACS that asks for one (sent to that server only).
    """
    import requests
    from dicomweb_client.api import DICOMwebClient

    c = DICOMwebClient(url=url, headers={"Authorization": f"Bearer {token}"} if token else None)
    try:
        series = c.search_for_series(study_instance_uid=study_uid)
        instances = [(_value(s, SERIES_INSTANCE_UID), _value(i, SOP_INSTANCE_UID))
                     for s in series
                     for i in c.search_for_instances(study_instance_uid=study_uid,
                                                     series_instance_uid=_value(s, SERIES_INSTANCE_UID))]
    except requests.RequestException as exc:
        raise SourceError(f"{url}: {exc}") from exc
    if not instances:
        raise SourceError(f"{url}: no instances in study {study_uid}")

    def reader(series_uid: str, sop_uid: str) -> Callable[[], bytes]:
        def read() -> bytes:
            from pydicom.filewriter import dcmwrite

            try:
                ds = c.retrieve_instance(study_uid, series_uid, sop_uid)
            except requests.RequestException as exc:
                raise SourceError(f"{url}: {exc}") from exc
            buf = io.BytesIO()
            dcmwrite(buf, ds, enforce_file_format=True)
            return buf.getvalue()

        return read

    def key(series_uid: str, sop_uid: str) -> str:
        ident = f"dicomweb:{study_uid}/{series_uid}/{sop_uid}".encode()
        return "sha256:" + hashlib.sha256(ident).hexdigest()

    return [Item(name=f"{se}/{sop}", read=reader(se, sop), key=key(se, sop)) for se, sop in sorted(instances)]


def open_source(path: str | None, dicomweb: str | None, study: str | None,
                dicomweb_token: str | None = None) -> tuple[str, list[Item]]:
    """(the source's identity for the state file, its items). Raises SourceError."""
    if dicomweb:
        if not study:
            raise SourceError("--dicomweb needs --study UID")
        items = dicomweb_items(dicomweb.rstrip("/"), study, token=dicomweb_token)
        return f"dicomweb:{dicomweb.rstrip('/')}#{study}", items
    if not path:
        raise SourceError("name a folder or a zip, or pass --dicomweb URL --study UID")
    p = Path(path).expanduser().resolve()
    if p.is_dir():
        return f"folder:{p}", folder_items(p)
    if p.is_file() and zipfile.is_zipfile(p):
        return f"zip:{p}", zip_items(p)
    if p.is_file():
        return f"file:{p}", [Item(name=p.name, read=p.read_bytes)]
    raise SourceError(f"{path}: no such folder or zip")
