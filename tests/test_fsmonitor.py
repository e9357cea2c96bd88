"""The file-system monitor (core.fsmonitor): a real watchdog daemon; status with it always
gives the answer of a status that remembers nothing, through restarts, renames, changes
made while it was down, and a folder replaced by a file."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli, run_subprocess
from tests.helpers.files import rewrite
from tests.helpers.repos import put_state_back, set_state_aside

pytest.importorskip("watchdog", reason="the file-system monitor needs mlops[fsmonitor]")


@pytest.fixture
def monitored(repo: Path) -> Iterator[Path]:
    data = repo / "ds"
    for group in range(4):
        (data / f"g{group}").mkdir(parents=True)
        for i in range(3):
            (data / f"g{group}" / f"{i}.txt").write_text(f"{group}-{i}\n")
    (data / "top.txt").write_text("top\n")
    assert run_cli(repo, "add", "ds").exit_code == 0
    assert run_cli(repo, "config", "core.fsmonitor", "true").exit_code == 0
    try:
        yield repo
    finally:
        run_cli(repo, "fsmonitor", "stop")


def status(repo: Path) -> dict[str, object]:
    # A real process, as a Git hook runs it: the daemon outlives it.
    proc = run_subprocess(repo, "status", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    (found,) = json.loads(proc.stdout)["data"]
    return dict(found)


@contextlib.contextmanager
def knowing_nothing(repo: Path) -> Iterator[None]:
    """Commands run inside know nothing: no state, no monitor."""
    saved = set_state_aside(repo)
    assert run_cli(repo, "config", "core.fsmonitor", "false").exit_code == 0
    try:
        yield
    finally:
        assert run_cli(repo, "config", "core.fsmonitor", "true").exit_code == 0
        put_state_back(repo, saved)


def truth(repo: Path) -> dict[str, object]:
    """The status of a command that knows nothing."""
    with knowing_nothing(repo):
        return status(repo)


def test_status_with_the_monitor_follows_every_kind_of_change(monitored: Path) -> None:
    repo, data = monitored, monitored / "ds"
    assert status(repo)["workspace"] == "unchanged"  # starts the daemon, scans once
    assert run_cli(repo, "fsmonitor", "status").exit_code == 0
    assert status(repo)["workspace"] == "unchanged"  # from the monitor alone
    steps = [
        lambda: rewrite(data / "g1" / "0.txt", "changed\n"),
        lambda: rewrite(data / "g1" / "0.txt", "1-0\n"),  # back: unchanged again
        lambda: os.rename(data / "g2" / "1.txt", data / "g3" / "moved.txt"),
        lambda: os.rename(data / "g3" / "moved.txt", data / "g2" / "1.txt"),
        lambda: rewrite(data / "top.txt", "new top\n"),
        lambda: (shutil.rmtree(data / "g0"), (data / "g0").write_text("now a file\n")),
        lambda: ((data / "g0").unlink(), (data / "g9").mkdir(), (data / "g9" / "a").write_text("")),
        lambda: os.rename(data / "g9", data / "g8"),
    ]
    for i, step in enumerate(steps):
        step()
        seen = status(repo)
        assert seen == truth(repo), i
        assert status(repo) == seen, i  # asked again: the same answer


def test_a_change_made_while_the_monitor_was_down_is_seen(monitored: Path) -> None:
    repo, data = monitored, monitored / "ds"
    assert status(repo)["workspace"] == "unchanged"
    assert run_cli(repo, "fsmonitor", "stop").exit_code == 0
    assert run_cli(repo, "fsmonitor", "status").exit_code == 1
    rewrite(data / "g2" / "2.txt", "while down\n")
    found = status(repo)  # restarts it: a new epoch, so a full scan
    assert found["workspace"] == "modified" and found["modified"] == ["g2/2.txt"]
    assert run_cli(repo, "fsmonitor", "status").exit_code == 0
    rewrite(data / "g2" / "2.txt", "2-2\n")
    assert status(repo)["workspace"] == "unchanged"


def test_the_monitor_daemon_stops_when_the_repository_goes(monitored: Path) -> None:
    import time

    assert status(monitored)["workspace"] == "unchanged"
    from mlops.workspace.fsmonitor import running

    root = monitored.resolve()
    assert running(root)
    shutil.rmtree(monitored / ".mlops")
    deadline = time.monotonic() + 60
    while running(root):
        assert time.monotonic() < deadline, "the daemon outlived its repository"
        time.sleep(0.1)


def test_monitor_without_watchdog_is_one_clear_line(repo: Path, tmp_path: Path) -> None:
    """A Python without the extra: the error names it."""
    import subprocess
    import sys

    assert run_cli(repo, "config", "core.fsmonitor", "true").exit_code == 0
    (repo / "f.txt").write_text("x\n")
    (repo / "d").mkdir()
    (repo / "d" / "a").write_text("a\n")
    assert run_cli(repo, "add", "d").exit_code == 0
    run_cli(repo, "fsmonitor", "stop")  # add asked the monitor, so it started one
    blocker = tmp_path / "nowatchdog"
    blocker.mkdir()
    (blocker / "watchdog.py").write_text("raise ImportError('no watchdog here')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "status"], cwd=repo, capture_output=True, text=True, env=env
    )
    assert proc.returncode == 1
    assert "core.fsmonitor needs the watchdog package: pip install 'mlops[fsmonitor]'" in (
        proc.stderr
    )


def added(repo: Path) -> str:
    """``mlops add ds`` in a real process; the snapshot's id."""
    proc = run_subprocess(repo, "add", "--json", "ds")
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)[0]["oid"])


def truly_added(repo: Path) -> str:
    """The snapshot an add that knows nothing makes of ``ds``."""
    with knowing_nothing(repo):
        return added(repo)


