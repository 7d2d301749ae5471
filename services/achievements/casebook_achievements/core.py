"""Pure rules of the Collector achievement: an open, non-linear scale of 30 levels."""

from __future__ import annotations

from dataclasses import dataclass

MAX_LEVEL = 30
TIERS = (("bronze", 1, 10), ("silver", 11, 20), ("gold", 21, 30))


def threshold(level: int) -> int:
    """Cases needed for `level`: triangular numbers (1, 3, 6, 10, ... 465), so each level asks a little more."""
    if not 1 <= level <= MAX_LEVEL:
        raise ValueError(f"level must be 1..{MAX_LEVEL}")
    return level * (level + 1) // 2


THRESHOLDS: tuple[int, ...] = tuple(threshold(n) for n in range(1, MAX_LEVEL + 1))


def tier(level: int) -> str | None:
    """bronze (1–10), silver (11–20), gold (21–30); None below level 1."""
    for name, lo, hi in TIERS:
        if lo <= level <= hi:
            return name
    return None


def level_for(count: int) -> int:
    """The highest level whose threshold `count` reaches (0 when none)."""
    return sum(1 for t in THRESHOLDS if count >= t)


@dataclass(frozen=True)
class Standing:
    """A user's Collector standing, as the API shows it."""

    count: int
    level: int
    tier: str | None
    next_level_at: int | None


def standing(count: int) -> Standing:
    lvl = level_for(count)
    return Standing(count=count, level=lvl, tier=tier(lvl),
                    next_level_at=THRESHOLDS[lvl] if lvl < MAX_LEVEL else None)


def newly_reached(previous_awarded: int, count: int) -> int | None:
    """The level to announce when `count` passes the highest level already awarded, else None."""
    lvl = level_for(count)
    return lvl if lvl > previous_awarded else None
