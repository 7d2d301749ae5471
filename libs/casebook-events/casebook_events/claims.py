"""Claim checks: bulk an event would carry is stored as an object, and the event names it (key, SHA-256, size).

`export.requested` v2 is the one event written this way: the gateway stores the `ExportManifest` in the
exports bucket under `manifests/<export_id>.json`; the export service reads it back, verifying its size and
digest, and deletes it when the export is done with (ready, failed, or its case deleted).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydantic import ValidationError

from casebook_events.events import ExportManifest

MANIFEST_PREFIX = "manifests/"
MANIFEST_CONTENT_TYPE = "application/json"
# A manifest is a playlist's worth of case text and image keys: bounded by the gateway's limits (500 cases),
# far below this; anything larger is refused rather than read into memory.
MAX_MANIFEST_BYTES = 512 * 1024 * 1024


class ClaimMismatch(ValueError):
    """A stored object is not the one the event names (size, digest or content); retrying will not help."""


@dataclass(frozen=True)
class Claim:
    """What an event says of its stored object."""

    key: str
    sha256: str
    size: int


def manifest_key(export_id: str) -> str:
    """Where the manifest of an export is stored in the exports bucket."""
    return f"{MANIFEST_PREFIX}{export_id}.json"


def export_id_of(key: str) -> str | None:
    """The export id of a manifest key, or None when `key` is not one."""
    if not key.startswith(MANIFEST_PREFIX) or not key.endswith(".json"):
        return None
    return key[len(MANIFEST_PREFIX):-len(".json")] or None


def encode_manifest(manifest: ExportManifest) -> tuple[bytes, Claim]:
    """The manifest's bytes and the claim an event carries for them."""
    data = manifest.model_dump_json().encode()
    return data, Claim(key=manifest_key(manifest.export_id), sha256=hashlib.sha256(data).hexdigest(),
                       size=len(data))


def decode_manifest(data: bytes, claim: Claim, *, export_id: str) -> ExportManifest:
    """The manifest in `data`, checked against its claim and its export.

    Raises:
        ClaimMismatch: wrong size or digest, not a manifest, or the manifest of another export.
    """
    if len(data) != claim.size:
        raise ClaimMismatch(f"manifest {claim.key} has {len(data)} bytes, the event says {claim.size}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != claim.sha256:
        raise ClaimMismatch(f"manifest {claim.key} has SHA-256 {digest}, the event says {claim.sha256}")
    try:
        manifest = ExportManifest.model_validate_json(data)
    except ValidationError as exc:
        raise ClaimMismatch(f"manifest {claim.key} is not a valid manifest: {exc.error_count()} errors") from exc
    if manifest.export_id != export_id:
        raise ClaimMismatch(f"manifest {claim.key} belongs to export {manifest.export_id}, not {export_id}")
    return manifest
