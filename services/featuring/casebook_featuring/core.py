"""Pure rules of featuring: months (UTC), which approvals are candidates for a Case of the Month, the Atom feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from casebook_events import lifecycle

_MONTH = re.compile(r"([1-9]\d{3})-(0[1-9]|1[0-2])")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in UTC."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:
            raise ValueError(f"not a month: {self.year}-{self.month}")

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        """The first instant of the month (inclusive)."""
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant of the next month (exclusive)."""
        return self.following().start

    def preceding(self) -> Month:
        """The calendar month before this one (January → December of the previous year)."""
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def following(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)


def parse_month(text: str) -> Month:
    """`YYYY-MM` → Month.

    Raises:
        ValueError: not a well-formed month.
    """
    m = _MONTH.fullmatch(text)
    if m is None:
        raise ValueError(f"expected YYYY-MM, got {text!r}")
    return Month(int(m.group(1)), int(m.group(2)))


def month_of(at: datetime) -> Month:
    """The UTC month an instant falls in (naive datetimes are taken as UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return Month(at.year, at.month)


def candidate_window(pick_month: Month) -> tuple[datetime, datetime]:
    """[start, end) of the approvals eligible as Case of the Month for `pick_month`: the preceding month."""
    prev = pick_month.preceding()
    return prev.start, prev.end


def is_candidate(approved_at: datetime, pick_month: Month) -> bool:
    """True when a case approved at `approved_at` may be the Case of the Month of `pick_month`."""
    return month_of(approved_at) == pick_month.preceding()


def delisting_applies(known_revision: int, known_deleted: bool, incoming: int, *, deletion: bool) -> bool:
    """Whether a de-listing at revision `incoming` (or a deletion, whatever its revision) takes a known case
    out of the listings: the revision rule of `lifecycle.newer_wins`, with a deletion never older."""
    return lifecycle.newer_wins(known_revision, known_revision if deletion else incoming, deleted=known_deleted)


# ---------------------------------------------------------------- the Atom feed

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_MEDIA_TYPE = "application/atom+xml"
# Characters XML 1.0 cannot carry at all (C0 controls but tab, newline, return; surrogates; U+FFFE/U+FFFF):
# a title holding one would make the whole feed unreadable, so they are dropped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December")


@dataclass(frozen=True)
class FeedItem:
    """One entry of the feed: a featured case, or the Case of the Month of `month`."""

    kind: Literal["featured", "case_of_the_month"]
    case_id: str
    title: str
    published: datetime
    updated: datetime
    month: str = ""


def featured_item(case_id: str, title: str, featured_at: datetime, approved_at: datetime | None) -> FeedItem:
    """A featured case; it counts as updated when a newer approval (a new title, say) came after featuring."""
    updated = max(featured_at, approved_at) if approved_at is not None else featured_at
    return FeedItem("featured", case_id, title, featured_at, updated)


def pick_item(month: str, case_id: str, title: str, picked_at: datetime) -> FeedItem:
    """The Case of the Month of `month` (a replaced pick is the same entry, updated)."""
    return FeedItem("case_of_the_month", case_id, title, picked_at, picked_at, month)


def feed_order(items: list[FeedItem], limit: int) -> list[FeedItem]:
    """Newest first by `updated` (then by entry id, so the order is stable), at most `limit`."""
    return sorted(items, key=lambda i: (i.updated, _entry_key(i)), reverse=True)[:limit]


def _entry_key(item: FeedItem) -> str:
    return f"case-of-the-month-{item.month}" if item.kind == "case_of_the_month" else f"featured-{item.case_id}"


def _month_label(month: str) -> str:
    m = parse_month(month)
    return f"{_MONTH_NAMES[m.month - 1]} {m.year}"


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def _stamp(at: datetime) -> str:
    """RFC 3339 in UTC, as Atom's date constructs require (naive datetimes are taken as UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def atom_feed(items: list[FeedItem], *, base_url: str, now: datetime) -> bytes:
    """The Atom 1.0 document (RFC 4287) of featured cases and Cases of the Month, in the order given.

    Entry links go to each case's public page, `<base_url>/cases/<case_id>` (the console's case page), with
    the API's `/v1/cases/<case_id>` as a related link. The feed's `updated` is its newest entry's, or `now`
    when it has none.
    """
    base = base_url.rstrip("/")
    feed_url = f"{base}/v1/featured.atom"
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = _xml_text(text)
        return el

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", feed_url)
    sub(feed, "title", "Casebook: featured cases and Cases of the Month")
    sub(feed, "subtitle", "Teaching cases the Casebook editors feature, and each month's Case of the Month.")
    sub(feed, "updated", _stamp(max((i.updated for i in items), default=now)))
    author = sub(feed, "author")
    sub(author, "name", "Casebook editors")
    sub(feed, "link", rel="self", href=feed_url, type=ATOM_MEDIA_TYPE)
    sub(feed, "link", rel="alternate", href=f"{base}/featured", type="text/html")
    sub(feed, "generator", "Casebook featuring")
    for item in items:
        title = _xml_text(item.title).strip() or "Untitled case"
        entry = sub(feed, "entry")
        sub(entry, "id", f"{feed_url}#{_entry_key(item)}")
        if item.kind == "case_of_the_month":
            label = _month_label(item.month)
            sub(entry, "title", f"Case of the Month, {label}: {title}")
            sub(entry, "summary", f"{title} is the Casebook Case of the Month for {label}.")
            sub(entry, "category", term="case-of-the-month", label="Case of the Month")
        else:
            sub(entry, "title", title)
            sub(entry, "summary", f"{title}, featured by the Casebook editors.")
            sub(entry, "category", term="featured", label="Featured case")
        sub(entry, "link", rel="alternate", href=f"{base}/cases/{item.case_id}", type="text/html")
        sub(entry, "link", rel="related", href=f"{base}/v1/cases/{item.case_id}", type="application/json")
        sub(entry, "published", _stamp(item.published))
        sub(entry, "updated", _stamp(item.updated))
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
