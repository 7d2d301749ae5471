"""What an upload has done so far, kept on the contributor's machine so that a rerun resumes it.

One small JSON file per (source, server): the case, a study per de-identified StudyInstanceUID, and per
source file (by the SHA-256 of its bytes) what became of it with the image ids the server returned. It is
rewritten atomically after every acknowledged step, so a killed process leaves the last good version.

A file handed to the server whose answer was never recorded (the process died, the network dropped) is
the `pending` one: uploads go one at a time, so on resume the server's image list tells whether it arrived
(an image of that study that no recorded file owns) or must be sent again. Study creation is made safe the
same way (`pending_study`, found again by its position). File names are not kept: they often hold a
patient's name, and the digests are enough to recognise a file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

VERSION = 1
Outcome = Literal["sent", "quarantined", "refused"]


@dataclass
class FileRecord:
    """One source file: `sent` (the server's image ids), `quarantined` here (never sent), or `refused` by it."""

    status: Outcome
    study: str | None = None
    images: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass
class StudyRecord:
    id: str
    modality: str
    position: int


@dataclass
class Pending:
    """A file sent whose answer is not recorded: its digest and the study it went to."""

    digest: str
    study: str


@dataclass
class PendingStudy:
    key: str
    modality: str
    position: int


@dataclass
class UploadState:
    source: str
    server: str
    secret: str  # hex: the local de-identification key, so a rerun maps UIDs and dates the same way
    local_id: str
    case_id: str | None = None
    studies: dict[str, StudyRecord] = field(default_factory=dict)
    files: dict[str, FileRecord] = field(default_factory=dict)
    pending: Pending | None = None
    pending_study: PendingStudy | None = None

    @classmethod
    def new(cls, source: str, server: str) -> UploadState:
        return cls(source=source, server=server, secret=secrets.token_hex(32), local_id=uuid.uuid4().hex)

    def known_images(self) -> set[str]:
        return {i for f in self.files.values() for i in f.images}

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> UploadState:
        if doc.get("version") != VERSION:
            raise ValueError(f"state file version {doc.get('version')!r} is not {VERSION}")
        pending, pending_study = doc.get("pending"), doc.get("pending_study")
        return cls(
            source=str(doc["source"]), server=str(doc["server"]), secret=str(doc["secret"]),
            local_id=str(doc["local_id"]), case_id=doc.get("case_id"),
            studies={k: StudyRecord(**v) for k, v in doc.get("studies", {}).items()},
            files={k: FileRecord(**v) for k, v in doc.get("files", {}).items()},
            pending=Pending(**pending) if pending else None,
            pending_study=PendingStudy(**pending_study) if pending_study else None,
        )


def default_path(source: str, server: str, cache_dir: Path | None = None) -> Path:
    """`~/.cache/casebook/uploads/<digest of source and server>.json` (`$XDG_CACHE_HOME` respected)."""
    if cache_dir is None:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        cache_dir = Path(base) / "casebook" / "uploads"
    digest = hashlib.sha256(json.dumps([source, server.rstrip("/")]).encode()).hexdigest()[:32]
    return cache_dir / f"{digest}.json"


class Busy(Exception):
    """Another process is uploading from the same state file."""


def lock(path: Path) -> IO[bytes]:
    """Hold `<state>.lock` for as long as the returned file stays open (the OS drops it when a process dies).

    Two uploads of one source at once would each send what the other has not recorded yet. Raises Busy.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    f = open(path.with_name(path.name + ".lock"), "ab")  # noqa: SIM115 - the caller closes it to unlock
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        f.close()
        raise Busy(f"another casebook upload is using {path}") from exc
    return f


def load(path: Path) -> UploadState | None:
    """The saved state, or None when there is none. Raises ValueError for a file that is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return UploadState.from_json(json.loads(text))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not an upload state file: {exc}") from exc


def save(state: UploadState, path: Path) -> None:
    """Write atomically: a temporary file in the same folder, flushed to disk, then renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp's file is private (0600): it holds the key
            json.dump(state.to_json(), f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def settle_pending(state: UploadState, server_images: list[dict[str, Any]]) -> list[str] | None:
    """Resolve the file whose answer was lost, from the case's images on the server.

    Returns the adopted image ids (it arrived: recorded as sent) or None (it did not: send it again);
    clears `pending` either way.
    """
    p = state.pending
    if p is None:
        return None
    state.pending = None
    study = state.studies.get(p.study)
    known = state.known_images()
    arrived = [str(i["id"]) for i in server_images
               if study is not None and i.get("study_id") == study.id and i["id"] not in known]
    if not arrived:
        return None
    state.files[p.digest] = FileRecord("sent", study=p.study, images=arrived)
    return arrived


def settle_pending_study(state: UploadState, server_studies: list[dict[str, Any]]) -> StudyRecord | None:
    """Resolve a study creation whose answer was lost: the case's study at its position that no record owns."""
    p = state.pending_study
    if p is None:
        return None
    state.pending_study = None
    owned = {s.id for s in state.studies.values()}
    for s in server_studies:
        if int(s.get("position", 0)) == p.position and s["id"] not in owned:
            record = StudyRecord(id=str(s["id"]), modality=p.modality, position=p.position)
            state.studies[p.key] = record
            return record
    return None
