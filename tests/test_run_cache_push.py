"""``mlops push --run-cache``: the remote is asked about the entries together (in
parallel, or by listing its ``runcache/`` folders once there are many), and only the
entries it lacks are sent."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.files import write
from tests.helpers.repos import commit_all, init_git


def _fan_out(tmp_path: Path, items: int) -> tuple[Path, Path]:
    remote = tmp_path / "remote"
    repo = init_git(tmp_path / "repo")
    assert run_cli(repo, "init").exit_code == 0
    assert run_cli(repo, "remote", "add", "origin", str(remote), "--default").exit_code == 0
    listed = ", ".join(str(i) for i in range(items))
    write(
        repo,
        "mlops.yaml",
        "stages:\n"
        "  make:\n"
        f"    foreach: [{listed}]\n"
        "    do:\n"
        "      cmd: echo ${item} > out-${item}.txt\n"
        '      outs: ["out-${item}.txt"]\n',
    )
    commit_all(repo, "fan out")
    assert run_cli(repo, "run", "-j", "2").exit_code == 0
    return repo, remote


def _pushed(repo: Path) -> str:
    result = run_cli(repo, "push", "--run-cache")
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _entries(remote: Path) -> list[Path]:
    return sorted(p for p in (remote / "runcache").rglob("*") if p.is_file())


def test_many_entries_only_the_missing_ones_are_sent(tmp_path: Path) -> None:
    repo, remote = _fan_out(tmp_path, 40)  # more than are asked about one by one
    assert "pushed 40 run-cache entries" in _pushed(repo)
    entries = _entries(remote)
    assert len(entries) == 40
    for gone in entries[::10]:  # a remote that lost some of them
        gone.unlink()
    assert "pushed 4 run-cache entries" in _pushed(repo)
    assert len(_entries(remote)) == 40
    assert "run-cache" not in _pushed(repo)  # all there


def test_few_entries_only_the_missing_ones_are_sent(tmp_path: Path) -> None:
    repo, remote = _fan_out(tmp_path, 3)
    assert "pushed 3 run-cache entries" in _pushed(repo)
    _entries(remote)[0].unlink()
    assert "pushed 1 run-cache entry" in _pushed(repo)
    assert "run-cache" not in _pushed(repo)
