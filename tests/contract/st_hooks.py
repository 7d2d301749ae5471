"""Schemathesis hooks for Casebook's contract runs (loaded through `SCHEMATHESIS_HOOKS`).

The built-in `positive_data_acceptance` check is told that 413/415/422 are answers a valid request may
get (a case that is not public, a file that is not DICOM): those are decisions about the resource, not
about the request's shape. What a schema-valid request must never get is the validation refusal
itself, 422 `invalid_request`; this check fails on that.
"""

from __future__ import annotations

import json

import schemathesis
from schemathesis import Case, CheckContext, Response


@schemathesis.check
def valid_request_not_refused_by_validation(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    try:
        code = json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    if code == "invalid_request":
        raise AssertionError(f"a request the schema allows was refused as invalid: {response.text[:300]}")
    return None
