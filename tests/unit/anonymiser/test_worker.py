"""The de-identification pool: a task past its time limit is stopped, a dead worker is replaced, and closing
the pool leaves no process behind."""

from __future__ import annotations

import os
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from casebook_anonymiser.worker import DeidPool, TaskTimeout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


async def test_a_task_past_its_time_limit_is_stopped_and_the_pool_serves_on() -> None:
    pool = DeidPool(1, timeout_s=120.0)  # starting a worker may take a while on a loaded machine
    try:
        assert await pool.call(os.getpid) > 0  # warm: the worker exists
        pool.timeout_s = 1.0
        first = list(pool._pool._processes)  # type: ignore[attr-defined]
        started = time.monotonic()
        with pytest.raises(TaskTimeout):
            await pool.call(time.sleep, 60)
        assert time.monotonic() - started < 10
        for pid in first:
            assert not _alive(pid), "the worker running the task was not stopped"
        pool.timeout_s = 120.0
        assert await pool.call(sum, [1, 2, 3]) == 6  # a fresh worker takes the next task
    finally:
        pool.close()


async def test_a_dead_worker_breaks_only_until_the_pool_is_replaced() -> None:
    pool = DeidPool(1, timeout_s=30.0)
    try:
        with pytest.raises(BrokenProcessPool):
            await pool.call(os._exit, 3)
        assert await pool.call(abs, -4) == 4
    finally:
        pool.close()


async def test_closing_the_pool_leaves_no_worker_behind() -> None:
    pool = DeidPool(2, timeout_s=30.0)
    await pool.call(os.getpid)
    pids = list(pool._pool._processes)  # type: ignore[attr-defined]
    assert pids
    pool.close()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


async def test_in_memory_tasks_wait_for_each_other_within_the_budget_and_streamed_ones_cost_a_constant() -> None:
    import asyncio

    from casebook_anonymiser.worker import STREAMED_TASK_BYTES, ByteBudget, working_memory

    gib, mib = 1024**3, 1024**2
    budget = ByteBudget(gib, stream_bytes=64 * mib)
    running: list[int] = []
    peak = {"bytes": 0, "mid": 0, "large": 0}

    async def task(size: int) -> None:
        async with budget.hold(size):
            running.append(size)
            peak["bytes"] = max(peak["bytes"], budget.in_use)
            peak["mid"] = max(peak["mid"], running.count(60 * mib))
            peak["large"] = max(peak["large"], running.count(2 * gib))
            await asyncio.sleep(0.05)
            running.remove(size)

    # four 2 GB uploads (streamed), four 60 MB ones (in memory: 360 MB of work each) and small images
    await asyncio.gather(*(task(2 * gib) for _ in range(4)), *(task(60 * mib) for _ in range(4)),
                         *(task(50_000) for _ in range(20)))
    assert peak["bytes"] <= gib
    assert peak["large"] == 4  # streamed: all four at once, a constant each
    assert peak["mid"] <= 2  # in memory: they wait for each other
    assert budget.in_use == 0
    assert working_memory(2 * gib, 64 * mib) == STREAMED_TASK_BYTES == working_memory(64 * mib, 64 * mib)
    huge = ByteBudget(gib, stream_bytes=10 * gib)
    async with huge.hold(5 * gib):  # in memory and larger than the whole budget: admitted alone
        assert huge.in_use == gib
