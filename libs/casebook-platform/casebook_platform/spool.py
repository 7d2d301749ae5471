"""Spool files: large transient data written once to local disk, past the page cache where the system allows.

An upload is spooled to disk while it is checked and sent on to the object store; the bytes are read back
only in part (a DICOM header, a zip's directory and members). Written through the page cache, each GiB cost
about 3 s of kernel CPU on the deployment's machine kind (pages allocated, copied and written back), half of
the gateway's whole cost of an upload; written with O_DIRECT from an aligned buffer, 0.1 s. Where O_DIRECT
is refused (tmpfs, some network file systems, other systems) the file is written the ordinary way.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType

BLOCK = 4096  # O_DIRECT wants addresses, lengths and offsets aligned to the device's block; 4 KiB covers them
BUFFER = 4 * 1024 * 1024


class SpoolWriter:
    """Writes a file from the start, in pieces of any size; `close` leaves it exactly `size` bytes long."""

    def __init__(self, path: Path | str, *, fd: int | None = None) -> None:
        """Create (or truncate) `path`, or adopt `fd`, a descriptor already open for writing on it."""
        self.path = Path(path)
        self.size = 0
        self._fill = 0
        self._buf: mmap.mmap | None = None
        # os.open's descriptors are not inherited (PEP 446), nor are mkstemp's.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if fd is None else fd
        try:
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags | os.O_DIRECT)
            self._buf = mmap.mmap(-1, BUFFER)  # anonymous maps are page aligned
        except (AttributeError, OSError):  # no O_DIRECT on this system, or refused by this file system
            self._buf = None

    @classmethod
    def temporary(cls, prefix: str, tmp_dir: str | None = None) -> SpoolWriter:
        """A new file of its own (`tempfile.mkstemp`: unique name, mode 0600) in `tmp_dir` or the default."""
        fd, name = tempfile.mkstemp(prefix=prefix, dir=tmp_dir or None)
        return cls(name, fd=fd)

    @property
    def direct(self) -> bool:
        """Whether the file is written past the page cache."""
        return self._buf is not None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        self.size += len(view)
        if self._buf is None:
            while view:
                view = view[os.write(self._fd, view):]
            return
        while view:
            n = min(len(view), BUFFER - self._fill)
            self._buf[self._fill:self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == BUFFER:
                self._flush(BUFFER)

    def _flush(self, length: int) -> None:
        assert self._buf is not None
        done = 0
        with memoryview(self._buf) as whole:
            while done < length:
                try:
                    done += os.write(self._fd, whole[done:length])
                except OSError as exc:
                    if exc.errno != errno.EINVAL or not self._drop_direct():
                        raise
        self._fill = 0

    def _drop_direct(self) -> bool:
        """Go on through the page cache when the file system takes the flag but refuses direct writes."""
        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        if not flags & os.O_DIRECT:
            return False
        fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
        return True

    def close(self) -> None:
        """Write what is buffered and close; the file holds exactly the bytes written."""
        if self._fd < 0:
            return
        try:
            if self._buf is not None and self._fill:
                tail = self._fill
                padded = -(-tail // BLOCK) * BLOCK
                self._buf[tail:padded] = bytes(padded - tail)
                self._flush(padded)
                os.ftruncate(self._fd, self.size)
        finally:
            os.close(self._fd)
            self._fd = -1
            if self._buf is not None:
                self._buf.close()
                self._buf = None

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


_HELD: list[int] = []  # the locks of this process's spool directories, held until it ends
_UNLOCKED_GRACE_S = 60.0  # a directory without its lock yet may be another process's, created a moment ago


def private_dir(base: str | None, name: str) -> Path:
    """A spool directory of this process's own (mode 0700) under `base/casebook-<name>` (default: system temp).

    A process that is killed cannot remove its spool files, and those are raw uploads: patient data. So each
    process holds an exclusive lock on its directory for as long as it runs, and every start of a process of the
    same `name` removes the directories whose lock is free (their process is gone). Replicas sharing a machine
    keep theirs: a live process's lock is never free.
    """
    root = Path(base or tempfile.gettempdir()) / f"casebook-{name}"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in root.iterdir():
        _remove_if_abandoned(old)
    mine = Path(tempfile.mkdtemp(prefix="p", dir=root))
    fd = os.open(mine / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD.append(fd)
    return mine


def _remove_if_abandoned(path: Path) -> None:
    try:
        fd = os.open(path / ".lock", os.O_RDONLY)
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            if path.is_dir() and time.time() - path.stat().st_mtime > _UNLOCKED_GRACE_S:
                shutil.rmtree(path, ignore_errors=True)
        return
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # its process is alive
    else:
        shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)
