"""Keyset pagination cursors shared by every list endpoint: an opaque token for (time, id)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from casebook_platform.errors import ApiError

CURSOR_PATTERN = r"^[A-Za-z0-9_=-]*$"  # urlsafe base64


def encode_cursor(at: datetime, key: str) -> str:
    """The cursor that continues after the row with timestamp `at` and id `key`."""
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), key]).encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (time, id) a cursor points after; None for no cursor.

    Raises:
        ApiError: 422 `invalid_cursor` for a cursor this API did not return.
    """
    if not cursor:
        return None
    try:
        at, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(key)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ApiError(422, "invalid_cursor", "cursor: not a cursor this API returned") from exc
