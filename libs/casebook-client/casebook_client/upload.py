"""`casebook upload`: de-identify every file on this machine, then send it to a case through the v1 API.

The de-identification is the anonymiser's own core (`casebook_anonymiser.deid`, the code the server runs),
keyed by a secret kept in the upload state: a file it quarantines is reported and never sent. Each ready
file goes to the case's study for its (de-identified) StudyInstanceUID, created with its modality; JPEG and
PNG exports share one study. Files go one at a time and each answer is recorded in the state before the
next is sent, so an interrupted upload resumes where it stopped and sends no file twice (state.py).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casebook_anonymiser.cli import output_name
from casebook_anonymiser.deid import CaseKey, DeidResult, deidentify_bytes
from casebook_anonymiser.deid.result import PROCESSING_ERROR, quarantined
from casebook_client import state as st
from casebook_client.api import Api, ApiError, NetworkError
from casebook_client.sources import Item, SourceError, open_source
from casebook_client.ui import Ui

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_QUARANTINED = 3
EXIT_AUTH = 4
EXIT_CONFLICT = 5
EXIT_REFUSED = 6
EXIT_NETWORK = 7
EXIT_NOT_FOUND = 8
EXIT_INTERRUPTED = 130

KEY_ID = "contributor"
IMAGES_STUDY = "images"  # the study JPEG/PNG exports share (they carry no StudyInstanceUID)
TERMINAL = frozenset({"ready", "quarantined"})
FILE_REFUSALS = frozenset({413, 415, 422})  # the server refused this file; the others may still go
_MODALITY = re.compile(r"^[A-Za-z0-9]{1,16}$")


class UsageError(Exception):
    """The command cannot run as given (conflicting case, unreadable state)."""


@dataclass
class Options:
    path: str | None = None
    dicomweb: str | None = None
    dicomweb_token: str | None = None
    study: str | None = None
    case: str | None = None
    title: str = "Untitled case"
    wait: bool = False
    wait_timeout: float = 600
    state_path: Path | None = None
    workers: int = 1
    ocr: bool = True
    image_modality: str = "OT"
    settle_delay: float = 2.0  # how long a lost answer's request may still be finishing on the server


def _init_worker() -> None:
    os.environ["CASEBOOK_OCR_THREADS"] = "1"  # one ONNX thread per worker: the pool already uses the cores
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle (state, message)


def _deidentify(data: bytes, key: CaseKey, ocr: bool) -> DeidResult:
    return deidentify_bytes(data, key=key, ocr=ocr)


class Upload:
    """One run of `casebook upload` against one state file."""

    def __init__(self, api: Api, opts: Options, ui: Ui) -> None:
        self.api, self.opts, self.ui = api, opts, ui
        source_id, self.items = open_source(opts.path, opts.dicomweb, opts.study, opts.dicomweb_token)
        self.path = opts.state_path or st.default_path(source_id, api.base_url)
        try:
            self._lock = st.lock(self.path)
        except st.Busy as exc:
            raise UsageError(str(exc)) from exc
        try:
            self._setup(opts, source_id)
        except BaseException:
            self.close()
            raise

    def _setup(self, opts: Options, source_id: str) -> None:
        api = self.api
        loaded = st.load(self.path)
        if loaded is not None and loaded.server != api.base_url:
            raise UsageError(f"{self.path} records an upload to {loaded.server}, not {api.base_url}")
        self.state = loaded or st.UploadState.new(source_id, api.base_url)
        if opts.case and self.state.case_id and opts.case != self.state.case_id:
            raise UsageError(f"this source was uploaded to case {self.state.case_id} (state {self.path}); "
                             f"pass --case {self.state.case_id}, or remove the state file to start over")
        self.key = CaseKey(secret=bytes.fromhex(self.state.secret), key_id=KEY_ID, case_id=self.state.local_id)
        self.names: dict[str, str] = {}  # digest -> the name shown here (never stored or sent)
        self.server_outcomes: dict[str, dict[str, Any]] | None = None  # image id -> its final state (--wait)
        self.unreadable = 0
        self.save()  # the key is fixed before anything is derived from it

    def save(self) -> None:
        st.save(self.state, self.path)

    def close(self) -> None:
        self._lock.close()

    # -- the run --------------------------------------------------------------------------------------------

    def run(self) -> int:
        resumed = bool(self.state.files)
        self.ui.line(f"{'resuming' if resumed else 'uploading'} {len(self.items)} file(s); state {self.path}")
        self.resume()
        self.ui.overall("files", len(self.items))
        for item, digest, result in self._deidentified():
            self.names[digest] = item.name
            if result is not None:
                self.handle(item, digest, result)
            elif digest:
                self.ui.line(f"already {self.state.files[digest].status} {item.name}")
            self.ui.advance()
        if self.opts.wait and self.state.case_id:
            self.wait()
        return self.summary()

    def resume(self) -> None:
        """Settle what an interrupted run left open: a study or a file whose answer was not recorded."""
        cid = self.state.case_id
        if cid is None:
            return
        try:
            self.api.case(cid)
        except ApiError as exc:
            if exc.status == 404:
                raise UsageError(f"case {cid}, recorded in {self.path}, is gone (deleted?); remove the state "
                                 "file to upload this source again") from exc
            raise
        if self.state.pending_study is not None:
            st.settle_pending_study(self.state, list(self.api.case(cid).get("studies", [])))
            self.save()
        if self.state.pending is not None:
            self._settle(cid)

    def _settle(self, cid: str) -> bool:
        """Whether the pending file reached the server (then recorded as sent); pending is cleared."""
        pending = self.state.pending
        adopted = st.settle_pending(self.state, self.api.images(cid))
        if adopted is None and pending is not None and self.opts.settle_delay > 0:
            time.sleep(self.opts.settle_delay)  # the lost request may still be finishing on the server
            self.state.pending = pending
            adopted = st.settle_pending(self.state, self.api.images(cid))
        self.save()
        if adopted is not None and pending is not None:
            self.ui.line(f"found on the server {self.names.get(pending.digest, pending.digest)} "
                         f"-> {', '.join(adopted)}")
        return adopted is not None

    def _deidentified(self) -> Iterator[tuple[Item, str, DeidResult | None]]:
        """Each item with its digest and de-identified result (None: already done), in order.

        A file that cannot be read yields the digest "" and no result (reported, not recorded: a rerun
        tries it again).
        """
        if self.opts.workers <= 1:
            for item in self.items:
                digest, data = self._read(item)
                if data is None:
                    yield item, digest, None
                    continue
                self.ui.file(f"de-identifying {item.name}")
                yield item, digest, _deidentify(data, self.key, self.opts.ocr)
            return
        window: deque[tuple[Item, str, Future[DeidResult] | None]] = deque()
        pool = ProcessPoolExecutor(max_workers=self.opts.workers, initializer=_init_worker)

        def submit(item: Item) -> None:
            digest, data = self._read(item)
            window.append((item, digest, None if data is None else
                           pool.submit(_deidentify, data, self.key, self.opts.ocr)))

        try:
            todo = iter(self.items)
            for item in todo:
                submit(item)
                if len(window) >= 2 * self.opts.workers:
                    break
            while window:
                item, digest, fut = window.popleft()
                result = None
                if fut is not None:
                    self.ui.file(f"de-identifying {item.name}")
                    try:
                        result = fut.result()
                    except Exception:  # noqa: BLE001 - a worker that died must not hide a file: it is quarantined
                        result = quarantined(PROCESSING_ERROR, "application/octet-stream")
                yield item, digest, result
                nxt = next(todo, None)
                if nxt is not None:
                    submit(nxt)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _read(self, item: Item) -> tuple[str, bytes | None]:
        if item.key is not None and item.key in self.state.files:
            return item.key, None  # known without reading (a PACS instance already sent)
        try:
            data = item.read()
        except (OSError, SourceError) as exc:
            self.unreadable += 1
            self.ui.line(f"unreadable, not sent {item.name}: {exc}")
            return "", None
        digest = item.key_of(data)
        return digest, None if digest in self.state.files else data

    # -- one file -------------------------------------------------------------------------------------------

    def handle(self, item: Item, digest: str, result: DeidResult) -> None:
        if result.status != "ready" or result.data is None:
            self.state.files[digest] = st.FileRecord("quarantined", reasons=list(result.reasons))
            self.save()
            self.ui.file_done()
            self.ui.line(f"quarantined here, not sent {item.name}: {', '.join(result.reasons)}")
            return
        study_key, modality = self._study_of(result)
        study = self.ensure_study(study_key, modality)
        assert self.state.case_id is not None
        filename = output_name(result, self.key).rsplit("/", 1)[-1]  # built from de-identified values only
        self.state.pending = st.Pending(digest=digest, study=study_key)
        self.save()
        answer = self._send(self.state.case_id, study_key, study.id, result, filename, digest)
        self.ui.file_done()
        if answer is None:  # it had arrived: recorded by _settle
            return
        images = [str(i["id"]) for i in answer.get("images", [])]
        refused = [f"{r.get('code')}: {r.get('message', '')}" for r in answer.get("rejected", [])]
        record = st.FileRecord("sent" if images else "refused", study=study_key, images=images, reasons=refused)
        self.state.files[digest] = record
        self.state.pending = None
        self.save()
        if images:
            self.ui.line(f"sent {item.name} -> {', '.join(images)}")
        else:
            self.ui.line(f"refused by the server {item.name}: {'; '.join(refused)}")

    def _send(self, cid: str, study_key: str, sid: str, result: DeidResult, filename: str,
              digest: str) -> dict[str, Any] | None:
        """The server's answer, or None when a lost answer's file turned out to have arrived."""
        assert result.data is not None
        retries = self.api.retries
        for attempt in range(retries + 1):
            self.ui.file(f"uploading {self.names.get(digest, filename)}", total=len(result.data))
            try:
                return self.api.upload(cid, sid, result.data, filename, result.media_type, sent=self.ui.sent)
            except NetworkError:
                if attempt >= retries:
                    raise
            except ApiError as exc:
                if exc.status in FILE_REFUSALS:
                    return {"images": [], "rejected": [{"code": exc.code, "message": exc.message}]}
                raise
            time.sleep(self.api.backoff * 2**attempt)
            if self._settle(cid):
                return None
            self.state.pending = st.Pending(digest=digest, study=study_key)  # not there: send it again
            self.save()
        raise AssertionError("unreachable")

    def _study_of(self, result: DeidResult) -> tuple[str, str]:
        if result.media_type != "application/dicom":
            return IMAGES_STUDY, self.opts.image_modality
        modality = str(result.info.get("modality") or "OT")
        return str(result.info.get("study_uid") or "no-study-uid"), modality if _MODALITY.match(modality) else "OT"

    # -- the case and its studies ---------------------------------------------------------------------------

    def ensure_case(self) -> str:
        if self.state.case_id is None:
            if self.opts.case:
                self.api.case(self.opts.case)  # 404 when it is not there or not the caller's to see
                self.state.case_id = self.opts.case
            else:
                self.state.case_id = str(self.api.create_case({"title": self.opts.title})["id"])
                self.ui.line(f"created case {self.state.case_id}")
            self.save()
        return self.state.case_id

    def ensure_study(self, key: str, modality: str) -> st.StudyRecord:
        if key in self.state.studies:
            return self.state.studies[key]
        cid = self.ensure_case()
        for attempt in range(self.api.retries + 1):
            existing = list(self.api.case(cid).get("studies", []))
            position = max((int(s.get("position", 0)) for s in existing), default=0) + 1
            self.state.pending_study = st.PendingStudy(key=key, modality=modality, position=position)
            self.save()
            try:
                made = self.api.create_study(cid, modality, position)
            except NetworkError:
                if attempt >= self.api.retries:
                    raise
                time.sleep(self.api.backoff * 2**attempt)
                found = st.settle_pending_study(self.state, list(self.api.case(cid).get("studies", [])))
                self.save()
                if found is not None:
                    return found
                continue
            record = st.StudyRecord(id=str(made["id"]), modality=modality, position=position)
            self.state.studies[key] = record
            self.state.pending_study = None
            self.save()
            self.ui.line(f"created study {record.id} ({modality})")
            return record
        raise AssertionError("unreachable")

    # -- after the uploads ----------------------------------------------------------------------------------

    def wait(self) -> None:
        """Poll the case's images until every image sent from this source is ready or quarantined."""
        assert self.state.case_id is not None
        ours = {i: d for d, f in self.state.files.items() if f.status == "sent" for i in f.images}
        if not ours:
            return
        self.ui.overall("processing on the server", len(ours), unit="images")
        deadline = time.monotonic() + self.opts.wait_timeout
        done: dict[str, dict[str, Any]] = {}
        while True:
            for im in self.api.images(self.state.case_id):
                if im["id"] in ours and im["id"] not in done and im.get("status") in TERMINAL:
                    done[im["id"]] = im
                    self.ui.advance()
            if len(done) == len(ours) or time.monotonic() > deadline:
                break
            time.sleep(1)
        self.server_outcomes = done
        for image_id, digest in ours.items():
            name = self.names.get(digest, digest)
            found = done.get(image_id)
            if found is None:
                self.ui.line(f"still processing {name} ({image_id})")
            elif found["status"] == "ready":
                self.ui.line(f"ready {name} ({image_id})")
            else:
                reasons = ", ".join(found.get("reasons", []))
                self.ui.line(f"quarantined on the server {name} ({image_id}): {reasons}")

    def summary(self) -> int:
        files = self.state.files
        sent = sum(1 for f in files.values() if f.status == "sent")
        here = sum(1 for f in files.values() if f.status == "quarantined")
        refused = sum(1 for f in files.values() if f.status == "refused")
        line = f"case {self.state.case_id or '(none created)'}: {sent} sent, {here} quarantined here, {refused} refused"
        if self.unreadable:
            line += f", {self.unreadable} unreadable"
        bad_there = 0
        if self.server_outcomes is not None:
            ready = sum(1 for i in self.server_outcomes.values() if i["status"] == "ready")
            bad_there = sum(1 for i in self.server_outcomes.values() if i["status"] == "quarantined")
            line += f"; on the server {ready} ready, {bad_there} quarantined"
        self.ui.line(line)
        if refused:
            return EXIT_REFUSED
        if here or bad_there or self.unreadable:
            return EXIT_QUARANTINED
        return EXIT_OK


def run(api: Api, opts: Options, ui: Ui) -> int:
    """Raises ApiError, NetworkError, SourceError, UsageError (the CLI turns them into exit codes)."""
    u = Upload(api, opts, ui)
    try:
        return u.run()
    finally:
        u.close()
