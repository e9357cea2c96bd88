"""Running many small I/O-bound operations on a thread pool, in chunks."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

Progress = Callable[[str, int, int], None]


def default_jobs() -> int:
    """Threads for file work: one per core (measured: more threads only fight over the GIL)."""
    return min(8, os.cpu_count() or 1)


def parallel_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    jobs: int | None = None,
    progress: Progress | None = None,
    task: str = "",
) -> list[R]:
    """``[fn(item) for item in items]``, in order, on ``jobs`` threads for larger inputs."""
    jobs = jobs or default_jobs()
    total = len(items)
    if jobs == 1 or total < 128:
        results = [fn(item) for item in items]
        if progress and total:
            progress(task, total, total)
        return results
    size = max(32, total // (jobs * 16))
    chunks = [items[i : i + size] for i in range(0, total, size)]

    def run_chunk(chunk: Sequence[T]) -> list[R]:
        return [fn(item) for item in chunk]

    results = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_chunk, chunk) for chunk in chunks]
        try:
            for future in futures:
                results.extend(future.result())
                if progress:
                    progress(task, len(results), total)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results
