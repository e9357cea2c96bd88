"""Progress that shows: every phase (scan, hash and link, transfer) reports from its start,
objects and bytes together, and the bars appear one second in, whatever was reported."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mlops.core.repo import Repo
from tests.helpers.cli import run_cli

Reports = list[tuple[str, int, int]]


def many_files(folder: Path, count: int) -> None:
    for i in range(count):
        sub = folder / f"{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i}.txt").write_bytes(os.urandom(64) + str(i).encode())


def of(reports: Reports, task: str) -> list[tuple[int, int]]:
    return [(done, total) for name, done, total in reports if name == task]


def test_add_reports_scan_then_hashing_from_the_start(repo: Path) -> None:
    from mlops.workspace.add import add

    many_files(repo / "data", 1500)  # enough for worker processes (map_shares)
    reports: Reports = []
    add(Repo(repo), [str(repo / "data")], jobs=2, progress=lambda *r: reports.append(r))
    assert reports[0] == ("scanning", 0, 0)  # shown while the files are being found
    assert of(reports, "scanning")[-1] == (1500, 1500)
    adding = of(reports, "adding")
    assert adding[0] == (0, 1500)  # the bar exists, with its total, before any file is done
    assert adding[-1] == (1500, 1500)
    assert [done for done, _ in adding] == sorted(done for done, _ in adding)
    first = [name for name, _, _ in reports]
    assert first.index("scanning") < first.index("adding")


def test_push_reports_objects_and_bytes_together_from_the_start(repo: Path) -> None:
    from mlops.flows.roots import push

    many_files(repo / "data", 200)
    assert run_cli(repo, "add", "data").exit_code == 0
    assert run_cli(repo, "remote", "add", "origin", "../store", "--default").exit_code == 0
    reports: Reports = []
    result = push(Repo(repo), progress=lambda *r: reports.append(r))
    names = [name for name, _, _ in reports]
    assert names[0] == "finding what the remote lacks"
    objects = of(reports, "pushing objects")
    assert objects[0] == (0, result.objects) and objects[-1] == (result.objects, result.objects)
    mib = of(reports, "pushing MiB")
    assert len(mib) == len(objects) and mib[-1][0] == mib[-1][1] >= 1
    # Each objects report is followed by its bytes report: they move together.
    pairs = [names[i + 1] for i, name in enumerate(names) if name == "pushing objects"]
    assert set(pairs) == {"pushing MiB"}


def test_bars_show_one_second_in_with_every_phase_reported_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlops.cli import progress

    monkeypatch.setattr(progress, "progress_enabled", lambda: True)
    monkeypatch.setattr(progress, "SHOW_AFTER", 0.2)
    with progress.progress_bar() as report:
        report("scanning", 0, 0)  # a long first phase: no further report for a while
        report("adding", 10, 100)
        bars = report.__self__  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while bars.display is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bars.display is not None
        with bars.lock:  # the timer thread may still be adding the phases known so far
            shown = {task.description: task for task in bars.display.tasks}
        assert shown["scanning"].total is None  # not known yet: the bar pulses
        assert (shown["adding"].completed, shown["adding"].total) == (10, 100)
        report("adding", 50, 100)
        assert bars.display.tasks[1].completed == 50
    assert bars.closed
