"""Running many small I/O-bound operations on a thread pool, or in forked processes."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, overload

T = TypeVar("T")
R = TypeVar("R")

Progress = Callable[[str, int, int], None]
# How often progress is reported while shares run in worker processes (seconds).
_REPORT_EVERY = 0.1


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

    # Imported here: it brings in logging, which commands that run no pool do not need.
    from concurrent.futures import ThreadPoolExecutor

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


def map_shares(
    fn: Callable[[Sequence[T]], R],
    items: Sequence[T],
    jobs: int | None = None,
    progress: Progress | None = None,
    task: str = "",
) -> list[R]:
    """``[fn(share) for share in shares]``: ``items`` cut into ``jobs`` contiguous shares,
    each run in a process of its own (forked; the first share runs in this one).

    For work made of many short system calls (hashing, linking and chmod-ing thousands
    of small files): threads hand the GIL over at every call and, measured, end up
    slower than one thread, while processes share nothing. ``fn`` must not print, hold
    locks or start threads; its result must pickle. Where ``fork`` is unsafe or missing
    (not Linux) the shares run one after the other in this process.
    """
    jobs = min(jobs or default_jobs(), max(len(items), 1))
    cut = [len(items) * k // jobs for k in range(jobs + 1)]
    meter = _ShareMeter(jobs, len(items), progress, task)
    if items:
        meter.report()  # the bar, with its total, before any share has started
    shares = [meter.counted(k, items[cut[k] : cut[k + 1]]) for k in range(jobs)]
    if jobs == 1 or sys.platform != "linux":
        results = [fn(share) for share in shares]
    else:
        pending = [_fork_share(fn, share) for share in shares[1:]]
        try:
            results = [fn(shares[0])]
            while pending:
                results.append(_collect(*pending.pop(0), meter.report))
        finally:
            for pid, fd in pending:  # failed or interrupted: leave nothing running behind us
                os.close(fd)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    if progress and items:
        progress(task, len(items), len(items))
    return results


class _ShareMeter:
    """Counts the items each share has gone through, in memory shared with the forked
    workers (one 8-byte slot each, written only by its own process), so that the parent
    reports progress while they run rather than once they are all done."""

    def __init__(self, shares: int, total: int, progress: Progress | None, task: str) -> None:
        import mmap

        self.total, self.progress, self.task = total, progress, task
        self.slots = mmap.mmap(-1, 8 * shares) if progress else None
        self.last = 0.0

    def counted(self, slot: int, share: Sequence[T]) -> Sequence[T]:
        return share if self.slots is None else _Counted(share, self, slot)

    def tick(self, slot: int, done: int) -> None:
        assert self.slots is not None
        self.slots[8 * slot : 8 * slot + 8] = done.to_bytes(8, "little")
        if slot == 0 and time.monotonic() - self.last >= _REPORT_EVERY:
            self.report()  # share 0 runs in the parent: it reports for everyone

    def report(self) -> None:
        if self.slots is None or self.progress is None:
            return
        self.last = time.monotonic()
        view = self.slots
        done = sum(int.from_bytes(view[i : i + 8], "little") for i in range(0, len(view), 8))
        self.progress(self.task, min(done, self.total), self.total)


class _Counted(Sequence[T]):
    """A share that counts how far iterating it went."""

    def __init__(self, items: Sequence[T], meter: _ShareMeter, slot: int) -> None:
        self.items, self.meter, self.slot = items, meter, slot

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...

    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        return self.items[index]

    def __iter__(self) -> Iterator[T]:
        # Counted a chunk at a time: a tick per item cost more than linking the item.
        items = self.items
        for start in range(0, len(items), 64):
            self.meter.tick(self.slot, start)
            yield from items[start : start + 64]
        self.meter.tick(self.slot, len(items))


def _fork_share(fn: Callable[[Sequence[T]], R], share: Sequence[T]) -> tuple[int, int]:
    """Start a child computing ``fn(share)``; return its pid and the pipe to read it from."""
    die_with_parent = _death_signal()
    parent = os.getpid()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        return pid, read_fd
    # The child: compute, send (ok, result or exception), and leave without cleanup
    # handlers, which belong to the parent (its database connection, its lock).
    code = 1
    try:
        # Killed with the parent: a kill -9 of the command must not leave its workers
        # placing files (and holding the repository's lock, which they share) behind it.
        die_with_parent()
        if os.getppid() == parent:  # else the parent died before the signal was set
            os.close(read_fd)
            code = _compute_and_send(fn, share, write_fd)
    finally:
        os._exit(code)


def _compute_and_send(fn: Callable[[Sequence[T]], R], share: Sequence[T], write_fd: int) -> int:
    """In a child: send (ok, result or exception) of ``fn(share)``; the exit code to use."""
    import pickle

    code = 0
    try:
        message = pickle.dumps((True, fn(share)), pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:
        code = 1
        message = _pickled_error(exc)
    with os.fdopen(write_fd, "wb") as pipe:
        pipe.write(message)
    return code


@functools.cache
def _death_signal() -> Callable[[], object]:
    """A function asking Linux to SIGKILL the calling process when its parent dies
    (``prctl(PR_SET_PDEATHSIG)``): looked up in the parent, so that a child only calls it."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return functools.partial(prctl, _PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _pickled_error(exc: BaseException) -> bytes:
    import pickle

    try:
        return pickle.dumps((False, exc), pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that does not pickle: keep its type's name and text
        return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _collect(pid: int, fd: int, waiting: Callable[[], None]) -> Any:
    """The result a child sent; the exception it raised is raised here. ``waiting`` is
    called every so often until the child answers (to report progress)."""
    import pickle
    import select

    try:
        while not select.select([fd], [], [], _REPORT_EVERY)[0]:
            waiting()
        with os.fdopen(fd, "rb") as pipe:
            data = pipe.read()
    finally:
        _, status = os.waitpid(pid, 0)
    if not data:
        raise ChildProcessError(f"a worker process died (wait status {status})")
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value
