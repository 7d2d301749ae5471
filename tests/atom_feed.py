"""Reads an Atom feed back and checks what RFC 4287 requires of it (the tests of `/v1/featured.atom`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

NS = "{http://www.w3.org/2005/Atom}"


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    updated: datetime
    published: datetime | None
    link: str
    category: str


def _one(parent: ET.Element, tag: str, where: str) -> ET.Element:
    found = parent.findall(NS + tag)
    assert len(found) == 1, f"{where} must have exactly one atom:{tag}, has {len(found)}"
    return found[0]


def _date(text: str | None, where: str) -> datetime:
    assert text and ("T" in text) and (text.endswith("Z") or text[-6] in "+-"), f"{where}: not RFC 3339: {text!r}"
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert at.tzinfo is not None, where
    return at


def parse_atom(body: bytes) -> tuple[ET.Element, list[Entry]]:
    """The feed element and its entries, after checking the RFC's must-haves and that entries run newest first."""
    assert body.startswith(b"<?xml"), body[:60]
    feed = ET.fromstring(body)
    assert feed.tag == NS + "feed", feed.tag
    for tag in ("id", "title", "updated"):
        assert (_one(feed, tag, "feed").text or "").strip(), f"feed atom:{tag} is empty"
    _date(_one(feed, "updated", "feed").text, "feed updated")
    selfs = [link for link in feed.findall(NS + "link") if link.get("rel") == "self"]
    assert len(selfs) == 1 and selfs[0].get("href", "").endswith("/v1/featured.atom")
    feed_author = feed.find(NS + "author")
    entries: list[Entry] = []
    for n, el in enumerate(feed.findall(NS + "entry")):
        where = f"entry {n}"
        if feed_author is None:
            assert el.find(NS + "author") is not None, f"{where} needs an author (the feed has none)"
        alternates = [link for link in el.findall(NS + "link") if link.get("rel", "alternate") == "alternate"]
        # without atom:content an entry must have an alternate link, and at most one per type
        assert len(alternates) == 1 and alternates[0].get("href"), f"{where}: one alternate link"
        published = el.find(NS + "published")
        category = el.find(NS + "category")
        entries.append(Entry(
            id=(_one(el, "id", where).text or "").strip(),
            title=(_one(el, "title", where).text or "").strip(),
            updated=_date(_one(el, "updated", where).text, where),
            published=_date(published.text, where) if published is not None else None,
            link=alternates[0].get("href", ""),
            category=category.get("term", "") if category is not None else "",
        ))
    assert all(e.id and e.title for e in entries)
    assert len({e.id for e in entries}) == len(entries), "entry ids must be unique"
    updated = [e.updated for e in entries]
    assert updated == sorted(updated, reverse=True), "entries must run newest first"
    if entries:
        assert _date(_one(feed, "updated", "feed").text, "feed") >= entries[0].updated
    return feed, entries
