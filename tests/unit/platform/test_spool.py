"""Spool files hold exactly the bytes written, past the page cache on disk and the ordinary way elsewhere."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from casebook_platform import spool
from casebook_platform.spool import SpoolWriter

SIZES = [0, 1, 4095, 4096, 4097, spool.BUFFER - 1, spool.BUFFER, spool.BUFFER + 1, 3 * spool.BUFFER + 12345]


def _pieces(total: int, rng: random.Random) -> list[bytes]:
    out, left = [], total
    while left:
        n = min(left, rng.choice([1, 7, 4096, 65536, 1 << 20, 5 << 20]))
        out.append(rng.randbytes(n))
        left -= n
    return out


@pytest.mark.parametrize("size", SIZES)
def test_file_holds_exactly_what_was_written(tmp_path: Path, size: int) -> None:
    pieces = _pieces(size, random.Random(size))
    path = tmp_path / "spool"
    with SpoolWriter(path) as w:
        for p in pieces:
            w.write(p)
        assert w.size == size
    assert path.read_bytes() == b"".join(pieces)
    assert (path.stat().st_mode & 0o777) == 0o600


def test_disk_is_written_past_the_page_cache(tmp_path: Path) -> None:
    # The test tree lives on the machine's disk (ext4 here), which takes O_DIRECT.
    with SpoolWriter(tmp_path / "spool") as w:
        w.write(b"x" * 10)
        assert w.direct


def test_a_file_system_that_refuses_direct_io_is_written_the_ordinary_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fcntl = spool.fcntl.fcntl

    def no_direct(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == spool.fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(22, "Invalid argument")  # what Linux answers where the file system has no direct I/O
        return real_fcntl(fd, cmd, arg)

    monkeypatch.setattr(spool.fcntl, "fcntl", no_direct)
    path = tmp_path / "spool"
    with SpoolWriter(path) as w:
        assert not w.direct
        w.write(b"abc" * 5000)
    assert path.read_bytes() == b"abc" * 5000


def test_a_temporary_spool_is_a_new_private_file_written_past_the_page_cache(tmp_path: Path) -> None:
    with SpoolWriter.temporary("upload-", str(tmp_path)) as a, SpoolWriter.temporary("upload-", str(tmp_path)) as b:
        assert a.path != b.path and a.path.parent == tmp_path and a.path.name.startswith("upload-")
        assert a.direct
        a.write(b"x" * 5000)
    assert a.path.read_bytes() == b"x" * 5000 and b.path.read_bytes() == b""
    assert (a.path.stat().st_mode & 0o777) == 0o600


def test_refused_direct_writes_fall_back_without_losing_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    refused = []

    def picky(fd: int, data: memoryview) -> int:
        if not refused:
            refused.append(True)
            raise OSError(22, "Invalid argument")
        return real_write(fd, data)

    w = SpoolWriter(tmp_path / "spool")
    monkeypatch.setattr(os, "write", picky)
    data = random.Random(1).randbytes(spool.BUFFER + 100)
    w.write(data)
    w.close()
    assert refused and (tmp_path / "spool").read_bytes() == data


_CLAIM = """
import sys, time
from casebook_platform.spool import private_dir
d = private_dir(sys.argv[1], "svc")
(d / "upload-raw").write_bytes(b"patient data")
print(d, flush=True)
time.sleep(60)
"""


def _claimed_by_a_process(base: Path) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-c", _CLAIM, str(base)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_spool_directory_of_a_killed_process_is_removed_at_the_next_start(tmp_path: Path) -> None:
    dead, dead_dir = _claimed_by_a_process(tmp_path)
    alive, alive_dir = _claimed_by_a_process(tmp_path)
    try:
        dead.kill()
        dead.wait()
        assert (dead_dir / "upload-raw").exists()  # what the killed process could not remove
        mine = spool.private_dir(str(tmp_path), "svc")
        assert not dead_dir.exists()
        assert (alive_dir / "upload-raw").read_bytes() == b"patient data"  # a running replica keeps its files
        assert mine.parent == dead_dir.parent and mine not in (dead_dir, alive_dir)
        assert (mine.parent.stat().st_mode & 0o777) == 0o700 and (mine.stat().st_mode & 0o777) == 0o700
    finally:
        alive.kill()
        alive.wait()
