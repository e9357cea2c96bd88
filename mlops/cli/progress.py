"""Rich progress bars that appear only for work longer than a second, on a terminal."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mlops.cli.app import progress_enabled

ProgressCallback = Callable[[str, int, int], None]


@contextmanager
def progress_bar() -> Iterator[ProgressCallback]:
    """Yield ``report(task, done, total)``; a bar is shown once a task takes over 1 s."""
    if not progress_enabled():
        yield lambda task, done, total: None
        return
    started = time.monotonic()
    state: dict[str, Any] = {"progress": None, "tasks": {}}

    def report(task: str, done: int, total: int) -> None:
        if state["progress"] is None:
            if time.monotonic() - started < 1.0:
                return
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            bar.start()
            state["progress"] = bar
        progress = state["progress"]
        if task not in state["tasks"]:
            state["tasks"][task] = progress.add_task(task, total=total)
        progress.update(state["tasks"][task], completed=done, total=total)

    try:
        yield report
    finally:
        if state["progress"] is not None:
            state["progress"].stop()
