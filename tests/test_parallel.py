"""``mlops.core.parallel``: thread pools for I/O, forked worker processes for many small files."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from mlops.core.parallel import map_shares, parallel_map

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="worker processes: Linux only")


def test_parallel_map_keeps_order() -> None:
    assert parallel_map(lambda x: x * x, list(range(1000)), jobs=2) == [x * x for x in range(1000)]


@linux_only
def test_map_shares_cuts_contiguous_shares_and_runs_them_in_processes() -> None:
    seen: list[int] = []

    def share(items: list[int]) -> tuple[int, list[int]]:
        seen.append(os.getpid())
        return os.getpid(), [i * 2 for i in items]

    results = map_shares(share, list(range(10)), jobs=3)
    assert [r[1] for r in results] == [[0, 2, 4], [6, 8, 10], [12, 14, 16, 18]]
    pids = [r[0] for r in results]
    assert pids[0] == os.getpid() and len(set(pids)) == 3
    assert seen == [os.getpid()]  # what the children changed stayed in their memory


def test_map_shares_with_fewer_items_than_jobs() -> None:
    assert map_shares(lambda items: list(items), [1, 2], jobs=8) == [[1], [2]]
    assert map_shares(lambda items: list(items), [], jobs=4) == [[]]


@linux_only
def test_a_worker_process_error_is_raised_here_with_its_type() -> None:
    def share(items: list[str]) -> list[int]:
        return [os.stat(name).st_size for name in items]

    with pytest.raises(FileNotFoundError) as caught:
        map_shares(share, [__file__, "/nonexistent/first", "/nonexistent/second"], jobs=3)
    assert caught.value.filename == "/nonexistent/first"


@linux_only
def test_an_error_that_does_not_pickle_keeps_its_name_and_text() -> None:
    class Local(Exception):  # a local class cannot be pickled
        pass

    def share(items: list[int]) -> list[int]:
        if items[0] == 1:
            raise Local("broken share")
        return list(items)

    with pytest.raises(RuntimeError, match="Local: broken share"):
        map_shares(share, [0, 1], jobs=2)


@linux_only
def test_a_worker_process_that_dies_is_reported_and_reaped(tmp_path: Path) -> None:
    def share(items: list[int]) -> list[int]:
        if items[0] == 1:
            (tmp_path / "pid").write_text(str(os.getpid()))
            os._exit(7)
        return list(items)

    with pytest.raises(ChildProcessError, match="died"):
        map_shares(share, [0, 1], jobs=2)
    with pytest.raises(ChildProcessError):  # already waited for: no zombie left
        os.waitpid(int((tmp_path / "pid").read_text()), os.WNOHANG)


@linux_only
def test_when_this_share_fails_the_others_are_stopped(tmp_path: Path) -> None:
    def share(items: list[int]) -> list[int]:
        if items[0] == 0:
            while len(list(tmp_path.glob("pid-*"))) < 2:  # both children are running
                time.sleep(0.01)
            raise ValueError("first share failed")
        # Renamed into place: a child killed while writing must not leave an empty pid file.
        (tmp_path / f"tmp-{items[0]}").write_text(str(os.getpid()))
        os.replace(tmp_path / f"tmp-{items[0]}", tmp_path / f"pid-{items[0]}")
        time.sleep(30)  # killed long before
        return list(items)

    started = time.monotonic()
    with pytest.raises(ValueError, match="first share failed"):
        map_shares(share, [0, 1, 2], jobs=3)
    assert time.monotonic() - started < 10
    for pid_file in tmp_path.glob("pid-*"):
        with pytest.raises(ChildProcessError):  # killed and waited for
            os.waitpid(int(pid_file.read_text()), os.WNOHANG)
