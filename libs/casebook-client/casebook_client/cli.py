"""`casebook upload` and `casebook export`, the contributor's subcommands of the `casebook` command.

Exit codes: 0 done; 1 an export failed or an unexpected answer; 2 usage; 3 some files quarantined (here or
on the server) or unreadable; 4 the token was refused (401) or the action is not the caller's (403); 5 a limit
or conflict (409); 6 the server refused a file or the request (413/415/422); 7 the server could not be reached
(run the same command again: it resumes); 8 no such case or export (404); 130 interrupted (run it again).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from casebook_client import export, upload
from casebook_client.api import Api, ApiError, NetworkError
from casebook_client.sources import SourceError
from casebook_client.ui import Ui

DEFAULT_URL = "http://127.0.0.1:8080"

_HINTS = {
    "unauthenticated": "pass --token or set CASEBOOK_TOKEN (`make token USER=... ROLES=contributor` prints one)",
    "not_owner": "the case is not yours",
    "role_required": "your token lacks the role this needs (a presentation needs `supporter`)",
    "draft_limit_reached": "you hold 10 drafts already: publish or delete one, or pass --case ID",
    "unlisted_limit_reached": "you hold 10 unlisted cases already",
    "study_limit_reached": "a case holds at most 50 studies",
    "upload_too_large": "the file is larger than the server accepts",
    "unsupported_media": "send DICOM, a zip of DICOM, or JPEG/PNG",
}


def exit_code(exc: ApiError) -> int:
    if exc.status in (401, 403):
        return upload.EXIT_AUTH
    if exc.status == 404:
        return upload.EXIT_NOT_FOUND
    if exc.status == 409:
        return upload.EXIT_CONFLICT
    if exc.status in (413, 415, 422):
        return upload.EXIT_REFUSED
    return upload.EXIT_ERROR


def _connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("CASEBOOK_URL", DEFAULT_URL),
                   help=f"the server's base URL (CASEBOOK_URL; default {DEFAULT_URL})")
    p.add_argument("--token", default=os.environ.get("CASEBOOK_TOKEN"), help="bearer token (CASEBOOK_TOKEN)")
    p.add_argument("--quiet", action="store_true", help="no progress bars, only one line per outcome")


def add_parsers(sub: Any) -> None:
    """Add `upload` and `export` to the `casebook` command's subparsers."""
    up = sub.add_parser("upload", help="de-identify a folder, a zip or a PACS study here, then upload it to a case",
                        description=upload.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("path", nargs="?", help="a folder (recursive) or a zip of DICOM files or JPEG/PNG exports")
    up.add_argument("--dicomweb", metavar="URL", help="pull the study from this DICOMweb server (a PACS)")
    up.add_argument("--study", metavar="UID", help="the StudyInstanceUID to pull with --dicomweb")
    up.add_argument("--dicomweb-token", default=os.environ.get("CASEBOOK_DICOMWEB_TOKEN"), metavar="TOKEN",
                    help="bearer token for the DICOMweb server, if it asks for one (CASEBOOK_DICOMWEB_TOKEN)")
    up.add_argument("--case", metavar="ID", help="add to this case (default: create one)")
    up.add_argument("--title", default="Untitled case", help="title of the case created")
    up.add_argument("--wait", action="store_true", help="wait until the server has processed every image")
    up.add_argument("--wait-timeout", type=float, default=600, metavar="S")
    up.add_argument("--state", type=Path, help="the state file (default: under ~/.cache/casebook/uploads)")
    up.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                    help="processes de-identifying in parallel")
    up.add_argument("--image-modality", default="OT", help="modality of the study JPEG/PNG exports go to")
    _connection(up)
    up.set_defaults(func=_upload)

    ex = sub.add_parser("export", help="request or follow an export and download it")
    ex.add_argument("id", nargs="?", help="the export's id")
    ex.add_argument("--case", metavar="ID", help="request an export of this case")
    ex.add_argument("--kind", choices=("originals", "presentation"), default="originals")
    ex.add_argument("--wait", action="store_true", help="follow its progress, then download it")
    ex.add_argument("--out", type=Path, help="where to save the download (default: its own file name)")
    ex.add_argument("--timeout", type=float, default=1800, metavar="S")
    _connection(ex)
    ex.set_defaults(func=_export)


def _upload(args: argparse.Namespace, api: Api, ui: Ui) -> int:
    if bool(args.path) == bool(args.dicomweb):
        raise upload.UsageError("name a folder or a zip, or pass --dicomweb URL --study UID (one of them)")
    if args.workers < 1:
        raise upload.UsageError("--workers must be at least 1")
    opts = upload.Options(path=args.path, dicomweb=args.dicomweb, study=args.study,
                          dicomweb_token=args.dicomweb_token, case=args.case,
                          title=args.title, wait=args.wait, wait_timeout=args.wait_timeout, state_path=args.state,
                          workers=args.workers, image_modality=args.image_modality)
    return upload.run(api, opts, ui)


def _export(args: argparse.Namespace, api: Api, ui: Ui) -> int:
    if bool(args.id) == bool(args.case):
        raise upload.UsageError("name an export id, or pass --case ID [--kind ...] to request one")
    return export.run(api, ui, export_id=args.id, case_id=args.case, kind=args.kind, wait=args.wait,
                      out=args.out, timeout=args.timeout)


def run(args: argparse.Namespace) -> int:
    """Run a parsed `upload` or `export` command; every failure becomes a message and an exit code."""
    def fail(code: int, message: str) -> int:
        print(f"casebook {args.command}: {message}", file=sys.stderr)
        return code

    try:
        with Api(args.url, args.token) as api, Ui(quiet=args.quiet) as ui:
            return int(args.func(args, api, ui))
    except ApiError as exc:
        hint = _HINTS.get(exc.code)
        return fail(exit_code(exc), f"{exc.status} {exc.code}: {exc.message}" + (f" ({hint})" if hint else ""))
    except NetworkError as exc:
        return fail(upload.EXIT_NETWORK, f"cannot reach {args.url}: {exc}; what was sent is recorded, "
                                         "run the same command again to resume")
    except (SourceError, upload.UsageError) as exc:
        return fail(upload.EXIT_USAGE, str(exc))
    except ValueError as exc:  # an unreadable state file
        return fail(upload.EXIT_USAGE, str(exc))
    except KeyboardInterrupt:
        return fail(upload.EXIT_INTERRUPTED, "interrupted; what was sent is recorded, run the same command "
                                             "again to resume")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="casebook", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_parsers(ap.add_subparsers(dest="command", required=True))
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
