"""Build ``casebook_anonymiser/deid/data/ps315_e1_1_basic.json`` from a machine-readable copy of
DICOM PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile column).

Why a generated file: the profile has ~650 rows and changes with every DICOM edition; hand-typed
tag lists drift and cannot be audited.  The table is therefore taken from an existing
machine-readable transcription and only re-shaped here.

Source used for the committed data file:
    PyPI package ``dicom-anonymizer==2.1.0`` (KitwareMedical/dicom-anonymizer, BSD licence),
    file ``dicomanonymizer/dicom_anonymization_databases/dicomfields_2026c.py``
    (DICOM standard edition 2026c, basic profile column).

Usage::

    pip download dicom-anonymizer==2.1.0 --no-deps -d /tmp/da
    python services/anonymiser/scripts/build_profile_table.py /tmp/da/dicom_anonymizer-2.1.0-py3-none-any.whl

The argument may be the wheel or the extracted ``dicomfields_2026c.py``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

MODULE_IN_WHEEL = "dicomanonymizer/dicom_anonymization_databases/dicomfields_2026c.py"
PACKAGE = "dicom-anonymizer"
PACKAGE_VERSION = "2.1.0"
EDITION = "2026c"

# The source groups tags into one Python list per action code of the basic profile column.
LIST_TO_ACTION = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}

_COMMENT_RE = re.compile(r"#\s*(.*?)\s*$")

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "casebook_anonymiser" / "deid" / "data" / "ps315_e1_1_basic.json"


def _read_source(path: Path) -> str:
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as zf:
            return zf.read(MODULE_IN_WHEEL).decode("utf-8")
    return path.read_text(encoding="utf-8")


def build(source: str) -> list[dict[str, str | None]]:
    """Turn the per-action tag lists into rows; the attribute name is the trailing comment.

    ``ast`` gives the tag values (some tuples span several lines); the comment is read from the
    line on which each tuple ends.
    """
    lines = source.splitlines()
    rows: list[dict[str, str | None]] = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.List)):
            continue
        target = node.targets[0]
        name = target.id if isinstance(target, ast.Name) else ""
        if name not in LIST_TO_ACTION:
            continue
        for elt in node.value.elts:
            values = ast.literal_eval(elt)
            if not (isinstance(values, tuple) and len(values) in (2, 4)):
                raise SystemExit(f"unexpected row {values!r} in {name}")
            end_line = lines[(elt.end_lineno or elt.lineno) - 1]
            comment = _COMMENT_RE.search(end_line)
            if comment is None:
                raise SystemExit(f"row {values!r} in {name} has no attribute name comment")
            group, elem = values[0], values[1]
            rows.append(
                {
                    "tag": f"{group:04X}{elem:04X}",
                    "mask": f"{values[2]:04X}{values[3]:04X}" if len(values) == 4 else None,
                    "name": comment.group(1),
                    "action": LIST_TO_ACTION[name],
                }
            )
    keys = [(r["tag"], r["mask"]) for r in rows]
    if len(set(keys)) != len(keys):
        raise SystemExit("duplicate tag in source table")
    rows.sort(key=lambda r: (r["tag"] or "", r["mask"] or ""))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="dicom-anonymizer wheel or dicomfields_2026c.py")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    source = _read_source(args.source)
    rows = build(source)
    doc = {
        "title": "DICOM PS3.15 Table E.1-1, Basic Application Level Confidentiality Profile column",
        "dicom_edition": EDITION,
        "source": {
            "package": PACKAGE,
            "version": PACKAGE_VERSION,
            "file": MODULE_IN_WHEEL,
            "sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
            "licence": "BSD-3-Clause (KitwareMedical/dicom-anonymizer)",
        },
        "generated_by": "services/anonymiser/scripts/build_profile_table.py",
        "notes": (
            "tag is GGGGEEEE hex; mask (if set) selects the bits of tag that must match, used for "
            "repeating groups such as 50xx/60xx. Actions as in PS3.15 E.1-1: D dummy, Z empty, X remove, "
            "U replace UID, combinations pick the least destructive conformant variant."
        ),
        "count": len(rows),
        "entries": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
