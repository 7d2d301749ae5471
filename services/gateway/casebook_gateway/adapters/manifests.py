"""Export manifests in the object store: the claim check `export.requested` v2 names (casebook_events.claims)."""

from __future__ import annotations

import logging

from casebook_events import ExportManifest, claims
from casebook_platform.storage import Storage

log = logging.getLogger(__name__)


async def store(storage: Storage, manifest: ExportManifest) -> claims.Claim:
    """Write the manifest to the exports bucket; returns the claim the event carries."""
    data, claim = claims.encode_manifest(manifest)
    await storage.put_bytes(storage.exports, claim.key, data, claims.MANIFEST_CONTENT_TYPE)
    return claim


async def discard(storage: Storage, claim: claims.Claim) -> None:
    """Remove a manifest whose request was not recorded (best effort: the export service sweeps orphans)."""
    try:
        await storage.delete(storage.exports, claim.key)
    except Exception:  # the request already failed; this only tidies up
        log.warning("could not remove manifest %s", claim.key, exc_info=True)