def test_readd_with_the_monitor_makes_the_snapshot_a_full_scan_makes(monitored: Path) -> None:
    repo, data = monitored, monitored / "ds"
    assert status(repo)["workspace"] == "unchanged"  # starts the daemon
    steps = [
        lambda: rewrite(data / "g1" / "0.txt", "changed\n"),
        lambda: (data / "g2" / "0.txt").chmod(0o755),  # the mode alone: no mtime changes
        lambda: (data / "g2" / "0.txt").chmod(0o644),
        lambda: os.rename(data / "g2" / "1.txt", data / "g3" / "moved.txt"),
        lambda: rewrite(data / "top.txt", "new top\n"),
        lambda: (data / "new-top.txt").write_text("another\n"),
        lambda: (shutil.rmtree(data / "g0"), (data / "g0").write_text("now a file\n")),
        lambda: ((data / "g0").unlink(), (data / "g9").mkdir(), (data / "g9" / "a").write_text("")),
        lambda: os.rename(data / "g9", data / "g8"),
        lambda: None,  # nothing changed: the same snapshot again
    ]
    for i, step in enumerate(steps):
        step()
        oid = added(repo)
        assert oid == truly_added(repo), i
        assert status(repo)["workspace"] == "unchanged", i
        assert status(repo) == truth(repo), i


def test_readd_with_the_monitor_reads_unchanged_groups_from_the_record(monitored: Path) -> None:
    """The monitor is what spares the scan: a group it saw no change in is taken as
    recorded (here a record tampered with, to show it), the changed one from the disk."""
    import sqlite3

    repo, data = monitored, monitored / "ds"
    assert status(repo)["workspace"] == "unchanged"
    before = added(repo)
    db = sqlite3.connect(repo / ".mlops" / "state.db")
    with db:
        (text,) = db.execute("SELECT files FROM file_groups WHERE grp = 'g3'").fetchone()
        items = text.split("\n")
        line, _, oid = items[0].rpartition("\0")
        relpath, inode, mtime, size, mode = line.split("\0")
        items[0] = "\0".join([relpath, inode, mtime, str(int(size) + 1000), mode, oid])
        db.execute("UPDATE file_groups SET files = ? WHERE grp = 'g3'", ("\n".join(items),))
    db.close()
    rewrite(data / "g1" / "0.txt", "changed\n")
    after = added(repo)
    from mlops.storage.manifest import parse_manifest

    manifest = parse_manifest(
        (repo / ".mlops" / "cache" / after[:2] / after[2:]).read_bytes(), after
    )
    sizes = {e.path: e.size for e in manifest.entries}
    assert sizes[relpath] == int(size) + 1000  # as recorded: not looked at
    assert after != before and sizes["g1/0.txt"] == len("changed\n")  # looked at


def test_a_folder_above_the_tracked_one_replaced_is_seen(repo: Path) -> None:
    """A folder above the tracked one swapped for another (with the same pointer):
    status and add must not trust what they recorded of the tracked folder."""
    for top in ("outer", "spare"):
        (repo / top / "inner" / "g").mkdir(parents=True)
        (repo / top / "inner" / "g" / "a.txt").write_text(f"{top}\n")
    assert run_cli(repo, "add", "outer/inner").exit_code == 0
    shutil.copy(repo / "outer" / "inner.mlops", repo / "spare" / "inner.mlops")
    assert run_cli(repo, "config", "core.fsmonitor", "true").exit_code == 0
    try:

        def outer_inner() -> dict[str, object]:
            found = json.loads(run_subprocess(repo, "status", "--json").stdout)["data"]
            (inner,) = [s for s in found if s["path"] == "outer/inner"]
            return dict(inner)

        assert outer_inner()["workspace"] == "unchanged"
        os.rename(repo / "outer", repo / "old")
        os.rename(repo / "spare", repo / "outer")  # the same names, other content
        found = outer_inner()
        assert found["workspace"] == "modified" and found["modified"] == ["g/a.txt"]
        proc = run_subprocess(repo, "add", "--json", "outer/inner")
        oid = json.loads(proc.stdout)[0]["oid"]
        from mlops.storage.manifest import parse_manifest

        manifest = parse_manifest((repo / ".mlops" / "cache" / oid[:2] / oid[2:]).read_bytes(), oid)
        assert manifest.entries[0].size == len("spare\n")
    finally:
        run_cli(repo, "fsmonitor", "stop")


def test_status_with_the_monitor_looks_only_at_the_files_that_changed(
    monitored: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a file changes, status stats that file alone (and lists its folder), not
    its whole group; what differed last time is looked at again by name."""
    import mlops.workspace.status as status_module
    from mlops.core.repo import find_repo
    from mlops.workspace.status import data_status

    repo, data = monitored, monitored / "ds"
    assert status(repo)["workspace"] == "unchanged"
    scanned: list[object] = []
    real_scan = status_module.scan_groups

    def counted(*args: object, **kwargs: object) -> object:
        scanned.append(args[1])
        return real_scan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(status_module, "scan_groups", counted)
    steps = [
        lambda: rewrite(data / "g1" / "0.txt", "changed\n"),
        lambda: (data / "g1" / "new.txt").write_text("new\n"),
        lambda: (data / "g2" / "2.txt").unlink(),
        lambda: os.rename(data / "g3" / "0.txt", data / "g3" / "renamed.txt"),
        lambda: rewrite(data / "g1" / "0.txt", "1-0\n"),  # back as it was
    ]
    for i, step in enumerate(steps):
        step()
        (found,) = data_status(find_repo(repo))
        assert scanned == [], i
        assert found.to_dict() == truth(repo), i
