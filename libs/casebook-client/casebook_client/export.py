"""`casebook export`: request an export (or name one), follow its progress, download the archive."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from casebook_client.api import Api
from casebook_client.ui import Ui

EXIT_OK = 0
EXIT_FAILED = 1


def _default_name(url: str, export_id: str) -> str:
    name = Path(unquote(urlsplit(url).path)).name
    # The object store names the file `<export id>/<filename>`; keep a plain file name only.
    return name if name and name not in (".", "..") and "/" not in name else f"{export_id}.zip"


def run(api: Api, ui: Ui, *, export_id: str | None, case_id: str | None, kind: str, wait: bool,
        out: Path | None, timeout: float = 1800, poll: float = 1.0) -> int:
    """Raises ApiError and NetworkError (the CLI turns them into exit codes)."""
    if export_id is None:
        assert case_id is not None
        export_id = str(api.request_export(case_id, kind)["id"])
        ui.line(f"requested export {export_id} ({kind}) of case {case_id}")
    doc = api.export(export_id)
    if not wait:
        ui.line(json.dumps(doc))
        return EXIT_OK
    ui.overall(f"export {export_id}", 100, unit="%")
    deadline = time.monotonic() + timeout
    while doc.get("status") not in ("ready", "failed"):
        if time.monotonic() > deadline:
            ui.line(f"export {export_id} still {doc.get('status')} after {timeout:g} s")
            return EXIT_FAILED
        ui.set_overall(100 * float(doc.get("progress") or 0), detail=str(doc.get("status")))
        time.sleep(poll)
        doc = api.export(export_id)
    if doc["status"] == "failed" or not doc.get("download_url"):
        ui.line(f"export {export_id} failed")
        return EXIT_FAILED
    ui.set_overall(100, detail="ready")
    url = str(doc["download_url"])
    target = out or Path(_default_name(url, export_id))
    part = target.with_name(target.name + ".part")
    size = 0
    try:
        with open(part, "wb") as f:
            started = False
            for total, chunk in api.download(url):
                if not started:
                    ui.file(f"downloading {target.name}", total=total)
                    started = True
                f.write(chunk)
                size += len(chunk)
                ui.sent(len(chunk))
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
        ui.file_done()
    ui.line(f"saved {target} ({size} bytes)")
    return EXIT_OK
