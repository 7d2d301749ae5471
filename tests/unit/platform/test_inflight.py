"""The consumer's in-flight window: N messages at once across batches, positions never past unfinished work."""

from __future__ import annotations

import asyncio

import pytest

from casebook_platform.consumer import InFlight

T = "case.uploaded"


def _begin(w: InFlight, partition: int, offset: int) -> int:
    return w.begin(T, partition, offset)


def test_position_stops_at_the_first_unfinished_message() -> None:
    w = InFlight(8)
    gens = {o: _begin(w, 0, o) for o in (10, 11, 12)}
    w.end(T, 0, 11, gens[11], ok=True)
    w.end(T, 0, 12, gens[12], ok=True)
    assert w.positions() == {(T, 0): 10}  # 10 is still being handled: 11 and 12 wait behind it
    w.end(T, 0, 10, gens[10], ok=True)
    assert w.positions() == {(T, 0): 13}


def test_partitions_move_independently() -> None:
    w = InFlight(8)
    a, b = _begin(w, 0, 5), _begin(w, 1, 7)
    w.end(T, 1, 7, b, ok=True)
    assert w.positions() == {(T, 0): 5, (T, 1): 8}
    w.end(T, 0, 5, a, ok=True)
    assert w.positions()[(T, 0)] == 6


def test_a_failed_message_holds_its_partition_until_handled_again() -> None:
    w = InFlight(8)
    g = _begin(w, 0, 3)
    g4 = _begin(w, 0, 4)
    w.end(T, 0, 3, g, ok=False)
    w.end(T, 0, 4, g4, ok=True)
    assert w.positions() == {(T, 0): 3}
    again = _begin(w, 0, 3)  # fetched again after the rewind
    w.end(T, 0, 3, again, ok=True)
    assert w.positions() == {(T, 0): 5}


def test_only_moved_positions_are_committed_again() -> None:
    w = InFlight(8)
    g = _begin(w, 0, 1)
    w.end(T, 0, 1, g, ok=True)
    w.committed(w.positions())
    assert w.positions() == {}
    g = _begin(w, 0, 2)
    assert w.positions() == {}  # still 2: nothing new to commit
    w.end(T, 0, 2, g, ok=True)
    assert w.positions() == {(T, 0): 3}


def test_a_revoked_partition_is_forgotten_and_its_old_tasks_move_nothing() -> None:
    w = InFlight(8)
    old = _begin(w, 0, 50)
    w.forget([(T, 0)])
    assert w.positions() == {}
    w.end(T, 0, 50, old, ok=True)  # finished after the rebalance: another consumer owns the partition now
    assert w.positions() == {}
    new = _begin(w, 0, 60)
    w.end(T, 0, 60, new, ok=True)
    assert w.positions() == {(T, 0): 61}


@pytest.mark.asyncio
async def test_at_most_limit_messages_at_once() -> None:
    w = InFlight(2)
    running = peak = 0

    async def one(offset: int) -> None:
        nonlocal running, peak
        g = w.begin(T, 0, offset)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        w.end(T, 0, offset, g, ok=True)

    tasks = []
    for o in range(7):
        await w.slot()
        tasks.append(asyncio.create_task(one(o)))
    await asyncio.gather(*tasks)
    assert peak == 2
    assert w.positions() == {(T, 0): 7}
