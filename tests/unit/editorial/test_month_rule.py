"""The Case of the Month rule: candidates are the cases approved in the preceding calendar month (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from casebook_featuring import core


@pytest.mark.parametrize(("month", "preceding"), [
    ("2026-12", "2026-11"), ("2026-03", "2026-02"), ("2027-01", "2026-12"), ("2000-01", "1999-12"),
])
def test_preceding_month(month: str, preceding: str) -> None:
    assert str(core.parse_month(month).preceding()) == preceding


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-01", "2026/01", "2026-01-01", "", "abcd-ef",
                                  "0999-05"])
def test_malformed_months_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        core.parse_month(text)


def test_window_is_the_whole_preceding_month_half_open() -> None:
    start, end = core.candidate_window(core.parse_month("2024-03"))
    assert start == datetime(2024, 2, 1, tzinfo=UTC)
    assert end == datetime(2024, 3, 1, tzinfo=UTC)


def test_january_takes_december_of_the_previous_year() -> None:
    m = core.parse_month("2027-01")
    assert core.is_candidate(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), m)
    assert core.is_candidate(datetime(2026, 12, 1, tzinfo=UTC), m)
    assert not core.is_candidate(datetime(2027, 1, 1, tzinfo=UTC), m)
    assert not core.is_candidate(datetime(2025, 12, 15, tzinfo=UTC), m)


def test_boundaries_follow_utc_not_local_time() -> None:
    m = core.parse_month("2026-12")
    # 00:30 on 1 December in UTC+2 is still November in UTC.
    assert core.is_candidate(datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))), m)
    # 23:30 on 30 November in UTC-2 is already December in UTC.
    assert not core.is_candidate(datetime(2026, 11, 30, 23, 30, tzinfo=timezone(timedelta(hours=-2))), m)


def test_two_months_back_and_the_same_month_are_not_candidates() -> None:
    m = core.parse_month("2026-06")
    assert not core.is_candidate(datetime(2026, 4, 30, tzinfo=UTC), m)
    assert not core.is_candidate(datetime(2026, 6, 2, tzinfo=UTC), m)
    assert core.is_candidate(datetime(2026, 5, 31, 12, tzinfo=UTC), m)


def test_months_order_and_format() -> None:
    assert core.parse_month("2026-02") < core.parse_month("2026-11") < core.parse_month("2027-01")
    assert str(core.parse_month("2026-02")) == "2026-02"
    assert core.month_of(datetime(2026, 2, 28, 23, 59)) == core.parse_month("2026-02")
