"""The allow-list as data: which attributes a teaching image keeps, what is done to each, and why.

``data/allowlist.json`` has one row per attribute (keyword, VR, action, why). Anything not listed
is dropped at every depth. Private elements have their own, stricter list (``profile.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydicom.datadict import tag_for_keyword

DATA = Path(__file__).with_name("data") / "allowlist.json"
ACTIONS = frozenset(
    {"keep", "uid", "class_uid", "date", "datetime", "time", "age", "sex", "vocab", "sequence", "pixels", "generated"}
)


@dataclass(frozen=True)
class Rule:
    tag: int
    keyword: str
    vr: str  # the dictionary VR; "US or SS" style alternatives are kept as written
    action: str
    why: str
    vrs: frozenset[str]  # the VRs the value may be written with


@cache
def rules() -> dict[int, Rule]:
    """Tag -> rule, resolved once."""
    doc = json.loads(DATA.read_text("utf-8"))
    out: dict[int, Rule] = {}
    for row in doc["rows"]:
        tag = tag_for_keyword(row["keyword"])
        if tag is None or row["action"] not in ACTIONS:
            raise ValueError(f"bad allow-list row {row}")
        vrs = frozenset(v.strip() for v in row["vr"].split(" or "))
        out[int(tag)] = Rule(int(tag), row["keyword"], row["vr"], row["action"], row["why"], vrs)
    return out


@cache
def tag_of(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return int(tag)
