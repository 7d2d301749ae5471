"""What the commands show: rich progress bars (overall and per file) and one plain line per outcome.

On a terminal the bars redraw in place; elsewhere (a pipe, a log) rich draws no live bars and the lines
alone tell what happened, one per file, flushed as they are written.
"""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeRemainingColumn


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class Ui:
    """An overall bar (files, or an export's progress) and a bar for the file at hand (its bytes)."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(file=sys.stdout, soft_wrap=True)
        self.quiet = quiet
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TextColumn("{task.fields[detail]}"), TimeRemainingColumn(),
                                 console=self.console, transient=True, disable=quiet)
        self._overall: TaskID | None = None
        self._file: TaskID | None = None
        self._unit = ""
        # Counted here: rich's task list is positional and shifts as tasks are removed.
        self._done = self._total = 0.0
        self._file_done = 0
        self._file_total: float | None = None

    def __enter__(self) -> Ui:
        self.progress.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        self.console.file.flush()

    def overall(self, description: str, total: float, unit: str = "files") -> None:
        if self._overall is not None:
            self.progress.remove_task(self._overall)
        self._unit = unit
        self._done, self._total = 0, total
        self._overall = self.progress.add_task(description, total=total, detail=f"0/{total:g} {unit}")

    def advance(self, n: float = 1) -> None:
        if self._overall is None:
            return
        self._done += n
        self.progress.update(self._overall, completed=self._done, detail=f"{self._done:g}/{self._total:g} {self._unit}")

    def set_overall(self, completed: float, detail: str = "") -> None:
        if self._overall is not None:
            self.progress.update(self._overall, completed=completed, detail=detail)

    def file(self, description: str, total: float | None = None) -> None:
        """Start (or restart) the per-file bar: `total` bytes, or None while the size is unknown."""
        self._file_done, self._file_total = 0, total
        if self._file is None:
            self._file = self.progress.add_task(description, total=total, detail="")
        else:
            self.progress.reset(self._file, description=description, total=total, detail="")

    def sent(self, n: int) -> None:
        if self._file is not None:
            self._file_done += n
            detail = _size(self._file_done) + (f"/{_size(self._file_total)}" if self._file_total else "")
            self.progress.update(self._file, completed=self._file_done, detail=detail)

    def file_done(self) -> None:
        if self._file is not None:
            self.progress.remove_task(self._file)
            self._file = None
