"""De-identification off the event loop: a file in, a file out, in worker processes with a time limit each.

Only paths and the small outcome cross the process boundary, never the object: a 2 GB upload is
streamed to disk by the handler, read there by the worker, and its result written next to it.
A task that outlives `timeout_s` is stopped by killing its pool (a process cannot be interrupted
otherwise); tasks that shared that pool see `BrokenProcessPool` and are run again on the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casebook_anonymiser.deid import CaseKey, deidentify_to_path

log = logging.getLogger(__name__)

PROCESSING_TIMEOUT = "processing_timeout"  # stable reason code: the task exceeded its time limit


class TaskTimeout(Exception):
    """The de-identification task exceeded its time limit and was stopped."""


@dataclass(frozen=True)
class Outcome:
    """What a worker reports back: the decision and the facts, not the data (it is in the output file)."""

    status: str
    reasons: list[str]
    media_type: str
    info: dict[str, Any] = field(default_factory=dict)
    identifiers: list[str] = field(default_factory=list)
    size: int | None = None
    sha256: str | None = None


def deidentify_to_file(src: str, dst: str, key: CaseKey, ocr: bool) -> Outcome:
    """Runs in a worker: de-identify `src` into `dst` (there only when it is ready).

    Large DICOM objects are streamed file to file (`deid.stream`), so a worker holds about a frame of
    them, never the object; the output's digest is read back from the file in pieces.
    """
    result = deidentify_to_path(src, dst, key=key, ocr=ocr)
    if result.status == "ready":
        with open(dst, "rb") as fp:
            digest = hashlib.file_digest(fp, "sha256").hexdigest()
        return Outcome("ready", [], result.media_type, result.info, result.identifiers, os.path.getsize(dst), digest)
    return Outcome("quarantined", result.reasons, result.media_type, result.info, [])


def ocr_threads(workers: int, cores: int | None = None) -> int:
    """ONNX threads per worker: the cores shared out between the workers, at least one.

    ONNX Runtime otherwise starts a thread per core in every worker, so N workers on N cores run N×N
    threads; measured on 2 cores with 2 workers, one thread each does 1.9× the images of the default.
    """
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def _worker_init(threads: int, stream_bytes: int | None = None) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the service decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("CASEBOOK_OCR_THREADS", str(threads))  # an operator's own setting wins
    if stream_bytes is not None:
        os.environ["CASEBOOK_DEID_STREAM_BYTES"] = str(stream_bytes)  # read by deid.stream.stream_min_bytes


IN_MEMORY_FACTOR = 6  # working memory of the in-memory path per input byte (measured 5.1× on 210 MB)
STREAMED_TASK_BYTES = 96 * 1024**2  # working memory of a streamed task, whatever its size (measured 41 MB)


def working_memory(size: int, stream_bytes: int) -> int:
    """What one task is expected to need: a multiple of a small upload, a constant for a streamed one."""
    return STREAMED_TASK_BYTES if size >= stream_bytes else size * IN_MEMORY_FACTOR


class ByteBudget:
    """At most `capacity` bytes of estimated working memory in the workers at once; tasks wait past it.

    Uploads of `stream_bytes` or more are streamed (`deid.stream`) and cost a constant; smaller ones
    are de-identified in memory and cost a multiple of their size (`working_memory`). A task that would
    need more than the whole budget runs alone.
    """

    def __init__(self, capacity: int, *, stream_bytes: int = 64 * 1024**2) -> None:
        self.capacity = capacity
        self.stream_bytes = stream_bytes
        self.in_use = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        need = max(0, min(working_memory(size, self.stream_bytes), self.capacity))
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_use + need <= self.capacity)
            self.in_use += need
        try:
            yield
        finally:
            async with self._changed:
                self.in_use -= need
                self._changed.notify_all()


class DeidPool:
    """A process pool that can stop a task that runs too long, and that is closed with the service."""

    def __init__(self, workers: int, *, timeout_s: float, stream_bytes: int | None = None) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self.stream_bytes = stream_bytes
        self._closed = False
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init,
                                   initargs=(ocr_threads(self.workers), self.stream_bytes))

    async def run(self, src: Path, dst: Path, key: CaseKey, ocr: bool) -> Outcome:
        """De-identify one file within the time limit (see `call` for the errors)."""
        outcome: Outcome = await self.call(deidentify_to_file, str(src), str(dst), key, ocr)
        return outcome

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` in a worker within the time limit.

        Raises:
            TaskTimeout: the task ran longer than `timeout_s` (its worker was stopped).
            BrokenProcessPool: a worker died (this task's or another's); running it again may succeed.
        """
        if self._closed:
            raise asyncio.CancelledError("the de-identification pool is closed")
        pool = self._pool
        future = asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        try:
            return await asyncio.wait_for(future, timeout=self.timeout_s)
        except TimeoutError:
            log.warning("de-identification exceeded %.0f s; stopping its worker", self.timeout_s)
            self._replace(pool)
            raise TaskTimeout(f"exceeded {self.timeout_s:.0f} s") from None
        except BrokenProcessPool:
            self._replace(pool)
            raise

    def _replace(self, pool: ProcessPoolExecutor) -> None:
        if pool is self._pool and not self._closed:
            self._pool = self._new()
        _kill(pool)

    def close(self) -> None:
        """Stop every worker now (the service is stopping; unfinished messages are redelivered)."""
        self._closed = True
        _kill(self._pool)


def _kill(pool: ProcessPoolExecutor) -> None:
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.kill()
    for p in processes:
        p.join(timeout=5)
