"""Featuring's revision rule for leaving the listings: a de-listing never older, a deletion always, once."""

from __future__ import annotations

import pytest

from casebook_featuring.core import delisting_applies


@pytest.mark.parametrize(("known", "deleted", "incoming", "deletion", "applies"), [
    (3, False, 4, False, True),  # a newer de-listing
    (3, False, 3, False, True),  # the same revision (the edit that de-listed the approved revision)
    (5, False, 4, False, False),  # an older de-listing after a newer approval
    (5, False, 0, True, True),  # a deletion carries no revision and always applies
    (5, True, 9, False, False),  # nothing changes a deleted case
    (5, True, 0, True, False),  # not even a second deletion
])
def test_delisting_applies(known: int, deleted: bool, incoming: int, deletion: bool, applies: bool) -> None:
    assert delisting_applies(known, deleted, incoming, deletion=deletion) is applies
