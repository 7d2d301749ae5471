"""The Collector level scale of the achievements service (pure rules)."""

from __future__ import annotations

import pytest

from casebook_achievements import core


def test_thirty_levels_on_triangular_thresholds() -> None:
    assert len(core.THRESHOLDS) == core.MAX_LEVEL == 30
    assert core.THRESHOLDS[:5] == (1, 3, 6, 10, 15)
    assert core.THRESHOLDS[-1] == 465
    assert all(b > a for a, b in zip(core.THRESHOLDS, core.THRESHOLDS[1:], strict=False))


@pytest.mark.parametrize("level", [0, 31, -1])
def test_threshold_refuses_levels_outside_the_scale(level: int) -> None:
    with pytest.raises(ValueError):
        core.threshold(level)


@pytest.mark.parametrize(("count", "level"), [(0, 0), (1, 1), (2, 1), (3, 2), (5, 2), (6, 3), (464, 29),
                                              (465, 30), (10_000, 30)])
def test_level_for_count(count: int, level: int) -> None:
    assert core.level_for(count) == level


@pytest.mark.parametrize(("level", "tier"), [(0, None), (1, "bronze"), (10, "bronze"), (11, "silver"),
                                             (20, "silver"), (21, "gold"), (30, "gold")])
def test_tiers(level: int, tier: str | None) -> None:
    assert core.tier(level) == tier


def test_standing_shows_the_next_threshold_until_the_top() -> None:
    assert core.standing(0) == core.Standing(count=0, level=0, tier=None, next_level_at=1)
    assert core.standing(4) == core.Standing(count=4, level=2, tier="bronze", next_level_at=6)
    assert core.standing(465).next_level_at is None


def test_newly_reached_announces_each_level_once() -> None:
    assert core.newly_reached(0, 1) == 1
    assert core.newly_reached(1, 2) is None
    assert core.newly_reached(1, 3) == 2
    assert core.newly_reached(2, 10) == 4  # several thresholds at once: announce the highest
    assert core.newly_reached(4, 3) is None  # a deletion never takes an award back
