"""Licence and attribution of a case, written once: the gateway shows them and every export carries them."""

from __future__ import annotations

LICENCE = "CC BY-NC-SA 4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by-nc-sa/4.0/"
UNNAMED_AUTHOR = "a Casebook contributor"


def attribution(author: str, case_id: str) -> str:
    """The credit line every copy of a case carries (API.md): `Case courtesy of <author>, Casebook, case <id>`.

    An author without a display name is credited as "a Casebook contributor".
    """
    return f"Case courtesy of {author.strip() or UNNAMED_AUTHOR}, Casebook, case {case_id}"


def licence_line(licence: str) -> str:
    """The licence with its deed address when it is Casebook's standard licence; another licence as given."""
    licence = licence.strip() or LICENCE
    return f"{licence} ({LICENCE_URL})" if licence == LICENCE else licence
