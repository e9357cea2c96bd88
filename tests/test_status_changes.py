"""Status after a change looks only at the groups of files whose stats changed; its answer
is always the one a status without any remembered state gives."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.files import rewrite
from tests.helpers.repos import git, put_state_back, set_state_aside


def make_dataset(repo: Path) -> Path:
    data = repo / "ds"
    for group in range(6):
        (data / f"g{group}" / "deep").mkdir(parents=True)
        for i in range(5):
            (data / f"g{group}" / f"{i}.txt").write_text(f"{group}-{i}\n")
        (data / f"g{group}" / "deep" / "x.bin").write_bytes(bytes([group]) * 100)
    (data / "top.txt").write_text("top\n")
    return data


def status_of(repo: Path) -> dict[str, object]:
    result = run_cli(repo, "status", "--json")
    assert result.exit_code in (0, 1), result.stderr
    found = json.loads(result.stdout)["data"]
    assert len(found) == 1
    return dict(found[0])


MUTATIONS: dict[str, Callable[[Path], None]] = {
    "one file modified": lambda d: rewrite(d / "g3" / "2.txt", "changed\n"),
    "a deep file modified": lambda d: rewrite(d / "g1" / "deep" / "x.bin", "other"),
    "a top-level file modified": lambda d: rewrite(d / "top.txt", "new top\n"),
    "added and deleted in two groups": lambda d: (
        (d / "g0" / "new.txt").write_text("new\n"),
        (d / "g5" / "4.txt").unlink(),
    ),
    "a group deleted": lambda d: shutil.rmtree(d / "g2"),
    "a group added": lambda d: (
        (d / "g9").mkdir(),
        (d / "g9" / "a.txt").write_text("a\n"),
    ),
    "a group replaced by a file": lambda d: (shutil.rmtree(d / "g4"), (d / "g4").write_text("")),
    "a file moved between groups": lambda d: os.rename(d / "g0" / "1.txt", d / "g1" / "1.txt"),
    "only touched": lambda d: os.utime(d / "g3" / "2.txt", ns=(1, 1)),
    "copied back with the same bytes": lambda d: rewrite(d / "g3" / "2.txt", "3-2\n"),
}


@pytest.mark.parametrize("change", sorted(MUTATIONS))
@pytest.mark.parametrize("link", ["copy", "hardlink"])
def test_status_after_a_change_agrees_with_a_status_that_remembers_nothing(
    repo: Path, change: str, link: str
) -> None:
    assert run_cli(repo, "config", "cache.link", f"[{link}]").exit_code == 0
    data = make_dataset(repo)
    assert run_cli(repo, "add", "ds").exit_code == 0
    assert status_of(repo)["workspace"] == "unchanged"
    MUTATIONS[change](data)
    quick = status_of(repo)
    saved = set_state_aside(repo)
    assert status_of(repo) == quick  # the full way: every file hashed, the manifest read
    put_state_back(repo, saved)
    state = repo / ".mlops" / "state.db"
    if change in ("only touched", "copied back with the same bytes"):
        assert quick["workspace"] == "unchanged"
        # ... and the record followed: the next status knows it clean from the scan alone.
        db = sqlite3.connect(state)
        (fingerprint,) = db.execute("SELECT fingerprint FROM folders").fetchone()
        db.close()
        assert status_of(repo)["workspace"] == "unchanged"
        db = sqlite3.connect(state)
        assert db.execute("SELECT fingerprint FROM folders").fetchone() == (fingerprint,)
        db.close()
    else:
        assert quick["workspace"] == "modified"
        assert quick["added"] or quick["modified"] or quick["deleted"]


def test_status_after_checking_out_another_snapshot_takes_the_full_way(repo: Path) -> None:
    data = make_dataset(repo)
    assert run_cli(repo, "add", "ds").exit_code == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    rewrite(data / "g0" / "0.txt", "v2\n")
    assert run_cli(repo, "add", "ds").exit_code == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v2")
    git(repo, "checkout", "-q", "HEAD~1", "--", "ds.mlops")  # the pointer, not the data
    found = status_of(repo)
    assert found["workspace"] == "modified" and found["modified"] == ["g0/0.txt"]
    assert run_cli(repo, "checkout").exit_code == 0
    assert status_of(repo)["workspace"] == "unchanged"
    assert (data / "g0" / "0.txt").read_text() == "0-0\n"


def test_status_of_a_folder_being_edited_agrees_at_every_step(repo: Path) -> None:
    """Recorded while modified, the differing groups are compared again each time."""
    data = make_dataset(repo)
    assert run_cli(repo, "add", "ds").exit_code == 0
    for change in sorted(MUTATIONS):
        if change in ("a group replaced by a file", "a file moved between groups"):
            continue  # they need the groups the other steps may have removed
        MUTATIONS[change](data)
        quick = status_of(repo)
        assert status_of(repo) == quick, change  # asked again: the same
        saved = set_state_aside(repo)
        assert status_of(repo) == quick, change
        put_state_back(repo, saved)
