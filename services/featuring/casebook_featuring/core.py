"""Pure rules of featuring: months (UTC) and which approvals are candidates for a Case of the Month."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

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
