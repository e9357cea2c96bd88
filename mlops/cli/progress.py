"""Rich progress bars for work longer than a second, on a terminal.

Every report is kept from the start; one second in, a timer shows the bars of every
phase reported so far (a phase with no known total pulses), so that a long scan or a
first phase that reports late still shows from the first second. Reports may come
from worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mlops.cli.app import progress_enabled

ProgressCallback = Callable[[str, int, int], None]
# Seconds before any bar shows: quicker commands never flicker one.
SHOW_AFTER = 1.0


class _Bars:
    """The phases reported so far and, once shown, the rich display of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phases: dict[str, tuple[int, int]] = {}  # phase -> (done, total), in order
        self.display: Any = None
        self.ids: dict[str, Any] = {}
        self.closed = False

    def report(self, task: str, done: int, total: int) -> None:
        with self.lock:
            self.phases[task] = (done, total)
            if self.display is not None:
                self._update(task)

    def show(self) -> None:
        """Start the display with every phase known (from the timer thread)."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with self.lock:
            if self.closed or self.display is not None:
                return
            self.display = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self.display.start()
            for task in self.phases:
                self._update(task)

    def _update(self, task: str) -> None:
        done, total = self.phases[task]
        if task not in self.ids:
            self.ids[task] = self.display.add_task(task, total=total or None)
        self.display.update(self.ids[task], completed=done, total=total or None)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if self.display is not None:
                self.display.stop()


@contextmanager
def progress_bar() -> Iterator[ProgressCallback]:
    """Yield ``report(task, done, total)`` (``total`` 0: not known yet); bars show one
    second in, for every task reported by then and after."""
    if not progress_enabled():
        yield lambda task, done, total: None
        return
    bars = _Bars()
    timer = threading.Timer(SHOW_AFTER, bars.show)
    timer.daemon = True
    timer.start()
    try:
        yield bars.report
    finally:
        timer.cancel()
        bars.close()
