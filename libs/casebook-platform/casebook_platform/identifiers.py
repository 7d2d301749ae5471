"""Identifier digests: the anonymiser publishes salted digests of identifying tokens, never the tokens.

Moderation checks case text against them: a digest matches when the same (normalised) token or
run of up to three tokens appears in the text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MIN_TOKEN = 3
MAX_RUN = 3


def normalise(text: str) -> list[str]:
    """Words of `text`, case-folded and without accents, so `Müller` and `MULLER` meet."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return _WORD.findall(folded)


def digest(salt: str, token: str) -> str:
    return hashlib.sha256(f"{salt}\x00{token}".encode()).hexdigest()


def identifier_digests(salt: str, *, names: Iterable[str] = (), whole: Iterable[str] = ()) -> list[str]:
    """Digests of identifying values.

    `names` (person names, IDs) also give one digest per word, so a surname alone is caught; `whole`
    values (institutions, addresses, descriptions) give only their complete run, since their single
    words ("general", "hospital") are ordinary text.
    """
    out: set[str] = set()
    for value in [*names, *whole]:
        words = normalise(value)
        if words and len(words) <= MAX_RUN:
            out.add(digest(salt, " ".join(words)))
    for value in names:
        out.update(digest(salt, w) for w in normalise(value)
                   if (len(w) >= MIN_TOKEN and not w.isdigit()) or len(w) >= 6)
    return sorted(out)


def find_digested(text: str, salt: str, digests: Iterable[str]) -> list[str]:
    """The runs of words in `text` whose digest is among `digests`."""
    wanted = set(digests)
    if not wanted:
        return []
    words = normalise(text)
    hits: list[str] = []
    for n in range(1, MAX_RUN + 1):
        for i in range(len(words) - n + 1):
            run = " ".join(words[i:i + n])
            if digest(salt, run) in wanted:
                hits.append(run)
    return hits
